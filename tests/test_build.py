"""The package installs, exposes its version, and a normal build has the compiled kernels."""

from __future__ import annotations

import os

import pytest

import vcore
from vcore._speedups import NO_EXTENSIONS, is_compiled, load_twin


def test_version() -> None:
    assert vcore.__version__.count(".") == 2


def test_public_names_exist() -> None:
    for name in vcore.__all__:
        assert hasattr(vcore, name), name


def test_fastpath_selection_follows_environment() -> None:
    if os.environ.get("VCORE_NO_EXTENSIONS"):
        assert NO_EXTENSIONS
        assert not vcore.fastpath_enabled()
    else:
        # a normal install must have built the extension: no silent fallback
        assert vcore.fastpath_enabled()
        assert is_compiled(load_twin("_fastpath", "c"))


def test_twins_export_the_same_names() -> None:
    py = load_twin("_fastpath", "py")
    if os.environ.get("VCORE_NO_EXTENSIONS"):
        pytest.skip("compiled twin disabled")
    c = load_twin("_fastpath", "c")
    for name in py.__all__:
        assert hasattr(c, name), name


def test_twins_declare_the_same_all() -> None:
    if os.environ.get("VCORE_NO_EXTENSIONS"):
        pytest.skip("compiled twin disabled")
    assert sorted(load_twin("_fastpath", "c").__all__) == sorted(load_twin("_fastpath", "py").__all__)
