"""hepnb: executable tutorials re-deriving four particle-physics machine-learning papers.

The package behind the book in ``book/``; every public function's docstring names the chapter that explains it.
Start with ``book/getting_started.ipynb``.
"""

from importlib import metadata as _metadata

from hepnb.config import SCALES, Config, ConfigError, data_dir, public_data_dir, resolve, set_seed

try:
    __version__ = _metadata.version("hepnb")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["SCALES", "Config", "ConfigError", "__version__", "data_dir", "public_data_dir", "resolve", "set_seed"]
