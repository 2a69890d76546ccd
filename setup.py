"""Build script: compiles every ``src/vcore/_fastpath*.pyx`` kernel module.

Set ``VCORE_NO_EXTENSIONS=1`` at build time to install the pure-Python twins only.
"""

from __future__ import annotations

import glob
import os

from setuptools import Extension, setup


def _extensions() -> list[Extension]:
    if os.environ.get("VCORE_NO_EXTENSIONS"):
        return []
    from Cython.Build import cythonize

    exts = []
    for pyx in sorted(glob.glob(os.path.join("src", "vcore", "_fastpath*.pyx"))):
        name = "vcore." + os.path.splitext(os.path.basename(pyx))[0]
        exts.append(Extension(name, [pyx], extra_compile_args=["-O3"]))
    return cythonize(
        exts,
        include_path=["src"],
        language_level=3,
        compiler_directives={
            "boundscheck": True,
            "wraparound": False,
            "cdivision": False,
            "embedsignature": True,
        },
    )


setup(ext_modules=_extensions())
