"""stylecam's version: the installed distribution's (pyproject.toml), read once at import."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stylecam")
except PackageNotFoundError:  # a checkout run without installing it
    __version__ = "0+unknown"
