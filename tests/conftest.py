"""Shared fixtures: every kernel test runs on both twins of the fast path."""

from __future__ import annotations

import os
import shutil
from types import ModuleType
from typing import Callable

import pytest

from vcore._speedups import load_twin

TWINS = ["c", "py"]


def _twin_loader(request: pytest.FixtureRequest) -> Callable[[str], ModuleType]:
    twin = request.param

    def load(name: str) -> ModuleType:
        try:
            return load_twin(name, twin)
        except ImportError:
            if os.environ.get("VCORE_NO_EXTENSIONS"):
                pytest.skip("compiled twin disabled by VCORE_NO_EXTENSIONS=1")
            raise

    return load


@pytest.fixture(params=TWINS)
def twin(request: pytest.FixtureRequest) -> Callable[[str], ModuleType]:
    """``twin("_fastpath")`` -> that kernel module, compiled (``c``) or pure Python (``py``).

    With ``VCORE_NO_EXTENSIONS=1`` the ``c`` case is skipped; otherwise a missing
    compiled module is an error (a normal install must build it).
    """
    return _twin_loader(request)


@pytest.fixture(params=TWINS)
def fp(request: pytest.FixtureRequest) -> ModuleType:
    """The core kernel module ``vcore._fastpath`` on each twin."""
    return _twin_loader(request)("_fastpath")


def require_tool(name: str) -> str:
    """Path of an external program, or skip the test with a message saying what is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path
