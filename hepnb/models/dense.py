"""The dense jet tagger of Rothen et al. (Appendix C, Table VI); explained in
``book/landscape/sharpness.ipynb`` (and, with its training strategies, in the adversarial chapter).

40 constituents x 15 features + 2 jet features = 602 inputs -> 128 -> 64 -> 32 -> 1 logit, each hidden layer a dense
layer followed by batch normalisation and a ReLU: 88,001 parameters, as Table VI counts them. The paper does not
name the activation; ReLU is the common choice and ours.

``outputs=8`` turns the same network into an encoder with an 8-d output (no squeeze): the representation that the
cross-shower benchmark (``book/benchmark/benchmark.ipynb``) pre-trains contrastively with RS3L on this backbone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DenseTagger(nn.Module):
    """``forward(x, jet, mask=None) -> logit``: x (B, C, F) constituent features (zero for padding), jet (B, 2).

    Only the first ``n_constituents`` constituents are used (Rothen et al.: 40); ``mask`` is accepted for a uniform
    signature across the book's jet models and unused (padding entries are already zero). ``outputs`` > 1 gives
    (B, outputs) instead of one logit per jet (an encoder; ``out_features`` says how many).
    """

    def __init__(self, n_constituents: int = 40, n_features: int = 15, n_jet_features: int = 2,
                 hidden: Sequence[int] = (128, 64, 32), outputs: int = 1):
        super().__init__()
        if n_constituents < 1 or n_features < 1 or not hidden or min(hidden) < 1 or outputs < 1:
            raise ValueError(f"nonsense sizes: n_constituents={n_constituents}, n_features={n_features}, "
                             f"hidden={hidden}, outputs={outputs}")
        self.n_constituents, self.n_features = int(n_constituents), int(n_features)
        layers: list[nn.Module] = []
        width = self.n_constituents * self.n_features + n_jet_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, int(outputs))
        self.out_features = int(outputs)

    def forward(self, x: torch.Tensor, jet: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.head(self.body(self.inputs(x, jet)))
        return out.squeeze(-1) if self.out_features == 1 else out

    def inputs(self, x: torch.Tensor, jet: torch.Tensor) -> torch.Tensor:
        """The flat input vector (B, C * F + 2) the first layer sees: the leading constituents' features, then the
        jet's."""
        if x.shape[-2] < self.n_constituents or x.shape[-1] != self.n_features:
            raise ValueError(f"expected x (B, >={self.n_constituents}, {self.n_features}), got {tuple(x.shape)}")
        return torch.cat([x[:, : self.n_constituents].reshape(len(x), -1), jet], dim=1)

    def latent(self, x: torch.Tensor, jet: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (B, hidden[-1]), what the head reads."""
        return self.body(self.inputs(x, jet))
