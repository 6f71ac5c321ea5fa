"""The public RS3L re-simulated jets (Zenodo 10.5281/zenodo.10633815): read them into a :class:`JetSample`.

Explained in ``book/data/resimulation.ipynb``; where to put the files is in ``data/README.md``. The layout, as the
dataset's own users' code reads it (HDF5, one file or several):

``singletons``       (N, 5, F >= 13) float: index 0 the jet type (:data:`RS3L_JETTYPES`), 9..12 the jet
                     pt, eta, phi, energy. The other indices are not used here.
``jet_pflow_cands``  (N, 5, >= 11, n_cands) float, features *before* candidates, in the order of
                     :data:`CAND_FEATURES`; padding candidates are all zero (pt == 0).

Axis 1 holds the five shower variations of :data:`hepnb.generate.catalogue.VARIATION_NAMES` (nominal, new seed, FSR
scale x1/sqrt2, FSR scale x sqrt2, and Herwig 7 where hepnb's own files have its stand-in), and row ``i`` of every
variation is the same hard event. That is the
layout of hepnb's own generated files too, so one :class:`JetSample` serves both.

:func:`write_rs3l_layout` writes a :class:`JetSample` in exactly this layout (to export generated jets, and for
the tests).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from hepnb.config import public_data_dir
from hepnb.data.files import hdf5_dataset, open_hdf5
from hepnb.data.sample import JetSample
from hepnb.errors import DataFileError
from hepnb.generate.catalogue import CLASS_NAMES, VARIATION_NAMES
from hepnb.physics import kinematics
from hepnb.validation import check_int

# jettype in singletons[..., 0] -> (class name in CLASS_NAMES, PDG id of the initiating parton).
RS3L_JETTYPES: dict[int, tuple[str, int]] = {
    1: ("qcd", 1),    # light quark
    2: ("qcd", 4),    # c
    3: ("qcd", 5),    # b
    4: ("hbb", 25),   # H -> bb
    5: ("qcd", 21),   # g -> qq
    6: ("qcd", 21),   # g -> cc
    7: ("qcd", 21),   # g -> bb
    8: ("qcd", 21),   # g -> gg
    9: ("wqq", 24),   # W -> qq'
    10: ("zqq", 23),  # Z -> qq
    11: ("zqq", 23),  # Z -> bb
}

# Feature axis of jet_pflow_cands (index = position); d0, dz in mm.
CAND_FEATURES: tuple[str, ...] = ("pt", "relpt", "eta", "phi", "dr", "e", "rele", "charge", "pdgid", "d0", "dz")
# Indices into singletons' last axis.
SINGLETON_JETTYPE = 0
SINGLETON_JET = {"pt": 9, "eta": 10, "phi": 11, "energy": 12}
N_SINGLETONS_WRITTEN = 13

_KEYS = ("singletons", "jet_pflow_cands")
_READ_BYTES = 64 * 2**20  # read jet_pflow_cands in row blocks of about this size
_F = {name: i for i, name in enumerate(CAND_FEATURES)}


# ---------------------------------------------------------------------------------------------------------------
# reading


def _dataset(f: h5py.File, key: str, path: Path) -> h5py.Dataset:
    return hdf5_dataset(f, key, path, "an RS3L file", _KEYS)


def _check_layout(singletons: h5py.Dataset, cands: h5py.Dataset, path: Path) -> int:
    """Check shapes and dtypes; return the number of rows N."""
    nvar = len(VARIATION_NAMES)
    for ds, key, ndim, nfeat, what in ((singletons, "singletons", 3, N_SINGLETONS_WRITTEN, "(N, 5, F>=13)"),
                                       (cands, "jet_pflow_cands", 4, len(CAND_FEATURES), "(N, 5, >=11, n_cands)")):
        if ds.dtype.kind not in "fi":  # signed numbers (pt is negated to sort)
            raise DataFileError(f"{path}: {key!r} has dtype {ds.dtype}, expected numbers")
        if ds.ndim != ndim:
            raise DataFileError(f"{path}: {key!r} has shape {ds.shape}, expected {what}")
        if ds.shape[1] != nvar:
            raise DataFileError(f"{path}: {key!r} has {ds.shape[1]} entries on axis 1, expected {nvar} "
                                f"shower variations ({', '.join(VARIATION_NAMES)}); shape {ds.shape}")
        if ds.shape[2] < nfeat:
            raise DataFileError(f"{path}: {key!r} has {ds.shape[2]} features on axis 2, expected >= {nfeat}; "
                                f"shape {ds.shape}, expected {what}")
    if singletons.shape[0] != cands.shape[0]:
        raise DataFileError(f"{path}: row counts differ: singletons has {singletons.shape[0]} rows, "
                            f"jet_pflow_cands has {cands.shape[0]}")
    return singletons.shape[0]


def _labels(jettype_raw: np.ndarray, start: int, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map the nominal jet types of rows start.. to (jettype int16, label int8, parton int32)."""
    with np.errstate(invalid="ignore"):
        jettype = np.rint(np.nan_to_num(jettype_raw, nan=-1, posinf=-1, neginf=-1)).astype(np.int64)
    bad = (jettype != jettype_raw) | ~np.isin(jettype, list(RS3L_JETTYPES))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFileError(f"{path}: unknown jettype {float(jettype_raw[i]):g} in singletons[{start + i}, 0, 0] "
                            f"(row {start + i}); known: {sorted(RS3L_JETTYPES)}"
                            + (f" ({int(bad.sum())} rows affected)" if bad.sum() > 1 else ""))
    lut_label = np.zeros(max(RS3L_JETTYPES) + 1, np.int8)
    lut_parton = np.zeros(max(RS3L_JETTYPES) + 1, np.int32)
    for t, (name, parton) in RS3L_JETTYPES.items():
        lut_label[t], lut_parton[t] = CLASS_NAMES.index(name), parton
    return jettype.astype(np.int16), lut_label[jettype], lut_parton[jettype]


def load_rs3l(path, max_rows: int | None = None, max_constituents: int = 100, start: int = 0) -> JetSample:
    """Read rows ``start .. start + max_rows`` of a public RS3L file into a :class:`JetSample`.

    Only the requested rows are read (h5py slicing, in blocks), so this is safe on the multi-GB public files.
    ``max_rows`` is an upper bound: ``None`` or more rows than the file has after ``start`` means "to the end".
    ``max_rows < 1``, ``start`` outside ``0 .. N-1`` or ``max_constituents < 1`` raise :class:`ValueError`.

    Conversion: constituent ``px = pt cos(phi)``, ``py = pt sin(phi)``, ``pz = pt sinh(eta)``, ``E = e``
    (float32); ``charge`` int8 and ``pid`` int32 (rounded from the file's floats); ``d0``, ``dz`` float32 as stored,
    in mm (the files come from Delphes, whose track impact parameters are in mm; the dataset does not state the
    unit, so this is an assumption); ``mask = pt > 0``. Constituents are sorted by decreasing pT (stable) and
    truncated or zero-padded to ``max_constituents``; ``n_constituents`` counts the real ones before truncation.
    ``jet_p4`` (float64) is built from the singletons' jet pt, eta, phi, energy. ``label`` and ``parton`` come
    from the nominal variation's jet type via :data:`RS3L_JETTYPES`; ``event_id`` is the row index in the file.
    ``attrs`` = ``{"format": "rs3l-public", "jettype": <the jet types read, int16>}``.

    A missing, truncated, non-HDF5 or foreign file, wrong shapes, differing row counts or an unknown jet type
    raise :class:`hepnb.errors.DataFileError` naming the file and the problem. Explained in
    ``book/data/resimulation.ipynb``.
    """
    path = Path(path)
    max_constituents = check_int("max_constituents", max_constituents)
    start = check_int("start", start, minimum=0)
    if max_rows is not None:
        max_rows = check_int("max_rows", max_rows)
    f = open_hdf5(path, f" (put the RS3L files under {public_data_dir() / 'rs3l'}, see data/README.md)")
    try:
        with f:
            singletons = _dataset(f, "singletons", path)
            cands = _dataset(f, "jet_pflow_cands", path)
            n_file = _check_layout(singletons, cands, path)
            if start >= n_file:
                raise ValueError(f"start={start} is beyond the {n_file} rows of {path}")
            stop = n_file if max_rows is None else min(n_file, start + max_rows)
            return _read(singletons, cands, start, stop, max_constituents, path)
    except OSError as err:  # a dataset's bytes are missing or corrupt (e.g. a cut download)
        raise DataFileError(f"{path}: reading failed, the file is truncated or corrupt: {err}") from err


def _read(singletons: h5py.Dataset, cands: h5py.Dataset, start: int, stop: int, C: int, path: Path) -> JetSample:
    n, nvar, n_cands = stop - start, cands.shape[1], cands.shape[3]
    nfeat = len(CAND_FEATURES)

    single = np.asarray(singletons[start:stop, :, :N_SINGLETONS_WRITTEN], dtype=np.float64)
    jettype, label, parton = _labels(single[:, 0, SINGLETON_JETTYPE], start, path)
    jet_p4 = kinematics.p4_from_pt_eta_phi(*(single[:, :, SINGLETON_JET[k]] for k in ("pt", "eta", "phi", "energy")))

    p4 = np.zeros((n, nvar, C, 4), np.float32)
    charge = np.zeros((n, nvar, C), np.int8)
    pid = np.zeros((n, nvar, C), np.int32)
    d0 = np.zeros((n, nvar, C), np.float32)
    dz = np.zeros((n, nvar, C), np.float32)
    mask = np.zeros((n, nvar, C), bool)
    n_constituents = np.zeros((n, nvar), np.int32)
    keep = min(C, n_cands)

    block = max(1, _READ_BYTES // max(1, nvar * nfeat * n_cands * cands.dtype.itemsize))
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        out = slice(lo - start, hi - start)
        x = cands[lo:hi, :, :nfeat, :]  # (b, V, 11, n_cands), the file's dtype
        pt_all = x[:, :, _F["pt"], :]
        n_constituents[out] = (pt_all > 0).sum(axis=-1)
        order = np.argsort(-pt_all, axis=-1, kind="stable")[..., :keep]  # zeros (padding) sort after real pT
        x = np.take_along_axis(x, order[:, :, None, :], axis=-1).astype(np.float64)
        real = x[:, :, _F["pt"], :] > 0
        with np.errstate(over="ignore", invalid="ignore"):
            cand_p4 = kinematics.p4_from_pt_eta_phi(*(x[:, :, _F[k], :] for k in ("pt", "eta", "phi", "e")))
        cand_p4[~real] = 0.0
        p4[out, :, :keep] = cand_p4
        mask[out, :, :keep] = real
        charge[out, :, :keep] = np.where(real, np.rint(x[:, :, _F["charge"], :]), 0)
        pid[out, :, :keep] = np.where(real, np.rint(x[:, :, _F["pdgid"], :]), 0)
        d0[out, :, :keep] = np.where(real, x[:, :, _F["d0"], :], 0)
        dz[out, :, :keep] = np.where(real, x[:, :, _F["dz"], :], 0)

    return JetSample(p4=p4, charge=charge, pid=pid, d0=d0, dz=dz, mask=mask, jet_p4=jet_p4,
                     n_constituents=n_constituents, label=label, parton=parton,
                     event_id=np.arange(start, stop, dtype=np.int64), variations=VARIATION_NAMES,
                     source=str(path), attrs={"format": "rs3l-public", "jettype": jettype})


def find_rs3l_files(folder=None) -> list[Path]:
    """The ``*.h5`` / ``*.hdf5`` files under ``folder`` (default ``public_data_dir() / "rs3l"``), sorted.

    Subfolders are searched too; hidden files (such as a temporary file being written) are skipped. An empty list
    means no files (or no folder). See ``data/README.md``.
    """
    root = Path(folder) if folder is not None else public_data_dir() / "rs3l"
    if not root.is_dir():
        return []
    found = [p for p in root.rglob("*") if p.suffix.lower() in (".h5", ".hdf5") and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found)


# ---------------------------------------------------------------------------------------------------------------
# writing


def _jettypes(sample: JetSample) -> np.ndarray:
    """RS3L jet type per row: quarks 1/2/3 by flavour (light/c/b), gluons 8, H 4, W 9, Z 10."""
    out = np.zeros(len(sample), np.int16)
    parton = np.abs(sample.parton.astype(np.int64))
    for i, name in enumerate(CLASS_NAMES):
        rows = sample.label == i
        resonance = [t for t, (cls, _) in RS3L_JETTYPES.items() if cls == name]  # H 4, W 9, Z 10 (and 11)
        if name == "qcd":
            p = parton[rows]
            known = np.isin(p, (1, 2, 3, 4, 5, 21))
            if not known.all():
                raise ValueError(f"qcd row {int(np.flatnonzero(rows)[~known][0])} has parton "
                                 f"{int(p[~known][0])}: the RS3L layout has jet types only for quarks d u s c b "
                                 f"and gluons")
            out[rows] = np.select([p == 21, p == 5, p == 4], [8, 3, 2], default=1)
        elif resonance:
            out[rows] = resonance[0]
        elif rows.any():  # a class added to the catalogue without a jet type in RS3L_JETTYPES
            raise ValueError(f"class {name!r} has no RS3L jet type")
    return out


def _layout_arrays(sample: JetSample) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(sample, JetSample):
        raise TypeError(f"expected a JetSample, got {type(sample).__name__}")
    if tuple(sample.variations) != VARIATION_NAMES:
        raise ValueError(f"the RS3L layout needs the variations {VARIATION_NAMES} in this order, "
                         f"the sample has {sample.variations}")
    N, V, C = sample.mask.shape
    jet = sample.jet_p4.astype(np.float64)
    jpt, jeta, jphi = kinematics.pt_eta_phi(jet)
    singletons = np.zeros((N, V, N_SINGLETONS_WRITTEN), np.float32)
    singletons[:, :, SINGLETON_JETTYPE] = _jettypes(sample)[:, None]
    for k, v in (("pt", jpt), ("eta", jeta), ("phi", jphi), ("energy", jet[..., 3])):
        singletons[:, :, SINGLETON_JET[k]] = v

    p4 = sample.p4.astype(np.float64)
    pt, eta, phi = kinematics.pt_eta_phi(p4)
    e = p4[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        relpt = np.where(jpt[..., None] > 0, pt / jpt[..., None], 0.0)
        rele = np.where(jet[..., 3:4] != 0, e / jet[..., 3:4], 0.0)
    dr = kinematics.delta_r(eta, phi, jeta[..., None], jphi[..., None])
    feats = {"pt": pt, "relpt": relpt, "eta": eta, "phi": phi, "dr": dr, "e": e, "rele": rele,
             "charge": sample.charge, "pdgid": sample.pid, "d0": sample.d0, "dz": sample.dz}
    cands = np.stack([np.asarray(feats[k], np.float64) for k in CAND_FEATURES], axis=2)  # (N, V, 11, C)
    cands = np.where(sample.mask[:, :, None, :], cands, 0.0).astype(np.float32)
    return singletons, cands


def write_rs3l_layout(sample: JetSample, path) -> None:
    """Write ``sample`` as a public RS3L file: the inverse of :func:`load_rs3l`.

    ``singletons`` (N, 5, 13) float32 holds the jet type at index 0 (quarks 1/2/3 for light/c/b by ``parton``,
    gluons 8, H 4, W 9, Z 10) and the jet pt, eta, phi, energy (from ``jet_p4``) at 9..12, zeros elsewhere.
    ``jet_pflow_cands`` (N, 5, 11, C) float32 holds :data:`CAND_FEATURES` (relpt = pt / jet pt, rele = e / jet e,
    dr from the jet axis), zeros for padding. The sample's variations must be :data:`VARIATION_NAMES`. What the
    layout cannot hold is lost: ``n_constituents`` beyond ``C``, the exact quark flavour (u/d/s all become 1),
    ``event_id`` (rows are re-numbered on read), ``source`` and ``attrs``.

    The file is written to a temporary name in the same folder and renamed into place, so ``path`` never holds
    a half-written file and a failure leaves nothing behind. Explained in ``book/data/resimulation.ipynb``.
    """
    path = Path(path)
    singletons, cands = _layout_arrays(sample)  # all checks and arithmetic before any file exists
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with h5py.File(tmp, "w") as f:
            n = len(singletons)
            options = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if n else {}
            f.create_dataset("singletons", data=singletons,
                             chunks=(min(n, 4096), *singletons.shape[1:]) if n else None, **options)
            f.create_dataset("jet_pflow_cands", data=cands,
                             chunks=(min(n, 256), *cands.shape[1:]) if n else None, **options)
            f.attrs["written_by"] = "hepnb.data.public.write_rs3l_layout"
            f.attrs["variations"] = list(VARIATION_NAMES)
            f.attrs["jet_pflow_cands_features"] = list(CAND_FEATURES)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
