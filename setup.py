import re

from setuptools import find_packages, setup

with open("README.rst", encoding="utf-8") as f:
    long_description = f.read()
with open("runs_manager/__init__.py", encoding="utf-8") as f:
    # The version is written once, in the package (`runs --version` reads it there).
    version = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    name="runs-manager",
    version=version,
    description="Record, launch (in tmux) and reproduce machine-learning runs, in a human-readable YAML database",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=find_packages(include=["runs_manager", "runs_manager.*"]),
    python_requires=">=3.9",
    install_requires=[
        "PyYAML>=5.4",
        "tabulate[widechars]>=0.8.7",  # widechars: wcwidth, to align Chinese, Japanese and emoji
        "GitPython>=3.1.18",
        "libtmux>=0.15",
        "shtab>=1.13",  # runs completion: fish support, and the `.complete` of custom functions
    ],
    # TensorBoard is no dependency of runs; the tests start the real one once (runs tensorboard).
    # `metrics`: reading scalars from event files (runs table --metrics, runs metrics): TensorBoard's
    # protobuf classes decode the records, crc32c (C) checks their checksums. The tests write events
    # with tensorboardX, as PyTorch users do.
    extras_require={
        "metrics": ["tensorboard>=2.10", "crc32c>=2.3"],
        "test": ["pytest>=7", "hypothesis>=6.50", "docutils>=0.18", "hydra-core>=1.3", "tensorboard>=2.10", "crc32c>=2.3", "tensorboardX>=2.6"],
    },
    entry_points={"console_scripts": ["runs = runs_manager.__main__:console"]},
    classifiers=[
        "Environment :: Console",
        "License :: OSI Approved :: MIT License",
        "Operating System :: POSIX",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
