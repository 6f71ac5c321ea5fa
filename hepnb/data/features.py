"""Network inputs from 4-vectors: the 15 constituent features and 2 jet features, in numpy or torch.

Explained in ``book/data/resimulation.ipynb``. The constituent features are those of Rothen et al. (Table II) and
Harris et al. (Table I): kinematics relative to the jet axis, charge, track impact parameters and particle-type flags.

Every function takes numpy arrays *or* torch tensors (the type of ``p4`` decides) with any leading batch shape,
``(..., C, 4)`` for constituents and ``(..., 4)`` for jets, and returns float32. The torch path runs on any device
and is differentiable: the symmetry-loss chapter boosts the constituents on the GPU and recomputes the features
inside the loss. Logarithms, square roots, divisions and ``atan2`` are guarded with the "double ``where``"
pattern, so zero-padded constituents give exactly 0 and finite gradients instead of ``nan``.

Conventions: 4-vectors are ``(px, py, pz, E)`` in GeV; pseudorapidity is ``asinh(pz / pT)`` (not rapidity);
``dphi`` is wrapped to ``(-pi, pi]``; impact parameters are in mm and enter the features as ``tanh(d0 / 1 mm)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hepnb.data.sample import JetSample
from hepnb.errors import SampleError
from hepnb.physics.kinematics import delta_r, is_torch, mass, ops_for, pt_eta_phi_ops, safe_log, wrap_phi

FEATURE_NAMES: tuple[str, ...] = (
    "log_pt", "log_pt_rel", "log_e", "log_e_rel", "deta", "dphi", "dr", "charge",
    "tanh_d0", "tanh_dz", "is_photon", "is_muon", "is_electron", "is_ch", "is_nh",
)
FEATURE_LABELS: dict[str, str] = {
    "log_pt": r"$\log p_T$ [GeV]",
    "log_pt_rel": r"$\log (p_T / p_T^{\rm jet})$",
    "log_e": r"$\log E$ [GeV]",
    "log_e_rel": r"$\log (E / E^{\rm jet})$",
    "deta": r"$\Delta\eta$ (to the jet axis)",
    "dphi": r"$\Delta\phi$ (to the jet axis)",
    "dr": r"$\Delta R$ (to the jet axis)",
    "charge": r"charge $q$ [$e$]",
    "tanh_d0": r"$\tanh d_0$ [mm]",
    "tanh_dz": r"$\tanh d_z$ [mm]",
    "is_photon": "is photon",
    "is_muon": "is muon",
    "is_electron": "is electron",
    "is_ch": "is charged hadron",
    "is_nh": "is neutral hadron",
}
FEATURE_UNITS: dict[str, str] = {
    "log_pt": "log(GeV)", "log_pt_rel": "", "log_e": "log(GeV)", "log_e_rel": "", "deta": "", "dphi": "",
    "dr": "", "charge": "e", "tanh_d0": "tanh(mm)", "tanh_dz": "tanh(mm)", "is_photon": "", "is_muon": "",
    "is_electron": "", "is_ch": "", "is_nh": "",
}

JET_FEATURE_NAMES: tuple[str, ...] = ("log_pt", "log_m")
JET_FEATURE_LABELS: dict[str, str] = {"log_pt": r"$\log p_T^{\rm jet}$ [GeV]", "log_m": r"$\log m^{\rm jet}$ [GeV]"}
JET_FEATURE_UNITS: dict[str, str] = {"log_pt": "log(GeV)", "log_m": "log(GeV)"}

# Jet pT and mass are clipped below at this value before the logarithm: a single massless constituent (or float
# rounding in E^2 - p^2) would otherwise give log(0). log(1e-3) = -6.9 sits far below any real jet (log m >~ 0).
JET_FLOOR_GEV = 1e-3

PHOTON, ELECTRON, MUON = 22, 11, 13

# Rows per chunk in sample_features: keeps the float64 temporaries small (tens of MB at V = 5, C = 100).
_CHUNK_ROWS = 512


def _check_shape(name: str, array: Any, shape: tuple[int, ...]) -> None:
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} to match p4 {tuple(shape)} + (4,), "
                         f"got {tuple(array.shape)}")


def _check_p4(p4: Any, what: str = "p4") -> None:
    if p4.ndim < 1 or p4.shape[-1] != 4:
        raise ValueError(f"{what} must end in an axis of 4 (px, py, pz, E), got shape {tuple(p4.shape)}")


# ---------------------------------------------------------------------------------------------------------------
# public functions


def impact_parameters(p4: Any, vertex: Any, charge: Any) -> tuple[Any, Any]:
    """Transverse and longitudinal impact parameters ``(d0, dz)`` [mm] of straight tracks.

    ``p4`` (..., C, 4) momenta [GeV]; ``vertex`` (..., C, 3) production vertex x, y, z [mm]; ``charge`` (..., C).
    With ``pT^2 = px^2 + py^2``::

        d0 = (x py - y px) / pT                   signed distance of closest approach in the transverse plane
        dz = z - (x px + y py) pz / pT^2          z at that point of closest approach

    (tracks are taken as straight lines from the vertex: no magnetic field). Both are 0 for neutral particles
    (``charge == 0``) and where pT = 0. Returns float32 arrays (or tensors) of shape (..., C).
    Explained in ``book/data/resimulation.ipynb``.
    """
    _check_p4(p4)
    ops = ops_for(p4)
    p4 = ops.floats(p4)
    vertex, charge = ops.floats(vertex), ops.asarray(charge)
    if vertex.shape[-1:] != (3,) or tuple(vertex.shape[:-1]) != tuple(p4.shape[:-1]):
        raise ValueError(f"vertex must have shape {tuple(p4.shape[:-1]) + (3,)} (x, y, z per particle), "
                         f"got {tuple(vertex.shape)}")
    _check_shape("charge", charge, p4.shape[:-1])
    px, py, pz = p4[..., 0], p4[..., 1], p4[..., 2]
    x, y, z = vertex[..., 0], vertex[..., 1], vertex[..., 2]
    pt = pt_eta_phi_ops(ops, p4)[0]
    track = (pt > 0) & (charge != 0)
    safe_pt = ops.where(track, pt, 1.0)
    d0 = ops.where(track, (x * py - y * px) / safe_pt, 0.0)
    dz = ops.where(track, z - (x * px + y * py) * pz / (safe_pt * safe_pt), 0.0)
    return ops.out(d0), ops.out(dz)


def particle_flags(pid: Any, charge: Any, mask: Any) -> Any:
    """The five one-hot type flags ``(is_photon, is_muon, is_electron, is_ch, is_nh)``, shape (..., C, 5), float32.

    Decided in this order, so every real constituent has exactly one flag: photon (pid 22); electron (|pid| 11);
    muon (|pid| 13); charged hadron (any other charged particle); neutral hadron (any other neutral particle).
    Padding (``mask`` False) has none. Explained in ``book/data/resimulation.ipynb``.
    """
    ops = ops_for(pid) if is_torch(pid) else ops_for(charge)  # numpy unless one of them is a tensor
    pid, charge, mask = ops.asarray(pid), ops.asarray(charge), ops.asarray(mask) != 0
    apid = ops.abs(pid)
    photon = mask & (pid == PHOTON)
    electron = mask & (apid == ELECTRON)
    muon = mask & (apid == MUON)
    lepton_or_photon = photon | electron | muon
    charged = mask & (charge != 0) & ~lepton_or_photon
    neutral = mask & (charge == 0) & ~lepton_or_photon
    flags = [photon, muon, electron, charged, neutral]
    return ops.out(ops.stack([ops.where(f, 1.0, 0.0) for f in flags], axis=-1))


KINEMATIC_FEATURES: tuple[str, ...] = FEATURE_NAMES[:7]  # the seven of Glowacki, Sec. 3.1 (4-vectors only)


def _jet_axis(ops: Any, p4: Any, mask: Any, jet_p4: Any) -> Any:
    """``jet_p4`` checked against ``p4`` (..., C, 4), or the sum of the masked constituents where it is ``None``."""
    shape = tuple(p4.shape[:-1])
    if jet_p4 is None:
        return ops.sum(ops.where(mask[..., None], p4, 0.0), axis=-2)
    jet_p4 = ops.floats(jet_p4)
    _check_p4(jet_p4, "jet_p4")
    if tuple(jet_p4.shape) != shape[:-1] + (4,):
        raise ValueError(f"jet_p4 must have shape {shape[:-1] + (4,)} (one jet per constituent list), "
                         f"got {tuple(jet_p4.shape)}")
    return jet_p4


def _kinematic_columns(ops: Any, p4: Any, mask: Any, jet_p4: Any) -> list[Any]:
    """The seven kinematic columns of :data:`KINEMATIC_FEATURES` (padding not yet zeroed)."""
    pt, eta, phi = pt_eta_phi_ops(ops, p4)
    jet_pt, jet_eta, jet_phi = pt_eta_phi_ops(ops, jet_p4)
    log_pt, log_e = safe_log(ops, pt), safe_log(ops, p4[..., 3])
    jet_log_pt, jet_log_e = safe_log(ops, jet_pt)[..., None], safe_log(ops, jet_p4[..., 3])[..., None]
    deta = eta - jet_eta[..., None]
    dphi = wrap_phi(phi - jet_phi[..., None])
    dr = delta_r(eta, phi, jet_eta[..., None], jet_phi[..., None])
    return [log_pt, log_pt - jet_log_pt, log_e, log_e - jet_log_e, deta, dphi, dr]


def kinematic_features(p4: Any, mask: Any, jet_p4: Any = None) -> Any:
    """The seven features of :data:`KINEMATIC_FEATURES` per constituent, shape (..., C, 7), float32: what needs
    only the 4-vectors (Glowacki's inputs, the first seven of :data:`FEATURE_NAMES`).

    ``p4`` (..., C, 4) px, py, pz, E [GeV]; ``mask`` (..., C); ``jet_p4`` (..., 4) the jet axis and pT/E reference,
    ``None`` for the sum of the masked constituents (what the symmetry loss uses after boosting the constituents:
    ``book/simplicity/simplicity.ipynb``). Padding is exactly 0; numpy or torch (differentiable), like
    :func:`constituent_features`, whose first seven columns these are.
    """
    _check_p4(p4)
    ops = ops_for(p4)
    p4 = ops.floats(p4)
    mask = ops.asarray(mask) != 0
    _check_shape("mask", mask, tuple(p4.shape[:-1]))
    columns = _kinematic_columns(ops, p4, mask, _jet_axis(ops, p4, mask, jet_p4))
    return ops.out(ops.where(mask[..., None], ops.stack(columns, axis=-1), 0.0))


def constituent_features(p4: Any, charge: Any, pid: Any, d0: Any, dz: Any, mask: Any, jet_p4: Any = None) -> Any:
    """The 15 features of :data:`FEATURE_NAMES` for each constituent, shape (..., C, 15), float32.

    ``p4`` (..., C, 4) px, py, pz, E [GeV]; ``charge``, ``pid``, ``d0``, ``dz`` [mm] and ``mask`` (..., C).
    ``jet_p4`` (..., 4) is the jet axis and the reference for pT and E; ``None`` uses the sum of the masked
    constituents (what the symmetry loss wants after boosting the constituents).

    ``log_pt``, ``log_e``: log of pT and E in GeV; ``log_pt_rel``, ``log_e_rel``: the same minus the jet's;
    ``deta``, ``dphi`` (wrapped to (-pi, pi]), ``dr = hypot(deta, dphi)`` to the jet axis (these seven are
    :func:`kinematic_features`); ``charge``; ``tanh_d0``, ``tanh_dz`` of the impact parameters in mm; then the
    flags of :func:`particle_flags`.
    Padding (``mask`` False) is exactly 0 in every feature; nothing is ``nan`` or ``inf``, and on torch the
    gradients with respect to ``p4`` and ``jet_p4`` are finite too. Works on numpy arrays and torch tensors
    alike. Explained in ``book/data/resimulation.ipynb``.
    """
    _check_p4(p4)
    ops = ops_for(p4)
    p4 = ops.floats(p4)
    shape = tuple(p4.shape[:-1])
    charge, pid, mask = ops.asarray(charge), ops.asarray(pid), ops.asarray(mask) != 0
    d0, dz = ops.floats(d0), ops.floats(dz)
    for name, array in (("charge", charge), ("pid", pid), ("d0", d0), ("dz", dz), ("mask", mask)):
        _check_shape(name, array, shape)
    columns = _kinematic_columns(ops, p4, mask, _jet_axis(ops, p4, mask, jet_p4))
    columns += [ops.floats(charge), ops.tanh(d0), ops.tanh(dz)]
    kinematic = ops.where(mask[..., None], ops.stack(columns, axis=-1), 0.0)
    return ops.concat([ops.out(kinematic), particle_flags(pid, charge, mask)], axis=-1)


def jet_features(jet_p4: Any) -> Any:
    """``(log pT, log m)`` of jets, shape (..., 2), float32 (numpy or torch like the input).

    pT and the mass (from :mod:`hepnb.physics.kinematics`) are clipped below at :data:`JET_FLOOR_GEV` (1 MeV)
    before the logarithm, so a massless (single-particle) jet, a slightly negative ``m^2`` from rounding or an empty
    jet give ``log(1e-3)`` instead of ``-inf``/``nan``; gradients stay finite. Explained in
    ``book/data/resimulation.ipynb``.
    """
    _check_p4(jet_p4, "jet_p4")
    ops = ops_for(jet_p4)
    p4 = ops.floats(jet_p4)
    pt, m = pt_eta_phi_ops(ops, p4)[0], mass(p4)
    log_pt, log_m = (ops.log(ops.clip_min(x, JET_FLOOR_GEV)) for x in (pt, m))
    return ops.out(ops.stack([log_pt, log_m], axis=-1))


def sample_features(sample: JetSample, variations: Any = None, max_constituents: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features of a whole :class:`~hepnb.data.sample.JetSample`, as numpy arrays.

    ``variations``: which of axis 1 to keep, by index or name, in order (``None`` = all); ``max_constituents``:
    keep the hardest ``C'`` constituents (``None`` = all ``C``). The jet axis is the sample's stored ``jet_p4``
    (all constituents, before truncation). Returns ``(x, jet, mask)``: ``x`` (N, V', C', 15) float32,
    ``jet`` (N, V', 2) float32 and ``mask`` (N, V', C') bool. Explained in ``book/data/resimulation.ipynb``.
    """
    if variations is not None:
        if isinstance(variations, (str, int, np.integer)):
            variations = [variations]
        if len(variations) == 0:
            raise SampleError("variations is empty; pass None for all of them")
        sample = sample.select_variations(list(variations))
    if max_constituents is not None:
        sample = sample.truncate(max_constituents)
    n, v, c = sample.mask.shape
    x = np.zeros((n, v, c, len(FEATURE_NAMES)), np.float32)
    jet = np.zeros((n, v, len(JET_FEATURE_NAMES)), np.float32)
    for start in range(0, n, _CHUNK_ROWS):
        part = slice(start, start + _CHUNK_ROWS)
        x[part] = constituent_features(sample.p4[part], sample.charge[part], sample.pid[part], sample.d0[part],
                                       sample.dz[part], sample.mask[part], jet_p4=sample.jet_p4[part])
        jet[part] = jet_features(sample.jet_p4[part])
    return x, jet, sample.mask.astype(bool, copy=True)


def rotate_eta_phi(x: Any, angle: Any) -> Any:
    """Rotate every jet's constituents about the jet axis in the (Δη, Δφ) plane by ``angle`` (one per jet, radians).

    ``x`` (B, C, 15) features in :data:`FEATURE_NAMES` order (NumPy or torch); only ``deta`` and ``dphi`` change
    (ΔR, momenta, charge, impact parameters and flags are invariant), padding stays zero. A symmetry of a jet
    *image* that a tagger is not taught: used as the transformation g of Glowacki's R(ε) in
    ``book/landscape/sharpness.ipynb``.
    """
    i, j = FEATURE_NAMES.index("deta"), FEATURE_NAMES.index("dphi")
    if is_torch(x):
        import torch

        out, c, s = x.clone(), torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    else:
        out, c, s = np.array(x, copy=True), np.cos(angle)[:, None], np.sin(angle)[:, None]
    out[..., i] = c * x[..., i] - s * x[..., j]
    out[..., j] = s * x[..., i] + c * x[..., j]
    return out


class EtaPhiRotation:
    """The transformation ``g`` of Glowacki's R(ε) for the sharpness page: :func:`rotate_eta_phi` by one angle per
    jet, applied to the feature tensor ``x`` or to the first entry of a model-input tuple ``(x, jet, mask)``.
    Explained in ``book/landscape/sharpness.ipynb``."""

    def __init__(self, angle: Any):
        self.angle = angle

    def __call__(self, inputs: Any) -> Any:
        if isinstance(inputs, tuple):
            return (rotate_eta_phi(inputs[0], self.angle), *inputs[1:])
        return rotate_eta_phi(inputs, self.angle)


class JetBoost:
    """The transformation ``g`` of Glowacki's soft Lorentz-symmetry loss (SEAL): one random Lorentz boost per jet,
    applied to every constituent's 4-vector, and the features recomputed from the boosted 4-vectors with the jet
    axis (and the pT and E references) taken from the boosted constituents. Explained in
    ``book/simplicity/simplicity.ipynb``.

    ``jet_boost(batch) -> batch``: the batch's ``p4`` (B, C, 4) [GeV] and ``mask`` (B, C) give a new ``x`` (B, C, 7)
    of :data:`KINEMATIC_FEATURES`; every other entry is kept. Velocities follow
    :func:`hepnb.physics.kinematics.random_velocities` (direction uniform on the sphere, ``|beta|^2`` uniform in
    ``[0, beta2_max)``), drawn from a NumPy generator seeded with ``seed`` (a new draw at every call). Padding stays
    exactly zero (a zero 4-vector boosts to zero). The boost runs on the batch's device, in float64 when ``p4`` is.
    """

    def __init__(self, seed: int = 0, beta2_max: float = 0.95, p4_key: str = "p4", mask_key: str = "mask",
                 x_key: str = "x"):
        from hepnb.physics.kinematics import random_velocities

        random_velocities(0, beta2_max)  # checks beta2_max
        self.seed, self.beta2_max = int(seed), float(beta2_max)
        self.keys = (p4_key, mask_key, x_key)
        self.rng = np.random.default_rng(self.seed)

    def velocities(self, n: int) -> np.ndarray:
        """The next ``n`` boost velocities (n, 3)."""
        from hepnb.physics.kinematics import random_velocities

        return random_velocities(n, self.beta2_max, self.rng)

    def __call__(self, batch: Any) -> dict[str, Any]:
        p4_key, mask_key, x_key = self.keys
        p4, mask = batch[p4_key], batch[mask_key]
        beta = self.velocities(int(p4.shape[0]))
        return {**batch, x_key: boosted_features(p4, mask, beta)}


def boosted_features(p4: Any, mask: Any, beta: Any) -> Any:
    """:func:`kinematic_features` of jets whose constituents ``p4`` (B, C, 4) are boosted by one velocity per jet,
    ``beta`` (B, 3); the jet axis is the sum of the boosted constituents. NumPy or torch like ``p4`` (``beta`` is
    converted). Explained in ``book/simplicity/simplicity.ipynb``."""
    from hepnb.physics.kinematics import boost

    if is_torch(p4):
        import torch

        beta = torch.as_tensor(beta, dtype=p4.dtype if p4.is_floating_point() else torch.float64, device=p4.device)
    else:
        beta = np.asarray(beta, dtype=np.float64)
    if tuple(beta.shape) != (p4.shape[0], 3):
        raise ValueError(f"beta must be (B, 3) with B = {p4.shape[0]} jets, got {tuple(beta.shape)}")
    return kinematic_features(boost(p4, beta[:, None, :]), mask)


def boosted_inputs(x: Any, p4: Any, mask: Any, jet_p4: Any, beta: Any) -> tuple[Any, Any]:
    """``(x', jet')``: the 15 constituent features ``x`` (B, C, 15) and the 2 jet features of jets whose constituents
    ``p4`` (B, C, 4) *and* jet axis ``jet_p4`` (B, 4) are boosted by one velocity per jet, ``beta`` (B, 3).

    The seven kinematic columns are recomputed from the boosted 4-vectors with the boosted jet as the axis and the
    pT / E reference, so ``beta = 0`` gives back the features :func:`sample_features` made (up to float32 rounding);
    charge, impact parameters and particle flags are kept (a boost does not change what a particle is, and the
    impact parameters are not re-derived). The jet features are those of the boosted jet: its pT changes, its mass
    does not. NumPy or torch like ``p4``. The SEAL transformation of the dense tagger in
    ``book/benchmark/benchmark.ipynb``."""
    from hepnb.physics.kinematics import boost

    if is_torch(p4):
        import torch

        beta = torch.as_tensor(beta, dtype=torch.float64, device=p4.device)
        p4, jet_p4 = p4.double(), torch.as_tensor(jet_p4, device=p4.device).double()
        cat = torch.cat
    else:
        beta, p4, jet_p4 = (np.asarray(a, dtype=np.float64) for a in (beta, p4, jet_p4))
        cat = np.concatenate
    if tuple(beta.shape) != (p4.shape[0], 3) or tuple(jet_p4.shape) != (p4.shape[0], 4):
        raise ValueError(f"beta must be (B, 3) and jet_p4 (B, 4) with B = {p4.shape[0]} jets, got "
                         f"{tuple(beta.shape)} and {tuple(jet_p4.shape)}")
    jet = boost(jet_p4, beta)
    kinematic = kinematic_features(boost(p4, beta[:, None, :]), mask, jet_p4=jet)
    return cat([kinematic, x[..., len(KINEMATIC_FEATURES):]], -1), jet_features(jet)


class JetInputBoost:
    """The transformation ``g`` of Glowacki's SEAL loss for the dense tagger's inputs: one random Lorentz boost per
    jet (``|beta|^2`` uniform in ``[0, beta2_max)``, direction uniform; a new draw at every call from a NumPy
    generator seeded with ``seed``), applied by :func:`boosted_inputs` to a batch's ``p4`` and ``jet_p4``; returns
    the batch with ``x`` and ``jet`` replaced. Explained in ``book/benchmark/benchmark.ipynb``."""

    def __init__(self, seed: int = 0, beta2_max: float = 0.95):
        self._velocities = JetBoost(seed, beta2_max)

    def __call__(self, batch: Any) -> dict[str, Any]:
        beta = self._velocities.velocities(int(batch["p4"].shape[0]))
        x, jet = boosted_inputs(batch["x"], batch["p4"], batch["mask"], batch["jet_p4"], beta)
        return {**batch, "x": x, "jet": jet}


class BoostInputs:
    """The ``g`` of Glowacki's R(ε) (eq. 6) on model inputs ``(x, mask)``: the features of the same jets boosted by
    fixed velocities ``beta`` (B, 3), recomputed from their 4-vectors ``p4`` (B, C, 4). Explained in
    ``book/simplicity/simplicity.ipynb``."""

    def __init__(self, p4: Any, beta: Any):
        self.p4, self.beta = p4, beta

    def __call__(self, inputs: Any) -> tuple[Any, ...]:
        x, mask = inputs[0], inputs[-1]
        gx = boosted_features(self.p4.to(x.device) if is_torch(self.p4) else self.p4, mask, self.beta)
        return (gx, *inputs[1:])
