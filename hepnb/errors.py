"""Errors for data files, and opening an HDF5 file with them; explained in ``book/data/resimulation.ipynb``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A data file is missing, truncated, corrupt, foreign (not the expected layout) or inconsistent.

    The message names the file and exactly what is wrong with it.
    """


def open_hdf5(path: Path, missing_hint: str = "") -> Any:
    """Open an existing HDF5 file for reading (an ``h5py.File``), or raise :class:`DataFileError` saying whether it
    is missing (plus ``missing_hint``), not a file, or not readable as HDF5 (not HDF5, truncated or corrupt)."""
    import h5py

    if not path.exists():
        raise DataFileError(f"{path}: no such file{missing_hint}")
    if not path.is_file():
        raise DataFileError(f"{path}: not a file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataFileError(f"{path}: cannot be opened as HDF5 (not HDF5, truncated or corrupt): {err}") from err
