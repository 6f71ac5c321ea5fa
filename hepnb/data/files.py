"""Files that are never half-written and HDF5 files that say what is wrong with them; explained in
``book/data/resimulation.ipynb``.

Every file hepnb writes (generated data, checkpoints) goes through :func:`atomic_path`, and every HDF5 file it reads
(native or public) is opened by :func:`open_hdf5`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hepnb.errors import DataFileError

__all__ = ["atomic_path", "open_hdf5", "hdf5_dataset"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on failure deleted.

    Readers never see a half-written file: the rename is atomic on one filesystem.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def open_hdf5(path: Path, missing_hint: str = "") -> Any:
    """Open an existing HDF5 file for reading (an ``h5py.File``), or raise :class:`DataFileError` saying whether it
    is missing (plus ``missing_hint``), not a file, or not readable as HDF5 (not HDF5, truncated or corrupt)."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file{missing_hint}")
    if not path.is_file():
        raise DataFileError(f"{path}: not a file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataFileError(f"{path}: cannot be opened as HDF5 (not HDF5, truncated or corrupt): {err}") from err


def hdf5_dataset(f: Any, key: str, path: Path, layout: str, expected: tuple[str, ...], hint: str = "") -> Any:
    """The dataset ``key`` of an open public file ``f``, or :class:`DataFileError`: missing ("so this is not
    ``layout``", listing the keys it has, the ``expected`` ones and a ``hint`` of which reader fits), or not a
    dataset."""
    import h5py

    if key not in f:
        present = ", ".join(sorted(f.keys())) or "none"
        raise DataFileError(f"{path}: no dataset {key!r}, so this is not {layout} "
                            f"(it has keys: {present}; expected {', '.join(expected)}){'.' + hint if hint else ''}")
    ds = f[key]
    if not isinstance(ds, h5py.Dataset):
        raise DataFileError(f"{path}: {key!r} is a {type(ds).__name__}, expected a dataset")
    return ds
