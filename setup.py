"""The optional compiled part (collectors/_speedups.c); everything else is configured in pyproject.toml.

`optional=True`: where there is no C compiler or no Python headers, pip warns and installs netscope without it,
and the pure-Python twins in collectors/speedups.py run instead (`netscope --version` says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "netscope.collectors._speedups",
            ["collectors/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ]
)
