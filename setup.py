"""Build hook for the C extension; all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "realprof._sampler",
            sources=["realprof/_sampler.c"],
            extra_compile_args=[
                "-O2",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
                # a helper missing from a version's headers is an error, not a symbol
                # that fails only at import (3.14 moved the frame helpers)
                "-Werror=implicit-function-declaration",
            ],
            libraries=["rt"],
            # The sampler reads each CPython version's frame internals and compiles
            # only on 3.11-3.15 with the GIL (it #errors elsewhere, free-threaded builds
            # included). Optional, so the package still installs on other versions,
            # where realprof.sampler falls back to its pure-Python handler with a
            # warning; the tests require it on 3.11-3.15.
            optional=True,
        )
    ]
)
