"""The package version, read by hatchling at build time and by ``mlsecops --version``."""

__version__ = "0.1.0"
