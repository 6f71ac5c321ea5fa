"""The dense jet tagger of Rothen et al. (Appendix C, Table VI); explained in
``book/landscape/sharpness.ipynb`` (and, with its training strategies, in the adversarial chapter).

40 constituents x 15 features + 2 jet features = 602 inputs -> 128 -> 64 -> 32 -> 1 logit, each hidden layer a dense
layer followed by batch normalisation and a ReLU: 88,001 parameters, as Table VI counts them. The paper does not
name the activation; ReLU is the common choice and ours.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DenseTagger(nn.Module):
    """``forward(x, jet, mask=None) -> logit``: x (B, C, F) constituent features (zero for padding), jet (B, 2).

    Only the first ``n_constituents`` constituents are used (Rothen et al.: 40); ``mask`` is accepted for a uniform
    signature across the book's jet models and unused (padding entries are already zero).
    """

    def __init__(self, n_constituents: int = 40, n_features: int = 15, n_jet_features: int = 2,
                 hidden: Sequence[int] = (128, 64, 32)):
        super().__init__()
        if n_constituents < 1 or n_features < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"nonsense sizes: n_constituents={n_constituents}, n_features={n_features}, "
                             f"hidden={hidden}")
        self.n_constituents, self.n_features = int(n_constituents), int(n_features)
        layers: list[nn.Module] = []
        width = self.n_constituents * self.n_features + n_jet_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor, jet: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-2] < self.n_constituents or x.shape[-1] != self.n_features:
            raise ValueError(f"expected x (B, >={self.n_constituents}, {self.n_features}), got {tuple(x.shape)}")
        flat = x[:, : self.n_constituents].reshape(len(x), -1)
        return self.head(self.body(torch.cat([flat, jet], dim=1))).squeeze(-1)
