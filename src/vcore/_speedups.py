"""The selector: the only module that imports either twin of the fast path.

Every kernel module ``vcore._fastpath*`` (compiled with Cython from a ``.pyx``)
has a pure-Python twin ``vcore._fastpath*_py`` with the same names, results,
exceptions and messages. The compiled kernels are used unless the extension is
missing or the environment sets ``VCORE_NO_EXTENSIONS=1`` (read once, at import).

Thread-safety: selection happens once at import time; the module is read-only after.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Literal

__all__ = [
    "NO_EXTENSIONS",
    "Twin",
    "load_twin",
    "fastpath",
    "fastpath_srtp",
    "fastpath_visca",
    "is_compiled",
    "fastpath_enabled",
]

_log = logging.getLogger(__name__)

NO_EXTENSIONS: bool = bool(os.environ.get("VCORE_NO_EXTENSIONS")) or (
    sys.implementation.name != "cpython"
)

Twin = Literal["c", "py"]


def load_twin(name: str, twin: Twin) -> ModuleType:
    """Import one twin explicitly: ``"c"`` (compiled) or ``"py"`` (pure Python).

    Used by the test suite and the benchmarks to run both twins side by side.
    Raises ``ImportError`` when the compiled twin was not built.
    """
    if twin == "c":
        return importlib.import_module(f"vcore.{name}")
    return importlib.import_module(f"vcore.{name}_py")


def _select(name: str) -> ModuleType:
    if not NO_EXTENSIONS:
        try:
            return load_twin(name, "c")
        except ImportError as exc:  # extension not built: fall back, say so once
            _log.debug("vcore.%s not compiled (%s); using the pure-Python twin", name, exc)
    return load_twin(name, "py")


if TYPE_CHECKING:
    from . import _fastpath_py as fastpath
    from . import _fastpath_srtp_py as fastpath_srtp
    from . import _fastpath_visca_py as fastpath_visca
else:
    fastpath = _select("_fastpath")
    fastpath_srtp = _select("_fastpath_srtp")
    fastpath_visca = _select("_fastpath_visca")


def is_compiled(module: ModuleType) -> bool:
    """True when ``module`` is a compiled extension rather than a ``_py`` twin."""
    return not module.__name__.endswith("_py")


def fastpath_enabled() -> bool:
    """True when the compiled Cython kernels are in use (not the pure-Python twins)."""
    return is_compiled(fastpath)
