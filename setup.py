"""Package layout only (metadata is in pyproject.toml).

The source folders stay at the top of the repository (``toolkit/``, ``engines/``,
``data/``) and are installed as ``atomtwin.toolkit``, ``atomtwin.engines`` and
``atomtwin.data``; nothing is installed under a generic top-level name.
"""

from setuptools import find_packages, setup

ROOTS = {"toolkit": "toolkit", "engines": "engines"}
packages = ["atomtwin", "atomtwin.data"]
for name in ROOTS:
    packages += ["atomtwin." + p for p in find_packages(include=[name, name + ".*"])]

setup(
    packages=packages,
    package_dir={"atomtwin": "atomtwin", "atomtwin.toolkit": "toolkit",
                 "atomtwin.engines": "engines", "atomtwin.data": "data"},
)
