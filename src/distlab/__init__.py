"""distlab: the classic distributed-systems protocols, run for real over gRPC."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("distlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
