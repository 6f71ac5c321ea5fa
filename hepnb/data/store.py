"""The native HDF5 file of re-simulated jets: atomic writes, validated reads, a cache keyed by settings.

Explained in ``book/data/resimulation.ipynb``. The layout follows the public RS3L files (``hepnb.data.public``): per-jet
arrays ``(N, V, ...)`` with the shower variation on axis 1, row ``i`` of every variation being the same hard event.

Datasets of a ``hepnb-resim`` file (one jet class per file)::

    cands           (N, V, C, 7) float32  constituent px, py, pz, E [GeV], production vertex vx, vy, vz [mm]
    pid             (N, V, C)    int32    PDG id (0 = padding)
    charge          (N, V, C)    int8     charge [e]
    n_constituents  (N, V)       int32    constituents of the jet before truncation to C
    jet             (N, V, 4)    float64  jet px, py, pz, E [GeV]
    hard_p4         (N, 4)       float64  the H/W/hard parton before the shower [GeV]
    parton          (N,)         int32    its PDG id
    event_id        (N,)         int64    shard * 2**20 + hard-event index in the shard
    label           (N,)         int8     index into hepnb.generate.catalogue.CLASS_NAMES

Attributes record the generator and library versions, every Pythia setting per variation, the seeds, the selection,
field names and units; :func:`read_resim` checks them and the shapes, and raises
:class:`~hepnb.errors.DataFileError` naming what is wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepnb.data.files import atomic_path, open_hdf5
from hepnb.data.sample import JetSample
from hepnb.environment import version
from hepnb.errors import DataFileError
from hepnb.generate.catalogue import CLASS_NAMES, VARIATION_NAMES
from hepnb.validation import check_int

FORMAT = "hepnb-resim"
SCHEMA_VERSION = 1
_DTYPES = {"cands": np.float32, "pid": np.int32, "charge": np.int8, "n_constituents": np.int32, "jet": np.float64,
           "hard_p4": np.float64, "parton": np.int32, "event_id": np.int64, "label": np.int8}
_REQUIRED_ATTRS = ("format", "schema_version", "class_name", "variations", "cand_fields", "seed", "settings")


def _version(package: str) -> str:
    """A package's version as generated files record it (``"unknown"`` where absent: part of the cache hash)."""
    return version(package, missing="unknown")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def write_native(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], dtypes: Mapping[str, Any],
                 attrs: Mapping[str, Any], rows_key: str = "event_id") -> Path:
    """Write the datasets ``dtypes`` names (all with as many rows as ``rows_key``) and ``attrs`` atomically.

    The one writer of every native hepnb file (re-simulated jets here, the dimuons of :mod:`hepnb.data.dimuon`).
    The bytes depend only on the arrays and attributes (no timestamps), so equal inputs give identical files.
    Non-string attributes are stored as JSON text.
    """
    missing = [k for k in dtypes if k not in arrays]
    if missing:
        raise ValueError(f"cannot write {path}: arrays missing {missing}")
    n = len(arrays[rows_key])
    for name in dtypes:
        if len(arrays[name]) != n:
            raise ValueError(f"cannot write {path}: {name} has {len(arrays[name])} rows, {rows_key} has {n}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        for key, value in sorted(attrs.items()):
            f.attrs[key] = value if isinstance(value, str) else _json(value)
        for name, dtype in dtypes.items():
            data = np.ascontiguousarray(arrays[name], dtype=dtype)
            chunks = (max(1, min(n, 256)), *data.shape[1:]) if n else None
            f.create_dataset(name, data=data, chunks=chunks, compression="gzip" if n else None,
                             compression_opts=4 if n else None, shuffle=bool(n), track_times=False)
    return Path(path)


def cache_file(kind: str, name: str, seed: int, record: Mapping[str, Any],
               folder: str | os.PathLike[str] | None = None) -> Path:
    """``<folder or data_dir()/kind>/<kind>-<name>-seed<seed>-<hash>.h5``, the hash being 16 hex digits of the
    SHA-256 of the canonical JSON of ``record`` (everything that decides the file's bytes but its length). The one
    naming rule of every generation cache (re-simulated jets, dimuons, 1 TeV jets)."""
    import hashlib

    from hepnb.config import data_dir

    digest = hashlib.sha256(_json(record).encode()).hexdigest()[:16]
    base = Path(folder) if folder is not None else data_dir() / kind
    return base / f"{kind}-{name}-seed{int(seed)}-{digest}.h5"


def generation_attrs(record: Mapping[str, Any], description: str, count: str, n: int,
                     shards: Sequence[Mapping[str, Any]], shard_seed: Callable[[int], int]) -> dict[str, Any]:
    """The provenance every generated native file carries besides its layout's own fields: the generation
    ``record`` and its SHA-256, the hepnb version, the class ``description``, the row count under the name
    ``count``, the shards used with the Pythia seed of each (``shard_seed(k)``) and the events tried."""
    import hashlib

    return {**record, "settings_hash": hashlib.sha256(_json(record).encode()).hexdigest(),
            "hepnb_version": _version("hepnb"), "class_description": description, count: int(n),
            "shards_used": len(shards), "shard_seeds": [shard_seed(k) for k in range(len(shards))],
            "tried": sum(int(s["stats"]["tried"]) for s in shards)}


def cached_rows(path: str | os.PathLike[str], fmt: str, schema_version: int, required: tuple[str, ...],
                count: str) -> int:
    """The row count (attribute ``count``) of the native file ``path``: 0 if it is missing, unreadable or not of
    format ``fmt`` (a cache then generates over it)."""
    path = Path(path)
    if not path.exists():
        return 0
    try:
        with open_native(path, fmt, schema_version, required) as f:
            return int(f.attrs[count])
    except (DataFileError, KeyError, TypeError, ValueError):
        return 0


def write_resim(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
    """Write one class's arrays (see the module docstring) and attributes atomically; returns the path."""
    return write_native(path, arrays, _DTYPES, attrs)


def _attr(f: h5py.File, key: str) -> Any:
    value = f.attrs[key]
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def read_attrs(path: str | os.PathLike[str], fmt: str = FORMAT) -> dict[str, Any]:
    """The attributes of a native file of format ``fmt`` (JSON decoded), after checking it is one."""
    path = Path(path)
    with open_native(path, fmt) as f:
        return {key: _attr(f, key) for key in f.attrs}


def _foreign_hint(f: h5py.File) -> str:
    """What a file that is not of the expected format looks like, so the error can say which reader fits it."""
    fmt = f.attrs.get("format")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if "jet_pflow_cands" in f:
        return " It looks like a public RS3L file: read it with hepnb.data.public.load_rs3l."
    if "jetConstituentList" in f:
        return " It looks like a public hls4ml jet file: read it with hepnb.data.hls4ml.load_hls4ml."
    if fmt == FORMAT:
        return " It is a file of re-simulated jets: read it with hepnb.data.store.read_resim."
    if fmt == "hepnb-dimuon":
        return " It is a dimuon file: read it with hepnb.data.dimuon.read_dimuons."
    if fmt == "hepnb-highpt":
        return " It is a file of 1 TeV jets (g, q, W, Z, t): read it with hepnb.data.highpt.read_highpt."
    return ""


@contextlib.contextmanager
def open_native(path: Path, fmt: str = FORMAT, schema_version: int = SCHEMA_VERSION,
                required: tuple[str, ...] = _REQUIRED_ATTRS) -> Iterator[h5py.File]:
    """Open a native hepnb HDF5 file after checking its ``format`` attribute is ``fmt``, its schema version and
    its ``required`` attributes; raises :class:`DataFileError` naming the file and the problem (a foreign file is
    told which reader fits it)."""
    with open_hdf5(path) as f:
        found = f.attrs.get("format")
        if isinstance(found, bytes):
            found = found.decode()
        if found != fmt:
            raise DataFileError(f"{path}: foreign file: attribute format={found!r}, expected {fmt!r}."
                                f"{_foreign_hint(f)}")
        for key in required:
            if key not in f.attrs:
                raise DataFileError(f"{path}: attribute {key!r} is missing")
        try:
            version = int(f.attrs["schema_version"])
        except (TypeError, ValueError) as err:
            raise DataFileError(f"{path}: schema_version {f.attrs['schema_version']!r} is not a number") from err
        if version != schema_version:
            raise DataFileError(f"{path}: schema version {version}, this hepnb reads version {schema_version}; "
                                "delete the file to regenerate it")
        yield f


def read_rows(f: h5py.File, path: Path, names: Iterable[str], n: int, n_rows: int | None, what: str
              ) -> tuple[dict[str, np.ndarray], int]:
    """The first ``n_rows`` rows (all ``n`` if ``None``) of the datasets ``names`` of an open native file, and the
    row count read. Asking for more rows than the file holds, or a dataset whose bytes cannot be read, raises
    :class:`DataFileError` naming the file (``what`` names the rows: "events", "jets")."""
    if n_rows is not None:
        n_rows = check_int("n_rows", n_rows)
        if n_rows > n:
            raise DataFileError(f"{path}: asked for {n_rows} {what}, the file holds {n}")
        n = n_rows
    try:
        return {name: f[name][:n] for name in names}, n
    except (OSError, KeyError) as err:
        raise DataFileError(f"{path}: data cannot be read (truncated or corrupt?): {err}") from err


def _check_shapes(path: Path, f: h5py.File) -> tuple[int, int, int]:
    for name in _DTYPES:
        if name not in f:
            raise DataFileError(f"{path}: dataset {name!r} is missing")
    variations = _attr(f, "variations")
    fields = _attr(f, "cand_fields")
    cands = f["cands"]
    if cands.ndim != 4:
        raise DataFileError(f"{path}: cands must be (N, V, C, {len(fields)}), got shape {cands.shape}")
    n, v, c, k = cands.shape
    if v != len(variations) or k != len(fields):
        raise DataFileError(f"{path}: cands has shape {cands.shape} but the file lists {len(variations)} "
                            f"variations and {len(fields)} fields")
    expect = {"pid": (n, v, c), "charge": (n, v, c), "n_constituents": (n, v), "jet": (n, v, 4), "hard_p4": (n, 4),
              "parton": (n,), "event_id": (n,), "label": (n,)}
    for name, shape in expect.items():
        if f[name].shape != shape:
            raise DataFileError(f"{path}: {name} has shape {f[name].shape}, expected {shape}")
    for name, dtype in _DTYPES.items():
        if f[name].dtype != np.dtype(dtype):
            raise DataFileError(f"{path}: {name} has dtype {f[name].dtype}, expected {np.dtype(dtype)}")
    return n, v, c


def read_resim(path: str | os.PathLike[str], n_rows: int | None = None) -> JetSample:
    """Read (the first ``n_rows`` hard events of) a ``hepnb-resim`` file into a :class:`JetSample`.

    Validates the format, schema version, attributes, dataset names, shapes and dtypes, the labels against the
    file's class and the padding against ``n_constituents``; raises :class:`DataFileError` naming the file and the
    problem. (That row ``i`` of every variation is one hard event is guaranteed by the generator, which requires
    each variation's jet within ΔR < 0.8 of the nominal one; ``tests/test_resim.py`` checks it.) Impact
    parameters d0, dz are computed from the stored vertices (``hepnb.data.features.impact_parameters``).
    """
    from hepnb.data.features import impact_parameters

    path = Path(path)
    with open_native(path) as f:
        n, v, c = _check_shapes(path, f)
        attrs = {key: _attr(f, key) for key in f.attrs}
        data, n = read_rows(f, path, _DTYPES, n, n_rows, "hard events")
    fields = list(attrs["cand_fields"])
    variations = tuple(attrs["variations"])
    unknown = [name for name in variations if name not in VARIATION_NAMES]
    if unknown:
        raise DataFileError(f"{path}: unknown variation names {unknown}")
    if attrs["class_name"] not in CLASS_NAMES:
        raise DataFileError(f"{path}: unknown jet class {attrs['class_name']!r}")
    if n and not np.all(data["label"] == CLASS_NAMES.index(attrs["class_name"])):
        raise DataFileError(f"{path}: labels disagree with the file's class {attrs['class_name']!r}")
    index = {name: i for i, name in enumerate(fields)}
    try:
        p4 = data["cands"][..., [index[k] for k in ("px", "py", "pz", "E")]]
        vertex = data["cands"][..., [index[k] for k in ("vx", "vy", "vz")]]
    except KeyError as err:
        raise DataFileError(f"{path}: cand_fields {fields} lack {err}") from err
    count = np.minimum(data["n_constituents"], c)
    mask = np.arange(c) < count[..., None]
    if np.any((data["pid"] != 0) != mask):
        raise DataFileError(f"{path}: constituent padding disagrees with n_constituents")
    charge = data["charge"]
    d0, dz = impact_parameters(p4, vertex, charge)
    return JetSample(p4=p4.astype(np.float32), charge=charge, pid=data["pid"], d0=np.asarray(d0, np.float32),
                     dz=np.asarray(dz, np.float32), mask=mask, jet_p4=data["jet"],
                     n_constituents=data["n_constituents"], label=data["label"], parton=data["parton"],
                     event_id=data["event_id"], variations=variations, source=str(path), attrs=attrs)
