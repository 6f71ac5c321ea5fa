"""The public hls4ml jets (Zenodo, "hls4ml LHC jet dataset (150 particles)"; Duarte et al., JINST 13 (2018) P07027),
the data of Glowacki's SEAL paper: read them into a :class:`~hepnb.data.highpt.HighPtSample`.

Explained in ``book/simplicity/simplicity.ipynb``; where to put the files is in ``data/README.md``. The layout of each
HDF5 file of the dataset (one file or many, e.g. ``jetImage_7_150p_0_10000.h5``):

``jetConstituentList``    (N, 150, 16) float: per constituent the features of :data:`CONSTITUENT_FEATURES`
                          (px, py, pz, e, erel, pt, ptrel, eta, etarel, etarot, phi, phirel, phirot, deltaR,
                          costheta, costhetarel); padding constituents are all zero
``jets``                  (N, 59) float: jet features (:data:`JET_FEATURES`); columns -6..-2 are the one-hot labels
                          j_g, j_q, j_w, j_z, j_t (the label order of :data:`hepnb.generate.highpt.HIGHPT_CLASSES`),
                          column -1 j_undef
``particleFeatureNames``, ``jetFeatureNames``  the names of those columns (checked when present)

The files also hold jet images (``jetImage``, ...), which hepnb does not read. :func:`write_hls4ml_layout` writes a
:class:`~hepnb.data.highpt.HighPtSample` in exactly this layout (to hand generated jets to code written for the
public files, and for the tests).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from hepnb.config import public_data_dir
from hepnb.data.files import atomic_path, hdf5_dataset, open_hdf5
from hepnb.data.highpt import HighPtSample, _time_like
from hepnb.data.store import _foreign_hint
from hepnb.errors import DataFileError, SampleError
from hepnb.physics import kinematics
from hepnb.validation import check_int

__all__ = ["CONSTITUENT_FEATURES", "JET_FEATURES", "LABEL_COLUMNS", "N_PARTICLES", "load_hls4ml",
           "find_hls4ml_files", "write_hls4ml_layout"]

# Axis 2 of jetConstituentList (index = position); the files name them "j1_px", ... in particleFeatureNames, which
# has a 17th name (j1_pdgid) for which the 150-particle files hold no column.
CONSTITUENT_FEATURES: tuple[str, ...] = ("px", "py", "pz", "e", "erel", "pt", "ptrel", "eta", "etarel", "etarot",
                                         "phi", "phirel", "phirot", "deltaR", "costheta", "costhetarel")
# Columns of jets: 53 jet observables, then the one-hot labels.
JET_FEATURES: tuple[str, ...] = (
    "j_ptfrac", "j_pt", "j_eta", "j_mass", "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_tau1_b2", "j_tau2_b2",
    "j_tau3_b2", "j_tau32_b1", "j_tau32_b2", "j_zlogz", "j_c1_b0", "j_c1_b1", "j_c1_b2", "j_c2_b1", "j_c2_b2",
    "j_d2_b1", "j_d2_b2", "j_d2_a1_b1", "j_d2_a1_b2", "j_m2_b1", "j_m2_b2", "j_n2_b1", "j_n2_b2", "j_tau1_b1_mmdt",
    "j_tau2_b1_mmdt", "j_tau3_b1_mmdt", "j_tau1_b2_mmdt", "j_tau2_b2_mmdt", "j_tau3_b2_mmdt", "j_tau32_b1_mmdt",
    "j_tau32_b2_mmdt", "j_c1_b0_mmdt", "j_c1_b1_mmdt", "j_c1_b2_mmdt", "j_c2_b1_mmdt", "j_c2_b2_mmdt",
    "j_d2_b1_mmdt", "j_d2_b2_mmdt", "j_d2_a1_b1_mmdt", "j_d2_a1_b2_mmdt", "j_m2_b1_mmdt", "j_m2_b2_mmdt",
    "j_n2_b1_mmdt", "j_n2_b2_mmdt", "j_mass_trim", "j_mass_mmdt", "j_mass_prun", "j_mass_sdb2", "j_mass_sdm1",
    "j_multiplicity", "j_g", "j_q", "j_w", "j_z", "j_t", "j_undef")
LABEL_COLUMNS: tuple[str, ...] = ("j_g", "j_q", "j_w", "j_z", "j_t", "j_undef")  # columns -6..-1 of jets
N_PARTICLES = 150  # constituent slots of the public 150-particle files (and of write_hls4ml_layout)

_KEYS = ("jetConstituentList", "jets")
_F = {name: i for i, name in enumerate(CONSTITUENT_FEATURES)}
_READ_BYTES = 64 * 2**20  # read jetConstituentList in row blocks of about this size


# ---------------------------------------------------------------------------------------------------------------
# reading


def _dataset(f: h5py.File, key: str, path: Path) -> h5py.Dataset:
    return hdf5_dataset(f, key, path, "an hls4ml jet file", _KEYS, _foreign_hint(f))


def _names(f: h5py.File, key: str) -> list[str] | None:
    if key not in f or not isinstance(f[key], h5py.Dataset):
        return None
    raw = np.asarray(f[key][()]).ravel()
    return [x.decode() if isinstance(x, bytes) else str(x) for x in raw]


def _check_layout(f: h5py.File, cands: h5py.Dataset, jets: h5py.Dataset, path: Path) -> int:
    """Check shapes, dtypes and (where the file names them) the column names; return the number of rows N."""
    for ds, key, ndim, width, what in ((cands, "jetConstituentList", 3, len(CONSTITUENT_FEATURES),
                                        "(N, n_particles, 16)"), (jets, "jets", 2, len(JET_FEATURES), "(N, 59)")):
        if ds.dtype.kind not in "fi":
            raise DataFileError(f"{path}: {key!r} has dtype {ds.dtype}, expected numbers")
        if ds.ndim != ndim or ds.shape[-1] != width or (ndim == 3 and ds.shape[1] < 1):
            raise DataFileError(f"{path}: {key!r} has shape {ds.shape}, expected {what}")
    if cands.shape[0] != jets.shape[0]:
        raise DataFileError(f"{path}: row counts differ: jetConstituentList has {cands.shape[0]} rows, jets has "
                            f"{jets.shape[0]}")
    particle_names = _names(f, "particleFeatureNames")
    if particle_names is not None:
        found = [n.lower().removeprefix("j1_") for n in particle_names[:len(CONSTITUENT_FEATURES)]]
        if found != [n.lower() for n in CONSTITUENT_FEATURES]:
            raise DataFileError(f"{path}: particleFeatureNames {particle_names} do not start with the expected "
                                f"{list(CONSTITUENT_FEATURES)}")
    jet_names = _names(f, "jetFeatureNames")
    if jet_names is not None and jet_names[-len(LABEL_COLUMNS):] != list(LABEL_COLUMNS):
        raise DataFileError(f"{path}: jetFeatureNames end with {jet_names[-len(LABEL_COLUMNS):]}, expected the "
                            f"labels {list(LABEL_COLUMNS)}")
    return cands.shape[0]


def _labels(onehot: np.ndarray, start: int, path: Path) -> np.ndarray:
    """Label per row from the six label columns (j_g .. j_t, j_undef): exactly one of them 1, the rest 0, and not
    j_undef."""
    binary = (onehot == 0) | (onehot == 1)
    hot = onehot == 1
    count = hot.sum(axis=1)
    bad = ~binary.all(axis=1) | (count != 1) | hot[:, -1]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = start + i
        if not binary[i].all():
            why = f"label columns hold {onehot[i].tolist()}, not 0/1"
        elif count[i] == 0:
            why = "no one-hot label"
        elif count[i] > 1:
            why = f"{int(count[i])} one-hot labels ({', '.join(np.array(LABEL_COLUMNS)[hot[i]])})"
        else:
            why = "the label j_undef"
        raise DataFileError(f"{path}: row {row} has {why} in jets[:, -6:] (j_g, j_q, j_w, j_z, j_t, j_undef)"
                            + (f"; {int(bad.sum())} rows affected" if bad.sum() > 1 else ""))
    return np.argmax(hot[:, :-1], axis=1).astype(np.int8)


def load_hls4ml(path: str | os.PathLike[str], max_rows: int | None = None, max_constituents: int = 32, start: int = 0,
                classes: Sequence[str] | None = None) -> HighPtSample:
    """Read rows ``start .. start + max_rows`` of a public hls4ml file into a :class:`HighPtSample`.

    Only those rows are read (h5py slicing, in blocks), so a slice of a large file loads without the rest.
    ``max_rows`` is an upper bound: ``None`` or more rows than the file has after ``start`` means "to the end".
    ``classes`` (names of :data:`hepnb.generate.highpt.HIGHPT_CLASSES`, e.g. ``["w", "t"]``) keeps only the jets of
    those classes among the rows read (``max_rows`` counts rows of the file, before this filter).

    Conversion: constituents with ``e > 0`` or ``pt > 0`` are real (``mask``); they are sorted by decreasing pT
    (the file's ``pt`` column, stable) and truncated or zero-padded to ``max_constituents``; ``p4`` = (px, py, pz,
    e) as float32; ``n_constituents`` counts the real ones among the file's (at most 150: a jet with more lost its
    softest ones in the file already). ``jet_p4`` (float64) is the **sum of all the file's constituents of the
    jet**: ``jets`` holds the jet's pT, η and mass but no azimuth, so the 4-vector is rebuilt from its particles.
    ``label`` comes from the one-hot columns; ``event_id`` is the row in the file; ``pid``, ``charge`` and the
    generator truth are ``None`` (the files do not hold them). ``attrs`` = ``{"format": "hls4ml-public", "rows":
    (start, stop)}``.

    A missing, truncated, non-HDF5 or foreign file, wrong shapes or column names, differing row counts, non-finite
    or space-like constituents, or a row without exactly one label raise :class:`hepnb.errors.DataFileError` naming
    the file, and the row where it is one; bad arguments raise ``ValueError`` (``KeyError`` for an unknown class).
    Explained in ``book/simplicity/simplicity.ipynb``.
    """
    from hepnb.generate.highpt import highpt_class

    path = Path(path)
    max_constituents = check_int("max_constituents", max_constituents)
    start = check_int("start", start, minimum=0)
    if max_rows is not None:
        max_rows = check_int("max_rows", max_rows)
    names = None if classes is None else ([classes] if isinstance(classes, str) else list(classes))
    if names is not None and not names:
        raise ValueError("classes is empty; pass None for every class")
    wanted = None if names is None else [highpt_class(c).label for c in names]
    f = open_hdf5(path, f" (put the hls4ml files under {public_data_dir() / 'hls4ml'}, see data/README.md)")
    try:
        with f:
            cands = _dataset(f, "jetConstituentList", path)
            jets = _dataset(f, "jets", path)
            n_file = _check_layout(f, cands, jets, path)
            if start >= n_file:
                raise ValueError(f"start={start} is beyond the {n_file} rows of {path}")
            stop = n_file if max_rows is None else min(n_file, start + max_rows)
            sample = _read(cands, jets, start, stop, max_constituents, path)
    except OSError as err:  # a dataset's bytes are missing or corrupt (e.g. a cut download)
        raise DataFileError(f"{path}: reading failed, the file is truncated or corrupt: {err}") from err
    if wanted is None:
        return sample
    keep = np.isin(sample.label, wanted)
    if not keep.any():
        raise SampleError(f"{path}: no jets of classes {names} in rows {start}..{stop - 1}")
    return sample.select(np.flatnonzero(keep))


def _read(cands: h5py.Dataset, jets: h5py.Dataset, start: int, stop: int, C: int, path: Path) -> HighPtSample:
    n, n_particles = stop - start, cands.shape[1]
    label = _labels(np.asarray(jets[start:stop, -len(LABEL_COLUMNS):], dtype=np.float64), start, path)
    p4 = np.zeros((n, C, 4), np.float32)
    mask = np.zeros((n, C), bool)
    n_constituents = np.zeros(n, np.int32)
    jet_p4 = np.zeros((n, 4))
    keep = min(C, n_particles)
    block = max(1, _READ_BYTES // max(1, n_particles * len(CONSTITUENT_FEATURES) * cands.dtype.itemsize))
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        out = slice(lo - start, hi - start)
        x = np.asarray(cands[lo:hi], dtype=np.float64)  # (b, n_particles, 16)
        vec = x[..., [_F["px"], _F["py"], _F["pz"], _F["e"]]]
        real = (x[..., _F["e"]] > 0) | (x[..., _F["pt"]] > 0)
        # float32 files: massless constituents sit on E = |p| within rounding, hence the loose tolerance
        bad = real & (~_time_like(vec, 1e-3) | ~np.isfinite(x[..., _F["pt"]]))
        if bad.any():
            row = lo + int(np.flatnonzero(bad.any(axis=1))[0])
            raise DataFileError(f"{path}: row {row} has a constituent that is not finite and time-like "
                                "(columns px, py, pz, e)")
        vec[~real] = 0.0
        n_constituents[out] = real.sum(axis=1)
        jet_p4[out] = vec.sum(axis=1)
        order = np.argsort(-np.where(real, x[..., _F["pt"]], -np.inf), axis=1, kind="stable")[:, :keep]
        p4[out, :keep] = np.take_along_axis(vec, order[..., None], axis=1)
        mask[out, :keep] = np.take_along_axis(real, order, axis=1)
    empty = np.flatnonzero(n_constituents == 0)
    if len(empty):
        raise DataFileError(f"{path}: row {start + int(empty[0])} has no constituents")
    return HighPtSample(p4, mask, None, None, n_constituents, jet_p4, label, np.arange(start, stop, dtype=np.int64),
                        sources=(str(path),), attrs={"format": "hls4ml-public", "rows": (start, stop)})


def find_hls4ml_files(folder: str | os.PathLike[str] | None = None) -> list[Path]:
    """The ``*.h5`` / ``*.hdf5`` files under ``folder`` (default ``public_data_dir() / "hls4ml"``), sorted;
    subfolders are searched, hidden files skipped, ``[]`` if none. See ``data/README.md``; explained in
    ``book/simplicity/simplicity.ipynb``."""
    from hepnb.data.public import find_rs3l_files  # the same search, under another folder

    return find_rs3l_files(Path(folder) if folder is not None else public_data_dir() / "hls4ml")


# ---------------------------------------------------------------------------------------------------------------
# writing


def _principal_angle(deta: np.ndarray, dphi: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per jet, the angle of the pT-weighted principal axis of its constituents in the (Δη, Δφ) plane."""
    s_ee = (weight * deta * deta).sum(-1)
    s_pp = (weight * dphi * dphi).sum(-1)
    s_ep = (weight * deta * dphi).sum(-1)
    return 0.5 * np.arctan2(2 * s_ep, s_ee - s_pp)


def _layout_arrays(sample: HighPtSample) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(sample, HighPtSample):
        raise TypeError(f"expected a HighPtSample, got {type(sample).__name__}")
    n, c = sample.mask.shape
    if c > N_PARTICLES:
        sample = sample.truncate(N_PARTICLES)
        n, c = sample.mask.shape
    mask = sample.mask
    p4 = np.where(mask[..., None], sample.p4.astype(np.float64), 0.0)
    jet = sample.jet_p4.astype(np.float64)
    pt, eta, phi = kinematics.pt_eta_phi(p4)
    jpt, jeta, jphi = kinematics.pt_eta_phi(jet)
    e, je = p4[..., 3], jet[:, 3:4]
    deta = eta - jeta[:, None]
    dphi = kinematics.wrap_phi(phi - jphi[:, None])
    angle = _principal_angle(np.where(mask, deta, 0), np.where(mask, dphi, 0), np.where(mask, pt, 0))[:, None]
    p = np.linalg.norm(p4[..., :3], axis=-1)
    jp = np.linalg.norm(jet[:, :3], axis=-1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        feats = {"px": p4[..., 0], "py": p4[..., 1], "pz": p4[..., 2], "e": e,
                 "erel": np.where(je > 0, e / je, 0.0), "pt": pt, "ptrel": np.where(jpt[:, None] > 0,
                                                                                   pt / jpt[:, None], 0.0),
                 "eta": eta, "etarel": deta, "etarot": np.cos(angle) * deta + np.sin(angle) * dphi, "phi": phi,
                 "phirel": dphi, "phirot": -np.sin(angle) * deta + np.cos(angle) * dphi,
                 "deltaR": np.hypot(deta, dphi), "costheta": np.where(p > 0, p4[..., 2] / p, 0.0),
                 "costhetarel": np.where((p > 0) & (jp > 0), (p4[..., :3] * jet[:, None, :3]).sum(-1) / (p * jp), 0.0)}
    cands = np.zeros((n, N_PARTICLES, len(CONSTITUENT_FEATURES)), np.float32)
    cands[:, :c] = np.where(mask[..., None], np.stack([feats[k] for k in CONSTITUENT_FEATURES], axis=-1), 0.0)
    jets = np.zeros((n, len(JET_FEATURES)), np.float32)
    column = {name: i for i, name in enumerate(JET_FEATURES)}
    jets[:, column["j_pt"]] = jpt
    jets[:, column["j_eta"]] = jeta
    jets[:, column["j_mass"]] = kinematics.mass(jet)
    jets[:, column["j_multiplicity"]] = sample.n_constituents
    jets[np.arange(n), len(JET_FEATURES) - len(LABEL_COLUMNS) + sample.label.astype(np.int64)] = 1.0
    return cands, jets


def write_hls4ml_layout(sample: HighPtSample, path: str | os.PathLike[str]) -> Path:
    """Write ``sample`` as a public hls4ml file: the inverse of :func:`load_hls4ml` (returns the path).

    ``jetConstituentList`` (N, 150, 16) float32 holds the real constituents (at most 150, pT-ordered) with all
    :data:`CONSTITUENT_FEATURES` computed from their 4-vectors and the jet's (``jet_p4``): ``erel = e / E_jet``,
    ``ptrel = pt / pT_jet``, ``etarel``, ``phirel`` (wrapped) and ``deltaR`` relative to the jet axis,
    ``costheta = pz / |p|``, ``costhetarel`` the cosine of the angle to the jet axis, and ``etarot``, ``phirot``
    (Δη, Δφ) rotated so that the jet's pT-weighted principal axis lies along η (our definition; the dataset does
    not document its rotation); zeros for padding. ``jets`` (N, 59) float32 holds ``j_pt``, ``j_eta``,
    ``j_mass`` (from ``jet_p4``), ``j_multiplicity`` (``n_constituents``) and the one-hot label in columns
    -6..-2; the substructure columns are zero. ``particleFeatureNames`` and ``jetFeatureNames`` name the
    columns, as in the public files. What the layout cannot hold is lost: ``pid``, ``charge``, the generator truth,
    ``event_id`` (rows are re-numbered on read), and ``jet_p4`` itself: :func:`load_hls4ml` rebuilds it as the sum of
    the constituents written, which equals it only for jets whose constituents all fit in the sample.

    The file is written to a temporary name in the same folder and renamed into place, so ``path`` never holds a
    half-written file. Explained in ``book/simplicity/simplicity.ipynb``.
    """
    cands, jets = _layout_arrays(sample)  # all checks and arithmetic before any file exists
    n = len(jets)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        options = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
        f.create_dataset("jetConstituentList", data=cands, chunks=(min(n, 256), *cands.shape[1:]), **options)
        f.create_dataset("jets", data=jets, chunks=(min(n, 4096), jets.shape[1]), **options)
        f.create_dataset("particleFeatureNames",
                         data=np.array([f"j1_{k}" for k in (*CONSTITUENT_FEATURES, "pdgid")], dtype="S"))
        f.create_dataset("jetFeatureNames", data=np.array(JET_FEATURES, dtype="S"))
        f.attrs["written_by"] = "hepnb.data.hls4ml.write_hls4ml_layout"
    return Path(path)
