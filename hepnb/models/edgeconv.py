"""The RS3L backbone of Harris et al. (eq. 1): dynamic edge convolutions on padded jets, in pure PyTorch.

Explained in ``book/rs3l/rs3l.ipynb``. Architecture (paper, Sec. II C; the authors' training code):

* ``MLP_embed``: every constituent's 15 features -> 128 -> 128, each layer followed by an ELU;
* three ``DynamicEdgeConv`` layers with ``k = 24``: the ``k`` nearest neighbours of each constituent are found
  afresh in the current (128-d) feature space, *within its own jet*; every edge (i, j) gets the message
  ``ELU(Θ · (x_i, x_j − x_i))`` (one linear layer 256 -> 128), and a constituent's new features are the maximum of
  its messages over its neighbours;
* ``MLP_enc``: 128 -> 64 -> 32 -> 32 -> 8, ELU after every layer (the paper: "outputs of all neurons in both MLPs are
  activated with an exponential linear unit");
* a global sum pool over the constituents: the 8-d RS3L representation ``z``.

Padded constituents (``mask`` False) are never anyone's neighbour, their features are set to zero after every
layer and they add nothing to the pool, so the output does not depend on the padding or on how much there is.
As in PyTorch Geometric's ``knn`` (which the authors' ``DynamicEdgeConv`` calls), a constituent's neighbours
include itself (distance 0). A jet with fewer than ``k`` real constituents uses all of them.

**Why it is fast.** The straightforward form (:func:`dense_edge_conv`: the edge MLP on every (i, j) pair, then a
masked maximum) costs O(C² · 2w · w) per jet and layer. Two exact rewrites remove the edge work:

1. the edge MLP's linear layer splits, ``Θ · (x_i, x_j − x_i) = (Θ_a − Θ_b) x_i + Θ_b x_j``, so both terms are
   computed once per *node* (two C × w × w products);
2. the ELU is increasing, so ``max_j ELU(p_i + q_j) = ELU(p_i + max_j q_j)``: the maximum over neighbours is taken
   of the node term ``q_j`` alone, and the ELU runs once per node. :class:`_NeighbourMax` does this gather-max with
   a backward pass that scatters each gradient to its arg-max neighbour only, so nothing of size C × k × w is kept
   for the backward pass.

What is left per layer is the kNN search (a C × C distance matrix and a top-k) and the two node products.
``benchmarks/edgeconv.py`` times it against the straightforward form and checks the outputs agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

_CHUNK_ELEMENTS = 1 << 19  # gathered messages per chunk on a CPU (2 MiB of float32)

__all__ = ["knn_graph", "neighbour_max", "DynamicEdgeConv", "EdgeConvBackbone", "RS3LTagger", "dense_edge_conv"]


def _check(x: Tensor, mask: Tensor) -> None:
    if x.ndim != 3 or mask.shape != x.shape[:2]:
        raise ValueError(f"expected x (B, C, F) and mask (B, C); got {tuple(x.shape)} and {tuple(mask.shape)}")


@torch.no_grad()
def knn_graph(h: Tensor, mask: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` nearest neighbours of every constituent in feature space, within its own jet.

    ``h`` (B, C, w) features, ``mask`` (B, C) real constituents. Returns ``(index, valid)``, both (B, C, k'):
    ``index[b, i]`` are the neighbours of constituent ``i`` of jet ``b`` by increasing squared Euclidean distance
    (itself first), ``valid`` is False where a jet has fewer than ``k'`` real constituents (``k' = min(k, C)``).
    Padded constituents are never neighbours; the rows of padded constituents are computed but meaningless.
    Explained in ``book/rs3l/rs3l.ipynb``.
    """
    _check(h, mask)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(int(k), h.shape[1])
    sq = (h * h).sum(-1)
    distance = sq[:, :, None] + sq[:, None, :] - 2.0 * (h @ h.transpose(1, 2))
    eye = torch.eye(h.shape[1], dtype=torch.bool, device=h.device)
    distance = distance.masked_fill(eye, -1.0)  # rounding must not push a constituent off its own neighbour list
    distance = distance.masked_fill(~mask[:, None, :], float("inf"))
    index = distance.topk(k, dim=-1, largest=False, sorted=True).indices
    valid = torch.gather(mask[:, None, :].expand(-1, h.shape[1], -1), 2, index)
    return index, valid


class _NeighbourMax(torch.autograd.Function):
    """``out[b, i, c] = max over t of q[b, index[b, i, t], c]``; the backward pass sends each output's gradient to
    its arg-max neighbour only (the first one, ``t`` smallest, on a tie), saving (B, C, w) indices instead of the
    (B, C, k, w) gathered messages.

    The arg-max is not taken with ``max(dim)``, whose CPU kernel for a reduction with indices over a middle axis is
    ~20x slower than ``amax``: the maxima come from ``amax``, and the first neighbour attaining each one from
    ``sign(gathered - max)`` (0 there, −1 elsewhere), ``(1 + sign) · rank`` with ``rank = k, k − 1, ..., 1`` along
    the neighbour axis, and another ``amax`` (the largest rank marks the smallest ``t``). All of it is exact: the
    ranks are small integers (in float32 for half-precision ``q``). Where a maximum is not finite (``inf`` or NaN in
    ``q``), its gradient goes to the first neighbour.
    """

    @staticmethod
    def forward(ctx, q: Tensor, index: Tensor) -> Tensor:  # type: ignore[override]
        b, c, k = index.shape
        n, w = q.shape[1], q.shape[2]
        flat = q.reshape(b * n, w)
        rows = index + n * torch.arange(b, device=index.device)[:, None, None]
        exact = q.dtype if torch.finfo(q.dtype).bits >= 32 else torch.float32  # integers exact up to 2^24
        # k, ..., 1 along the neighbours, materialised over the features (a broadcast (k, 1) is ~5x slower)
        rank = torch.arange(k, 0, -1, dtype=exact, device=q.device)[:, None].expand(k, w).contiguous()
        best = torch.empty((b, c, w), dtype=q.dtype, device=q.device)
        first = torch.empty((b, c, w), dtype=exact, device=q.device)  # rank of the first neighbour at the max
        step = b if q.is_cuda else max(1, _CHUNK_ELEMENTS // (c * k * w))  # on a CPU, keep each chunk in cache
        for s in range(0, b, step):
            part = slice(s, s + step)
            gathered = flat.index_select(0, rows[part].reshape(-1)).view(-1, c, k, w)  # row copies
            top = torch.amax(gathered, dim=2, out=best[part])
            marks = gathered.sub_(top[:, :, None]).sign_().to(exact)  # 0 at the maxima, -1 elsewhere
            torch.amax(torch.addcmul(rank, marks, rank, out=marks), dim=2, out=first[part])  # (1 + sign) rank
        t = k - first.nan_to_num_(float(k)).long()  # a finite maximum is attained exactly: 1 <= first <= k
        ctx.save_for_backward(torch.gather(index, 2, t))
        ctx.n_nodes = n
        return best

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (arg,) = ctx.saved_tensors
        out = torch.zeros((grad.shape[0], ctx.n_nodes, grad.shape[2]), dtype=grad.dtype, device=grad.device)
        return out.scatter_add_(1, arg, grad), None


def neighbour_max(q: Tensor, index: Tensor, valid: Tensor) -> Tensor:
    """Maximum of the node features ``q`` (B, C, w) over each constituent's valid neighbours (``index``, ``valid``
    from :func:`knn_graph`), differentiable in ``q``. An invalid neighbour is replaced by the constituent itself,
    which changes no maximum (a real constituent is always its own first neighbour); a padded constituent's row is
    meaningless. Explained in ``book/rs3l/rs3l.ipynb``."""
    own = torch.arange(index.shape[1], device=index.device)[None, :, None]
    return _NeighbourMax.apply(q, torch.where(valid, index, own))


class DynamicEdgeConv(nn.Module):
    """One dynamic edge convolution (Wang et al.; Harris et al., eq. 1) with max aggregation and the edge MLP
    ``ELU(Linear(2 w_in -> w_out))`` on ``(x_i, x_j − x_i)``; the graph is the kNN graph of the *input* features.

    ``forward(h, mask) -> h'`` (B, C, w_out), zero for padding. Computed in the factorised form of the module
    docstring (exactly the same function as :func:`dense_edge_conv`). Explained in ``book/rs3l/rs3l.ipynb``.
    """

    def __init__(self, width_in: int, width_out: int, k: int = 24):
        super().__init__()
        if min(width_in, width_out, k) < 1:
            raise ValueError(f"nonsense sizes: width_in={width_in}, width_out={width_out}, k={k}")
        self.k = int(k)
        self.width_in = int(width_in)
        self.edge = nn.Linear(2 * width_in, width_out)  # acts on (x_i, x_j - x_i), as the reference code's

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        _check(h, mask)
        if h.shape[-1] != self.width_in:
            raise ValueError(f"expected {self.width_in} features per constituent, got {h.shape[-1]}")
        index, valid = knn_graph(h, mask, self.k)
        a, b = self.edge.weight[:, : self.width_in], self.edge.weight[:, self.width_in:]
        p = F.linear(h, a - b, self.edge.bias)  # the x_i part of every message
        q = F.linear(h, b)  # the x_j part
        return F.elu(p + neighbour_max(q, index, valid)) * mask[..., None]


def dense_edge_conv(layer: DynamicEdgeConv, h: Tensor, mask: Tensor) -> Tensor:
    """The straightforward form of ``layer``: the edge MLP on every (i, j) pair of a jet, masked to the kNN graph,
    then the maximum over j. The reference that :class:`DynamicEdgeConv` is tested and benchmarked against
    (``benchmarks/edgeconv.py``); O(C²) edges, so only for checks. Explained in ``book/rs3l/rs3l.ipynb``."""
    _check(h, mask)
    index, valid = knn_graph(h, mask, layer.k)
    c = h.shape[1]
    adjacency = torch.zeros(h.shape[0], c, c, dtype=torch.bool, device=h.device)
    adjacency.scatter_(2, index, valid)
    xi = h[:, :, None, :].expand(-1, -1, c, -1)
    xj = h[:, None, :, :].expand(-1, c, -1, -1)
    messages = F.elu(layer.edge(torch.cat([xi, xj - xi], dim=-1)))
    out = messages.masked_fill(~adjacency[..., None], float("-inf")).amax(dim=2)
    out = out.masked_fill(torch.isinf(out), 0.0)
    return out * mask[..., None]


def _mlp(widths: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(w_in, w_out), nn.ELU()]
    return nn.Sequential(*layers)


class EdgeConvBackbone(nn.Module):
    """The RS3L backbone (Harris et al., eq. 1): ``forward(x, mask) -> z`` (B, ``encoder[-1]``).

    ``x`` (B, C, ``n_features``) constituent features (:data:`hepnb.data.features.FEATURE_NAMES`), ``mask`` (B, C).
    Defaults are the paper's: ``embed = (128, 128)``, ``n_conv = 3`` layers of width ``embed[-1]`` with ``k = 24``,
    ``encoder = (64, 32, 32, 8)``. The book scale narrows these (see the chapter). Explained in
    ``book/rs3l/rs3l.ipynb``.
    """

    def __init__(self, n_features: int = 15, embed: Sequence[int] = (128, 128), k: int = 24, n_conv: int = 3,
                 encoder: Sequence[int] = (64, 32, 32, 8)):
        super().__init__()
        embed, encoder = tuple(int(w) for w in embed), tuple(int(w) for w in encoder)
        if n_features < 1 or not embed or not encoder or min(embed + encoder) < 1 or n_conv < 0 or k < 1:
            raise ValueError(f"nonsense sizes: n_features={n_features}, embed={embed}, k={k}, n_conv={n_conv}, "
                             f"encoder={encoder}")
        self.n_features, self.k = int(n_features), int(k)
        width = embed[-1]
        self.embed = _mlp((self.n_features, *embed))
        self.convs = nn.ModuleList(DynamicEdgeConv(width, width, k) for _ in range(n_conv))
        self.encoder = _mlp((width, *encoder))
        self.out_features = encoder[-1]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        _check(x, mask)
        if x.shape[-1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features per constituent, got {x.shape[-1]}")
        real = mask[..., None].to(x.dtype)
        x = x.masked_fill(~mask[..., None], 0.0)  # whatever the padding holds (even NaN), it never enters
        h = self.embed(x) * real
        for conv in self.convs:
            h = conv(h, mask)
        return (self.encoder(h) * real).sum(dim=1)


class RS3LTagger(nn.Module):
    """A backbone with the RS3L fine-tuning head (Harris et al., Sec. II D): ``Linear(8 -> 1)`` on the
    L2-normalised representation; ``forward(x, mask) -> logit`` (the sigmoid is in the loss). Any backbone with an
    ``out_features`` attribute works: the head passes the inputs on as they come, so the dense backbone of the
    cross-shower benchmark (``book/benchmark/benchmark.ipynb``) is called as ``forward(x, jet, mask)``.

    ``freeze_backbone=True`` is the *fixed* fine-tuning: the backbone's weights get no gradient (and stay
    bit-identical); ``False`` is *floating* (or, from random weights, the fully supervised network). Explained in
    ``book/rs3l/rs3l.ipynb``.
    """

    def __init__(self, backbone: nn.Module, freeze_backbone: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_features, 1)
        self.frozen = bool(freeze_backbone)
        for p in self.backbone.parameters():
            p.requires_grad_(not self.frozen)

    def train(self, mode: bool = True) -> RS3LTagger:
        """A fixed backbone stays in eval mode: its batch normalisation (the dense backbone has some) must not
        update its running statistics while the head trains, or the "fixed" representation would drift."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def representation(self, *inputs: Tensor) -> Tensor:
        """The L2-normalised representation the head sees."""
        return F.normalize(self.backbone(*inputs), dim=-1)

    def forward(self, *inputs: Tensor) -> Tensor:
        if self.frozen:
            with torch.no_grad():
                z = self.representation(*inputs)
        else:
            z = self.representation(*inputs)
        return self.head(z).squeeze(-1)
