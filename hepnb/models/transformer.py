"""The jet transformer of Glowacki (the SEAL paper, Sec. 3.2); explained in ``book/landscape/sharpness.ipynb`` and,
with its symmetry-constrained training, in ``book/simplicity/simplicity.ipynb``.

Architecture, as the paper describes it: every constituent's feature vector is embedded by a linear layer to
``d_model = 256`` followed by a ReLU; three transformer encoder layers (4 attention heads, feed-forward hidden
dimension 256, residual connections, post-layer normalisation, ReLU); mean pooling over the constituents;
"dimensionality reduction from 256 to 128 through three linear layers with ReLU activations" and one output logit.

Choices where the paper is silent or differs from us, stated here and in the book:

* **Inputs.** Glowacki uses 7 features per constituent of the hls4ml jets (Δη, Δφ, log pT/pT_jet, log pT,
  log E/E_jet, log E, ΔR) and up to 32 constituents. Ours default to the 15 features of
  :data:`hepnb.data.features.FEATURE_NAMES` (the same 7 kinematic ones plus charge, track impact parameters and
  particle-type flags); ``n_features=7`` with the kinematic columns gives the paper's inputs. The model works for any
  number of constituents; the book uses 32, as the paper does.
* **Feed-forward width.** ``dim_feedforward = 256``, as the paper writes. With the head read as
  256 → 128 → 128 → 128 (three linear layers with ReLU) → 1, the total is **1,257,473** trainable parameters at the
  default 15 features (1,255,425 at the paper's 7, 931 fewer than the paper's 1,256,356). The paper's exact count is
  matched by no natural head of this shape, input width or added layer norm (a search over head widths of 1-256 per
  layer and 2-4 layers, 7, 8 or 16 inputs and 0-2 extra layer norms found only one unnatural solution); the
  difference is in a detail the paper does not give.
  (PyTorch's default ``dim_feedforward = 2048`` would give 4.0 M.)
* **Padding.** The padding mask is passed to attention (``src_key_padding_mask``, True = padding), so padded
  constituents are never attended to, and the pooling is a *masked* mean over the real constituents: the output does
  not depend on what the padding entries hold. A jet without any real constituent pools to zero (its attention still
  sees its first slot, so no row of the softmax is all ``-inf``).
* **Dropout** is 0 by default (the paper names none): the network is then the same function in train and eval
  mode, which the Hessian and sharpness chapters need.

Hessians: PyTorch's fused attention kernels do not all support double backward. Wrap Hessian work in
``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``.
"""

from __future__ import annotations

import torch
from torch import nn

from hepnb.data.features import FEATURE_NAMES

PAPER_PARAMETERS = 1_256_356  # Glowacki, Sec. 3.2


class JetTransformer(nn.Module):
    """``forward(x, mask) -> logits``: x (B, C, F) constituent features, mask (B, C) bool, True for real constituents.

    Returns (B,) logits for ``n_classes = 1`` (binary, use ``BCEWithLogitsLoss``) and (B, n_classes) otherwise.
    ``forward(x, jet, mask)`` is accepted too (the jet features are unused), the uniform signature with which
    :func:`hepnb.training.loop.fit` calls the book's jet models.
    """

    def __init__(self, n_features: int = len(FEATURE_NAMES), d_model: int = 256, n_layers: int = 3,
                 n_heads: int = 4, dim_feedforward: int = 256, head: tuple[int, ...] = (128, 128, 128),
                 n_classes: int = 1, dropout: float = 0.0):
        super().__init__()
        sizes = (n_features, d_model, n_layers, n_heads, dim_feedforward, n_classes, *head)
        if min(sizes) < 1 or d_model % n_heads:
            raise ValueError(f"nonsense sizes: n_features={n_features}, d_model={d_model}, n_layers={n_layers}, "
                             f"n_heads={n_heads} (must divide d_model), dim_feedforward={dim_feedforward}, "
                             f"head={head}, n_classes={n_classes}")
        self.n_features, self.n_classes = int(n_features), int(n_classes)
        self.embed = nn.Sequential(nn.Linear(n_features, d_model), nn.ReLU())
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=dim_feedforward, dropout=dropout,
                                       activation="relu", batch_first=True, norm_first=False)
            for _ in range(n_layers))
        mlp: list[nn.Module] = []
        width = d_model
        for size in head:
            mlp += [nn.Linear(width, size), nn.ReLU()]
            width = size
        mlp.append(nn.Linear(width, n_classes))
        self.head = nn.Sequential(*mlp)

    def forward(self, x: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) not in (1, 2):
            raise TypeError("call as model(x, mask) or model(x, jet, mask)")
        mask = inputs[-1]
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise ValueError(f"expected x (B, C, {self.n_features}), got {tuple(x.shape)}")
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask {tuple(mask.shape)} does not match x {tuple(x.shape)}")
        mask = mask.bool()
        padding = ~mask
        empty = padding.all(dim=1)
        if empty.any():  # let an empty jet attend to its first slot: an all -inf softmax row would give nan
            padding = padding.clone()
            padding[empty, 0] = False
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=padding)
        real = mask.unsqueeze(-1)
        pooled = torch.where(real, h, 0.0).sum(dim=1) / real.sum(dim=1).clamp(min=1).to(h.dtype)
        out = self.head(pooled)
        return out.squeeze(-1) if self.n_classes == 1 else out
