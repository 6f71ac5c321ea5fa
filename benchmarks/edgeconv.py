"""The RS3L EdgeConv backbone (``hepnb.models.edgeconv``) against the straightforward edge convolution.

Both forms are the same network with the same weights: :class:`~hepnb.models.edgeconv.EdgeConvBackbone` (the edge
MLP factorised into node terms, the maximum over neighbours taken of those, ``_NeighbourMax``), and ``Dense``
below, which calls the backbone's own ``embed``, then :func:`~hepnb.models.edgeconv.dense_edge_conv` for each of its
``DynamicEdgeConv`` layers (the edge MLP on every (i, j) pair of a jet, masked to the kNN graph, then the maximum),
then its ``encoder`` and the sum pool, exactly as ``EdgeConvBackbone.forward`` does.

The batch is random but seeded: ``--batch`` jets x ``--constituents`` slots x 15 features, standard-normal features
for the real constituents and zero padding at the end, as the data pipeline stores jets sorted by pT. The number of
real constituents varies from jet to jet: a normal distribution of mean 0.8 and width 0.15 of the slots, rounded
and clipped to [0.2, 1] of them (about 80% real overall; 7-9% of jets fill every slot, as jets with more
constituents than slots do). One step is a forward pass, the loss ``mean(z^2)`` and a backward pass to every
weight. The straightforward form is timed on the first ``--dense-jets`` jets of the batch (its cost per jet does not
depend on how many there are: every jet has C² edges, padded or not), in passes of ``--dense-chunk`` jets
(gradients accumulate: the same gradients as one pass, without the ~6 GB of edge tensors that 200 jets of the
paper's size need at once).

First the two forms' outputs ``z`` on the whole batch are compared (no gradients): the script prints the largest
absolute difference against the largest ``|z|`` and exits 1 if they disagree beyond float tolerance
(``|dz| <= 1e-4 max|z| + 1e-5 |z|``, float32; in a deeper layer a constituent at a near-tie between its k-th and
(k+1)-th neighbours could in principle pick a different neighbour in the two forms, whose outputs differ by
rounding, and that would show here). Then hepnb runs one untimed step and ``--reps`` timed steps of the whole
batch, the straightforward form ``--dense-reps`` timed steps of its jets (no separate warm-up: the comparison has
just run its forward pass); a form's rate is jets per median step second. It prints both rates and the headline

``speed ratio (hepnb / straightforward): X.X  (target >= 4)``

and ``BELOW TARGET`` under 4. It exits 0 whatever the ratio.

Run: ``.venv/bin/python benchmarks/edgeconv.py [--batch 200] [--constituents 100] [--k 24] [--width 128] [--reps 5]
[--dense-jets 50] [--dense-reps 1] [--dense-chunk 25] [--threads <all cores>] [--device cpu|cuda] [--seed 0]``. The
defaults are the paper's size (Harris et al.: 100 constituents, k = 24, width 128); the book scale is
``--constituents 24 --k 12 --width 32`` (``hepnb.config``, rs3l chapter). About 20 s on the quiet 2-core
development machine, nearly all of it the straightforward form (~8 jets/s forward + backward there; ~3 and a minute
when the machine is shared). Measured numbers: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from hepnb.models.edgeconv import EdgeConvBackbone, dense_edge_conv

N_FEATURES = 15
TARGET = 4.0


class Dense(nn.Module):
    """``backbone``'s network with every ``DynamicEdgeConv`` computed by :func:`dense_edge_conv` (same weights)."""

    def __init__(self, backbone: EdgeConvBackbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b = self.backbone
        real = mask[..., None].to(x.dtype)
        h = b.embed(x) * real
        for conv in b.convs:
            h = dense_edge_conv(conv, h, mask)
        return (b.encoder(h) * real).sum(dim=1)


def make_batch(batch: int, constituents: int, seed: int, device: str) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    fraction = (0.8 + 0.15 * torch.randn(batch, generator=g)).clamp(0.2, 1.0)
    n_real = (fraction * constituents).round().long().clamp(1, constituents)
    mask = torch.arange(constituents)[None, :] < n_real[:, None]
    x = torch.randn(batch, constituents, N_FEATURES, generator=g) * mask[..., None]
    return x.to(device), mask.to(device)


def chunks(x: Tensor, mask: Tensor, size: int | None):
    size = x.shape[0] if size is None else size
    for s in range(0, x.shape[0], size):
        yield x[s:s + size], mask[s:s + size]


def step(model: nn.Module, x: Tensor, mask: Tensor, chunk: int | None) -> None:
    """One forward + backward of the whole batch (in chunks of jets: the gradients add up to the same)."""
    model.zero_grad(set_to_none=True)
    for xc, mc in chunks(x, mask, chunk):
        z = model(xc, mc)
        (z.square().sum() / (x.shape[0] * z.shape[1])).backward()


def timed(fn: Callable[[], None], reps: int, device: str, warm_up: bool = True) -> list[float]:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    if warm_up:
        fn()  # not timed
    sync()
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--constituents", type=int, default=100)
    ap.add_argument("--k", type=int, default=24)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5, help="timed steps of the hepnb form")
    ap.add_argument("--dense-jets", type=int, default=50, help="jets the straightforward form is timed on")
    ap.add_argument("--dense-reps", type=int, default=1, help="timed steps of the straightforward form")
    ap.add_argument("--dense-chunk", type=int, default=25, help="jets per pass of the straightforward form")
    ap.add_argument("--threads", type=int, default=cores, help=f"torch threads (default: all {cores} cores)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if min(args.batch, args.constituents, args.k, args.width, args.reps, args.dense_jets, args.dense_reps,
           args.dense_chunk, args.threads) < 1:
        ap.error("sizes, repetitions and threads must be positive")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda asked for, but torch sees no CUDA device")
    torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    backbone = EdgeConvBackbone(n_features=N_FEATURES, embed=(args.width, args.width), k=args.k).to(args.device)
    dense = Dense(backbone)
    x, mask = make_batch(args.batch, args.constituents, args.seed, args.device)
    n_real = mask.sum(1).float()
    print(f"EdgeConvBackbone: {sum(p.numel() for p in backbone.parameters()):,} parameters, width {args.width}, "
          f"k {args.k}, {len(backbone.convs)} edge convolutions; batch {args.batch} jets x {args.constituents} "
          f"constituents, {n_real.mean() / args.constituents:.0%} real (per jet {int(n_real.min())}-"
          f"{int(n_real.max())}, {float((n_real == args.constituents).float().mean()):.0%} full); device "
          f"{args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}")

    with torch.no_grad():
        z_fast = backbone(x, mask)
        z_dense = torch.cat([dense(xc, mc) for xc, mc in chunks(x, mask, args.dense_chunk)])
    diff = (z_fast - z_dense).abs()
    scale = float(z_fast.abs().max())
    agree = bool((diff <= 1e-4 * scale + 1e-5 * z_fast.abs()).all())
    print(f"outputs: max |z_hepnb - z_straightforward| = {float(diff.max()):.2e} (max |z| = {scale:.3g}): "
          f"{'agree' if agree else 'DISAGREE'}")
    if not agree:
        return 1

    fast_s = timed(lambda: step(backbone, x, mask, None), args.reps, args.device)
    n_dense = min(args.dense_jets, args.batch)
    x_dense, mask_dense = x[:n_dense], mask[:n_dense]
    dense_s = timed(lambda: step(dense, x_dense, mask_dense, args.dense_chunk), args.dense_reps, args.device,
                    warm_up=False)
    rate_fast = args.batch / statistics.median(fast_s)
    rate_dense = n_dense / statistics.median(dense_s)
    print(f"hepnb (factorised):    {rate_fast:9.1f} jets/s forward+backward  (median of {args.reps} steps of "
          f"{', '.join(f'{s:.3f}' for s in fast_s)} s)")
    print(f"straightforward dense: {rate_dense:9.1f} jets/s forward+backward  (median of {args.dense_reps} steps of "
          f"{n_dense} jets: {', '.join(f'{s:.2f}' for s in dense_s)} s, {args.dense_chunk} jets per pass)")
    ratio = rate_fast / rate_dense
    print(f"speed ratio (hepnb / straightforward): {ratio:.1f}  (target >= {TARGET:g})"
          + ("  BELOW TARGET" if ratio < TARGET else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
