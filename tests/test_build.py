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


KERNEL_MODULES = ["_fastpath", "_fastpath_srtp", "_fastpath_jitter", "_fastpath_visca"]


def _own_public_names(module: object) -> set[str]:
    """The twin's declared API (``__all__``), else the functions and classes it defines itself."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return set(declared)
    name = module.__name__  # type: ignore[attr-defined]
    return {n for n, v in vars(module).items() if not n.startswith("_") and getattr(v, "__module__", None) == name}


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_every_kernel_has_its_twin(module: str) -> None:
    """Each compiled kernel module offers every public name of its pure-Python twin, and vice versa."""
    if os.environ.get("VCORE_NO_EXTENSIONS"):
        pytest.skip("compiled twin disabled")
    py = load_twin(module, "py")
    c = load_twin(module, "c")
    missing_in_c = {n for n in _own_public_names(py) if not hasattr(c, n)}
    assert missing_in_c == set()
    missing_in_py = {n for n in dir(c) if not n.startswith("_") and callable(getattr(c, n)) and not hasattr(py, n)}
    assert missing_in_py == set()
