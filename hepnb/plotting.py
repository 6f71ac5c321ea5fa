"""Figures used across the book; explained in ``book/getting_started.ipynb``."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

JET_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown")


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.5, 5.5))
    return ax


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map azimuthal angles into [-pi, pi)."""
    return (np.asarray(phi) + np.pi) % (2 * np.pi) - np.pi


def event_display(particles: ak.Record | ak.Array, jets: ak.Array, constituents: ak.Array, R: float = 0.8,
                  max_jets: int = 4, eta_range: float = 5.0, ax: Any = None, title: str | None = None) -> Any:
    """One event in the eta-phi plane: particles as dots with area proportional to pT, coloured by jet.

    ``particles``, ``jets`` and ``constituents`` are one event's entries of the outputs of
    :func:`hepnb.generate.visible_final_state` and :func:`hepnb.jets.cluster`. The ``max_jets`` hardest jets get
    a colour, a cross at their axis and a circle of radius ``R`` (drawn again across the phi = +-pi seam).
    """
    import matplotlib.patches as mpatches

    ax = _axes(ax)
    eta = ak.to_numpy(particles.eta)
    phi = wrap_phi(ak.to_numpy(particles.phi))
    pt = ak.to_numpy(particles.pt)
    owner = np.full(len(pt), -1)
    n_jets = min(max_jets, len(jets))
    for j in range(n_jets):
        owner[ak.to_numpy(constituents[j])] = j
    size = 400.0 * pt / max(pt.max(), 1e-9) + 2.0
    rest = owner < 0
    ax.scatter(eta[rest], phi[rest], s=size[rest], c="0.6", alpha=0.6, lw=0, label="not in a shown jet")
    for j in range(n_jets):
        mine = owner == j
        colour = JET_COLOURS[j % len(JET_COLOURS)]
        jet = jets[j]
        label = f"jet {j + 1}: $p_T$ = {jet.pt:.0f} GeV, $m$ = {jet.mass:.0f} GeV, {mine.sum()} particles"
        ax.scatter(eta[mine], phi[mine], s=size[mine], c=colour, alpha=0.75, lw=0, label=label)
        jeta, jphi = float(jet.eta), float(wrap_phi(jet.phi))
        ax.plot([jeta], [jphi], marker="x", color=colour, ms=10, mew=2)
        for shift in (-2 * np.pi, 0.0, 2 * np.pi):
            ax.add_patch(mpatches.Circle((jeta, jphi + shift), R, fill=False, color=colour, ls="--", lw=1.2))
    ax.set_xlim(-eta_range, eta_range)
    ax.set_ylim(-np.pi, np.pi)
    ax.set_aspect("equal")
    ax.set_xlabel(r"pseudorapidity $\eta$")
    ax.set_ylabel(r"azimuth $\phi$ [rad]")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False,
              markerscale=0.6)
    return ax


def histogram(values: np.ndarray, bins: np.ndarray, ax: Any = None, label: str | None = None,
              density: bool = False, **kwargs: Any) -> Any:
    """A step histogram with Poisson error bars (via mplhep), the way HEP plots are drawn."""
    import mplhep

    ax = _axes(ax)
    counts, edges = np.histogram(np.asarray(values), bins=bins)
    mplhep.histplot(counts, edges, yerr=True, ax=ax, label=label, density=density, histtype="step", **kwargs)
    return ax


def jet_display(particles: ak.Record | ak.Array, jet: ak.Record, members: ak.Array, R: float = 0.8,
                ax: Any = None, colour: str = "tab:red", title: str | None = None) -> Any:
    """One jet's constituents in the (delta eta, delta phi) plane around its axis, dot area proportional to pT.

    ``members`` are the jet's particle indices from :func:`hepnb.jets.cluster`. Charged particles are filled
    dots, neutral ones open circles, so the substructure (two prongs for H -> bb) is visible at a glance.
    """
    import matplotlib.patches as mpatches

    ax = _axes(ax)
    parts = particles[members]
    deta = ak.to_numpy(parts.eta) - float(jet.eta)
    dphi = wrap_phi(ak.to_numpy(parts.phi) - float(jet.phi))
    pt = ak.to_numpy(parts.pt)
    size = 600.0 * pt / max(pt.max(), 1e-9) + 4.0
    charged = ak.to_numpy(parts.charge) != 0
    ax.scatter(deta[charged], dphi[charged], s=size[charged], c=colour, alpha=0.7, lw=0, label="charged")
    ax.scatter(deta[~charged], dphi[~charged], s=size[~charged], facecolors="none", edgecolors=colour, lw=1.2,
               label="neutral")
    ax.add_patch(mpatches.Circle((0.0, 0.0), R, fill=False, color="0.4", ls="--", lw=1.0))
    ax.plot([0], [0], marker="x", color="0.2", ms=9, mew=2)
    ax.set_xlim(-1.1 * R, 1.1 * R)
    ax.set_ylim(-1.1 * R, 1.1 * R)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$\Delta\eta$ to the jet axis")
    ax.set_ylabel(r"$\Delta\phi$ to the jet axis")
    ax.set_title(title or f"$p_T$ = {jet.pt:.0f} GeV, $m$ = {jet.mass:.0f} GeV, {len(parts)} particles")
    ax.legend(loc="lower right", fontsize="small", markerscale=0.5)
    return ax
