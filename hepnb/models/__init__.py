"""The book's networks, and what every chapter asks of a model; each module's docstring says which paper it follows
and where we differ.

``dense``        the dense jet tagger of Rothen et al. (Table VI), explained in ``book/landscape/sharpness.ipynb``
``transformer``  the jet transformer of Glowacki (Sec. 3.2), explained in ``book/landscape/sharpness.ipynb``
``dimuon``       the PFN, Lorentz-invariant and hybrid networks of Nabat et al. (App. B), explained in
                 ``book/symmetry/symmetry.ipynb``
``edgeconv``     the dynamic-edge-convolution backbone of Harris et al. (RS3L), explained in ``book/rs3l/rs3l.ipynb``
``pairwise``     pairwise Lorentz invariants of jet constituents and the jet hybrid (Nabat et al.'s idea on jets),
                 explained in ``book/benchmark/benchmark.ipynb``
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters of a model (BatchNorm's affine weights count; its running statistics do not).

    Explained in ``book/adversarial/adversarial.ipynb`` (the 88,001 of Rothen et al.'s Table VI)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextlib.contextmanager
def mode(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Put every module of ``model`` in training (``True``) or eval mode (``False``, the default) for the block, and
    restore each module's own mode afterwards (not just the top-level flag).

    The one place where the book switches modes temporarily: attacks and Hessians are taken in eval mode (BatchNorm
    uses its running statistics, dropout is off), and so are predictions. Explained in
    ``book/landscape/sharpness.ipynb``.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for m, was in modes:
            m.training = was


from hepnb.models.dense import DenseTagger  # noqa: E402  (after n_parameters/mode: submodules may import them)
from hepnb.models.transformer import JetTransformer  # noqa: E402

__all__ = ["DenseTagger", "JetTransformer", "mode", "n_parameters"]
