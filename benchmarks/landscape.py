"""Loss-landscape toolkit against PyHessian: top Hessian eigenvalue and Hessian trace of Glowacki's jet transformer.

Headline (run first; alone with ``--headline-only``)
----------------------------------------------------
The curvature summary the simplicity chapter (Glowacki's SEAL, :mod:`hepnb.studies.simplicity`) needs of each
trained teacher: λ₁ to relative tolerance 1e-3 *and* Tr(H) to 2% relative standard error, together. The model is
the chapter's trained unconstrained (BCE) teacher at ``--scale`` (default ``book``: width 64; ``smoke``: width 16),
loaded from its checkpoint (``study.load_teacher``; if the chapter was not run at that scale the script says so and
skips the headline), on the chapter's Hessian batch (``study._hessian_batch``: ``hessian_jets`` training jets, half
gluon, half W), ``BCEWithLogitsLoss``, eval mode and the math SDPA kernel for both tools, both behind the same
one-tensor ``Packed`` wrapper. hepnb runs as the chapter does (``study._curvature``): one
``ParameterSpace(vectorize=False)`` built inside the timing, ``lanczos(space, k=1, tol=1e-3)``, then
``hutchinson_trace(space, rel_error=0.02, deflate=5, batch_probes=8)`` on the same space. PyHessian: one
``hessian(...)``, ``eigenvalues(top_n=1, maxIter=100, tol=1e-3)``, then Rademacher samples from its own
``trace(maxIter=1, tol=0)`` until hepnb's stopping rule holds (as in part (b)). Both are capped at ``--max-probes``
probes (PyHessian at the cap is flagged, and the ratio is then a lower bound). Checks: both λ₁ against a tol-1e-8
Lanczos reference, and the two traces (each ± its SE) in combined standard errors. A variant with
``batch_probes=1`` is timed and printed, not used. It ends in
``headline speed ratio (PyHessian / hepnb), lambda_1 to 1e-3 + Tr(H) to 2% on the simplicity chapter's trained
transformer: X.XX (target >= 3)``.
Measured at book scale (2026-12-01, 2-core machine, partly loaded): 15.07, a lower bound. PyHessian reached the
1500-probe cap at 3.5% (1504 HVPs, 760 s); hepnb needed 68 HVPs, 50 s (details in benchmarks/README.md). The headline
takes ~15 minutes at book scale, nearly all of it PyHessian's probes.

The parts below (a), (b)
------------------------
One model, one fixed batch, one process. The model is :class:`hepnb.models.JetTransformer` at the size of Glowacki's
transformer (d_model 256, 3 layers, 4 heads: 1,257,473 parameters), trained for a few Adam steps on the batch itself
(seeded) so that it is not at its random initialisation. The batch is random but seeded: ``--jets`` jets x 32
constituents x 15 features, a random number of real constituents per jet (4 to 32, the rest zero padding), random
binary labels, ``BCEWithLogitsLoss``. PyHessian calls ``model(inputs)`` with one tensor, so both tools see the same
wrapper: the features and the mask packed along the last axis, ``(B, 32, 16)``. Every PyHessian call runs under the
math SDPA kernel (hepnb forces it itself); both tools work in eval mode.

(a) Top eigenvalue to relative tolerance 1e-3. PyHessian: ``hessian(...)`` (one forward and backward with
    ``create_graph``) plus ``eigenvalues(top_n=1, maxIter=100, tol=1e-3)``, power iteration stopped when the
    Rayleigh quotient changes by less than 1e-3 between two steps. hepnb: ``ParameterSpace(...)`` plus
    ``lanczos(space, k=1, tol=1e-3)``, stopped on the Ritz residual (its eigenvalue error is of order tol^2).
    Both are compared with a long Lanczos run (tol 1e-8), the reference.
(b) Trace to 2% relative standard error, at *equal accuracy*. PyHessian's own ``trace(maxIter, tol)`` stops when the
    running mean changes by less than ``tol`` (it can stop after two samples, at any accuracy), so here it draws
    Rademacher samples one ``trace(maxIter=1, tol=0)`` call at a time (its own HVP code, timed cumulatively, the
    ``hessian(...)`` set-up included) until the same rule as hepnb's is met: at least 10 samples and
    ``std(ddof=1) / sqrt(n) / |mean| < 0.02``. hepnb: ``hutchinson_trace(space, rel_error=0.02, batch_probes=b)``
    with a fresh ``ParameterSpace`` (so it pays its own gradient graph), for the b of 1, 4, 8 with the lowest
    seconds per probe in a short 32-probe timing run of each (all three full runs would triple the runtime), and
    ``hutchinson_trace(space, rel_error=0.02, deflate=5)``: the top 5 eigenvectors by Lanczos, their part of the
    trace exactly, Hutchinson on the rest (projected probes) -- fewer probes for the same 2%. The headline ratio is
    PyHessian against the faster of the two; both ratios are printed.
    What PyHessian's own stop (``tol=1e-3``) would have returned on the same samples is printed as well.

Each task ends in ``speed ratio (PyHessian / hepnb): X.XX (target >= 3)`` (seconds, not HVP counts). The script also
reports whether PyHessian left ``.grad`` set on the parameters (it does: ``loss.backward(create_graph=True)`` in its
constructor, gradients that hold the whole double-backward graph) and whether it changed the model's mode.

Run: ``.venv/bin/python benchmarks/landscape.py [--scale book] [--headline-only] [--jets 64] [--adam-steps 20]
[--rel-error 0.02] [--seed 0]`` after ``pip install -r benchmarks/requirements.txt`` (PyHessian is a benchmark-only
dependency); ``--jets``, ``--adam-steps``, ``--rel-error`` and ``--deflate`` concern parts (a) and (b) only, the
headline keeps its fixed task. For (a) and (b) the batch is 64 jets, not 256: one Hessian-vector product of the
Glowacki-size model costs ~0.3 s at 64 jets and ~1.7 s at 256 on the 2-core development machine, and the trace needs
hundreds of probes for 2% (the Rademacher variance of this Hessian is large: a single probe scatters by 50-150% of the
trace), so the run takes several minutes even so; ``--rel-error 0.05`` is ~6x quicker. The model keeps Glowacki's
size whatever ``--jets``. It always exits 0 (benchmarks report, they do not fail) and prints ``BELOW TARGET`` when a
ratio is under 3.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import sys
import time
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

TARGET = 3.0
N_CONSTITUENTS, N_FEATURES = 32, 15
PROBE_TIMING = 32  # probes per batch_probes setting in the short per-probe timing
MIN_PROBES = 10  # hepnb.landscape.hutchinson_trace's default, applied to PyHessian's samples as well
HEADLINE_EIG_TOL, HEADLINE_REL_ERROR = 1e-3, 0.02  # the headline task: lambda_1 to 1e-3 and Tr(H) to 2% together
HEADLINE_DEFLATE, HEADLINE_BATCH_PROBES = 5, 8  # hepnb as the chapter runs it (study.Settings.deflate, _curvature)


class Packed(nn.Module):
    """``model(packed)`` with ``packed = cat([x, mask], -1)``: one input tensor, as PyHessian calls models."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        return self.model(packed[..., :-1], packed[..., -1] > 0.5)


def make_batch(n_jets: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(packed inputs (B, 32, 16), labels (B,))``: seeded random features, padding and binary labels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_jets, N_CONSTITUENTS, N_FEATURES, generator=gen)
    n_real = torch.randint(4, N_CONSTITUENTS + 1, (n_jets,), generator=gen)
    mask = torch.arange(N_CONSTITUENTS) < n_real[:, None]
    x[~mask] = 0.0
    y = torch.randint(0, 2, (n_jets,), generator=gen).float()
    return torch.cat([x, mask[..., None].float()], dim=-1), y


def grads_left(model: nn.Module) -> tuple[int, int, int]:
    """(parameters with ``.grad`` set, of those carrying an autograd graph, all parameters)."""
    params = list(model.parameters())
    set_ = [p for p in params if p.grad is not None]
    return len(set_), sum(p.grad.grad_fn is not None or p.grad.requires_grad for p in set_), len(params)


def clear_grads(model: nn.Module) -> None:
    """Drop ``.grad`` (breaks the parameter <-> graph reference cycle that ``backward(create_graph=True)`` makes)."""
    for p in model.parameters():
        p.grad = None
    gc.collect()


def pyhessian_stop(samples: np.ndarray, tol: float) -> int:
    """How many samples PyHessian's own ``trace(tol=tol)`` would have drawn from this sequence of samples."""
    trace = 0.0
    for i in range(1, len(samples) + 1):
        mean = float(np.mean(samples[:i]))
        if abs(mean - trace) / (trace + 1e-6) < tol:
            return i
        trace = mean
    return len(samples)


def rel_se(samples: np.ndarray) -> float:
    n = len(samples)
    return float(np.std(samples, ddof=1) / math.sqrt(n) / abs(np.mean(samples))) if n > 1 else math.inf


@contextlib.contextmanager
def counted_pyhessian_hvps() -> Iterator[dict[str, int]]:
    """Count PyHessian's Hessian-vector products (its ``hessian_vector_product``, patched and restored)."""
    module = sys.modules["pyhessian.hessian"]
    impl = module.hessian_vector_product
    counter = {"n": 0}

    def counted(*a):
        counter["n"] += 1
        return impl(*a)

    module.hessian_vector_product = counted
    try:
        yield counter
    finally:
        module.hessian_vector_product = impl


def pyhessian_trace_samples(h, rel_error: float, max_probes: int) -> list[float]:
    """Rademacher samples from PyHessian's own ``trace(maxIter=1, tol=0)``, one call at a time, until hepnb's rule
    holds: at least ``MIN_PROBES`` samples and ``std(ddof=1) / sqrt(n) / |mean| < rel_error`` (or ``max_probes``)."""
    samples: list[float] = []
    while len(samples) < max_probes:
        samples += h.trace(maxIter=1, tol=0.0)
        if len(samples) >= MIN_PROBES and rel_se(np.asarray(samples)) < rel_error:
            break
    return samples


def verdict(ratio: float) -> None:
    print(f"speed ratio (PyHessian / hepnb): {ratio:.2f} (target >= {TARGET:g})")
    if ratio < TARGET:
        print("BELOW TARGET")


def bound_and_convergence(model: nn.Module, criterion: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                          lam: float, t_ph: float, seed: int, steps: int = 8) -> None:
    """What any exact-HVP method could reach, and relative error against HVPs for both algorithms, same start.

    The floor of every method that uses Hessian-vector products is its set-up (the gradient graph) plus one product:
    ``t_floor``. ``t_ph / t_floor`` is then an upper bound on the speed ratio that *any* such method could show
    against PyHessian here. The per-step table runs power iteration (PyHessian's algorithm, hepnb's
    ``power_iteration``) and Lanczos on one ``ParameterSpace`` from the same random unit vector, reporting the
    Rayleigh quotient's and the top Ritz value's relative error after each product.
    """
    from hepnb.landscape import ParameterSpace
    from hepnb.landscape.spaces import _generator
    from hepnb.landscape.spectra import _lanczos_steps, _random_unit, _ritz

    space = ParameterSpace(model, criterion, (inputs, targets))
    t0 = time.perf_counter()
    v0 = _random_unit(space, _generator(seed))
    space.hvp(v0)  # builds the gradient graph and does one product
    t_floor = time.perf_counter() - t0
    t0 = time.perf_counter()
    space.hvp(v0)
    t_hvp = time.perf_counter() - t0
    print(f"floor of any HVP method (gradient graph + 1 HVP): {t_floor:.2f} s (one further HVP {t_hvp:.2f} s); "
          f"upper bound on any such method's ratio against PyHessian here: {t_ph / t_floor:.2f}")
    alphas, betas, _, n, _ = _lanczos_steps(space, v0, steps, None)
    lz = [abs(_ritz(alphas[:m], betas[: m - 1])[0][-1] - lam) / abs(lam) for m in range(1, n + 1)]
    v, pw = v0.clone(), []
    for _ in range(steps):
        hv = space.hvp(v)
        pw.append(abs(float(torch.dot(v, hv)) - lam) / abs(lam))
        v = hv / hv.norm()
    print("relative error after m HVPs from the same start vector (the reference itself is float32: ~1e-4 floor):")
    print(f"{'m':<16}" + "".join(f"{m:>9d}" for m in range(1, steps + 1)))
    print(f"{'power iteration':<16}" + "".join(f"{e:>9.1e}" for e in pw))
    print(f"{'Lanczos':<16}" + "".join(f"{e:>9.1e}" for e in lz))
    del space
    gc.collect()


def headline(args: argparse.Namespace, hessian) -> None:
    """The curvature summary the simplicity chapter needs, on its trained unconstrained teacher: λ₁ to 1e-3 and Tr(H)
    to 2% relative SE together, PyHessian against hepnb in the chapter's configuration (see the module docstring)."""
    import hepnb
    from hepnb.landscape import ParameterSpace, hutchinson_trace, lanczos
    from hepnb.models import n_parameters
    from hepnb.studies import simplicity as study

    print(f"headline: lambda_1 to {HEADLINE_EIG_TOL:g} + Tr(H) to {HEADLINE_REL_ERROR:.0%} on the simplicity "
          f"chapter's trained transformer (scale {args.scale!r})")
    try:
        cfg = hepnb.resolve(args.scale, chapter="simplicity")
    except hepnb.ConfigError as exc:
        print(f"headline skipped: {exc}")
        return
    t0 = time.perf_counter()
    data = study.load_data(cfg.n_jets, cfg.seed, cfg.workers)
    job = study.Job("bce", 0.0, cfg.seed, cfg.epochs, cfg.width)
    try:
        net = study.load_teacher(job, data)
    except FileNotFoundError:
        make = {"book": "make book", "paper": "make paper NB=book/simplicity/simplicity.ipynb"}.get(
            cfg.scale, f"make book SCALE={cfg.scale}")
        print(f"no trained teacher of the simplicity chapter at scale {cfg.scale!r} ({job}): run the chapter "
              f"notebook book/simplicity/simplicity.ipynb at that scale first (e.g. `{make}`); headline skipped")
        return
    (x, mask), targets = study._hessian_batch(data, cfg.hessian_jets, cfg.seed)
    t_load = time.perf_counter() - t0
    model = Packed(net).eval()  # both tools in eval mode (PyHessian switches to it anyway, hepnb evaluates in it)
    inputs = torch.cat([x, mask[..., None].to(x.dtype)], dim=-1)
    criterion = nn.BCEWithLogitsLoss()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        loss = float(criterion(model(inputs), targets))
    print(f"model: the unconstrained (BCE) teacher, seed {cfg.seed}, {cfg.epochs} epochs: JetTransformer width "
          f"{cfg.width}, {n_parameters(net):,} parameters; Hessian batch: {len(targets)} training jets (half gluon, "
          f"half W) x {x.shape[1]} constituents x {x.shape[2]} features ({int(mask.sum())} real constituents), "
          f"BCE loss {loss:.4f}; loaded in {t_load:.1f} s; torch {torch.get_num_threads()} threads")
    hep_kwargs = {"deflate": HEADLINE_DEFLATE, "batch_probes": HEADLINE_BATCH_PROBES}
    print(f"hepnb configuration (the chapter's, study._curvature): ParameterSpace(vectorize=False) built inside the "
          f"timing, lanczos(k=1, tol={HEADLINE_EIG_TOL:g}), then hutchinson_trace(rel_error={HEADLINE_REL_ERROR:g}, "
          f"deflate={HEADLINE_DEFLATE}, batch_probes={HEADLINE_BATCH_PROBES}) on the same space; PyHessian: "
          f"hessian(...) + eigenvalues(top_n=1, maxIter=100, tol={HEADLINE_EIG_TOL:g}) + trace(maxIter=1, tol=0) "
          f"calls until >= {MIN_PROBES} samples and SE/|mean| < {HEADLINE_REL_ERROR:g}; both under the math SDPA "
          f"kernel, at most {args.max_probes} probes each")

    with sdpa_kernel(SDPBackend.MATH):  # warm-up: one double-backward pass, not timed
        params = list(model.parameters())
        g = torch.autograd.grad(criterion(model(inputs), targets), params, create_graph=True)
        torch.autograd.grad(g, params, grad_outputs=[torch.ones_like(p) for p in params])
        del g

    # PyHessian: one hessian object for both quantities (as hepnb shares one space)
    torch.manual_seed(args.seed)
    with counted_pyhessian_hvps() as counter, sdpa_kernel(SDPBackend.MATH):
        t0 = time.perf_counter()
        h = hessian(model, criterion, data=(inputs, targets), cuda=False)
        ph_eig, _ = h.eigenvalues(top_n=1, maxIter=100, tol=HEADLINE_EIG_TOL)
        t_ph_eig = time.perf_counter() - t0
        n_ph_eig = counter["n"]
        samples = pyhessian_trace_samples(h, HEADLINE_REL_ERROR, args.max_probes)
        t_ph = time.perf_counter() - t0
    n_ph = counter["n"]
    ph_eig = float(ph_eig[0])
    del h
    clear_grads(model)
    model.eval()
    s = np.asarray(samples)
    ph_ok = len(s) >= MIN_PROBES and rel_se(s) < HEADLINE_REL_ERROR
    ph_tr, ph_se = float(s.mean()), float(s.std(ddof=1) / math.sqrt(len(s)))

    def run_hepnb(kwargs: dict) -> tuple:
        t0 = time.perf_counter()
        space = ParameterSpace(model, criterion, (inputs, targets), vectorize=False)
        top = lanczos(space, k=1, tol=HEADLINE_EIG_TOL, seed=args.seed)
        t_eig = time.perf_counter() - t0
        tr = hutchinson_trace(space, rel_error=HEADLINE_REL_ERROR, seed=args.seed, max_probes=args.max_probes,
                              **kwargs)
        sec = time.perf_counter() - t0
        del space
        gc.collect()
        return top, tr, t_eig, sec

    top, tr, t_hep_eig, t_hep = run_hepnb(hep_kwargs)
    variant_kwargs = {"deflate": HEADLINE_DEFLATE, "batch_probes": 1}
    v_top, v_tr, _, t_var = run_hepnb(variant_kwargs)
    hep_eig = float(top.eigenvalues[0])

    t0 = time.perf_counter()
    space = ParameterSpace(model, criterion, (inputs, targets), vectorize=False)
    ref = lanczos(space, k=1, tol=1e-8, max_iter=150, seed=args.seed + 1)
    t_ref = time.perf_counter() - t0
    lam = float(ref.eigenvalues[0])
    del space
    gc.collect()

    print(f"reference lambda_1 (hepnb lanczos, tol 1e-8): {lam:.6g} ({ref.n_hvp} HVPs, {t_ref:.1f} s, "
          f"converged {ref.converged})")
    print(f"{'':<10} {'lambda_1':>10} {'rel. err':>9} {'Tr(H)':>10} {'stderr':>8} {'rel. SE':>8} {'probes':>7} "
          f"{'HVPs':>5} {'seconds':>8} {'(lambda_1)':>10}")
    print(f"{'PyHessian':<10} {ph_eig:>10.6g} {abs(ph_eig - lam) / abs(lam):>9.1e} {ph_tr:>10.5g} {ph_se:>8.3g} "
          f"{ph_se / abs(ph_tr):>8.2%} {len(s):>7d} {n_ph:>5d} {t_ph:>8.2f} {t_ph_eig:>10.2f}"
          + ("" if ph_ok else f"  (2% not reached within {args.max_probes} samples)"))
    n_hep = top.n_hvp + tr.n_hvp
    print(f"{'hepnb':<10} {hep_eig:>10.6g} {abs(hep_eig - lam) / abs(lam):>9.1e} {tr.trace:>10.5g} "
          f"{tr.stderr:>8.3g} {tr.stderr / abs(tr.trace):>8.2%} {tr.n_probes:>7d} {n_hep:>5d} {t_hep:>8.2f} "
          f"{t_hep_eig:>10.2f}" + ("" if tr.converged else f"  (2% not reached within {args.max_probes} probes)"))
    print(f"hepnb HVPs: {top.n_hvp} (lanczos) + {tr.n_hvp} (trace: {tr.n_hvp - tr.n_probes} for deflating the top "
          f"{HEADLINE_DEFLATE}, whose exact part is {tr.deflated:.5g} of the trace, + {tr.n_probes} probes); "
          f"PyHessian HVPs: {n_ph_eig} (power iteration) + {n_ph - n_ph_eig} (probes)")
    for name, value in (("PyHessian", ph_eig), ("hepnb", hep_eig)):
        err = abs(value - lam) / abs(lam)
        print(f"{name} lambda_1 relative error against the reference: {err:.1e} "
              + ("(within 1e-3)" if err <= HEADLINE_EIG_TOL else "NOT WITHIN 1e-3"))
    z = abs(tr.trace - ph_tr) / math.hypot(tr.stderr, ph_se)
    print(f"traces: PyHessian {ph_tr:.5g} +- {ph_se:.3g}, hepnb {tr.trace:.5g} +- {tr.stderr:.3g}: they differ by "
          f"{z:.2f} combined standard errors" + (" (agree)" if z <= 2 else " (DISAGREE: more than 2)"))
    print(f"variant (not the headline): hepnb with batch_probes 1 instead of {HEADLINE_BATCH_PROBES} (no overshoot "
          f"of the stopping rule): Tr(H) {v_tr.trace:.5g} +- {v_tr.stderr:.3g}, {v_tr.n_probes} probes, "
          f"{v_top.n_hvp + v_tr.n_hvp} HVPs, {t_var:.2f} s; speed ratio {t_ph / t_var:.2f}")
    if not ph_ok:
        need = len(s) * (rel_se(s) / HEADLINE_REL_ERROR) ** 2
        print(f"PyHessian stopped at the {args.max_probes}-probe cap at {rel_se(s):.1%} relative SE: not equal "
              f"accuracy, so the ratio below is a lower bound (its sample variance implies ~{need:,.0f} probes, "
              f"~{t_ph_eig + (t_ph - t_ph_eig) * need / len(s):,.0f} s, for {HEADLINE_REL_ERROR:.0%})")
    ratio = t_ph / t_hep
    print(f"headline speed ratio (PyHessian / hepnb), lambda_1 to 1e-3 + Tr(H) to 2% on the simplicity chapter's "
          f"trained transformer: {ratio:.2f} (target >= {TARGET:g})")
    if ratio < TARGET:
        print("BELOW TARGET")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jets", type=int, default=64, help="jets in the fixed batch (Glowacki-size model regardless)")
    parser.add_argument("--adam-steps", type=int, default=20, help="Adam steps on the batch before measuring")
    parser.add_argument("--rel-error", type=float, default=0.02, help="trace: target relative standard error")
    parser.add_argument("--max-probes", type=int, default=1500, help="trace: cap on PyHessian's samples")
    parser.add_argument("--deflate", type=int, default=5,
                        help="trace: also run hutchinson_trace(deflate=k), exact part from the top k eigenvectors "
                             "(0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eigen-only", action="store_true",
                        help="after the headline, run part (a), the top eigenvalue, only (~1 min)")
    parser.add_argument("--scale", default="book", help="headline: the simplicity chapter's scale whose trained "
                        "teacher and Hessian batch are used (smoke, book, paper)")
    parser.add_argument("--headline-only", action="store_true", help="run the headline only")
    args = parser.parse_args()

    try:
        from pyhessian import hessian
    except ImportError:
        print("PyHessian is not installed: pip install -r benchmarks/requirements.txt")
        return
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    headline(args, hessian)
    if args.headline_only:
        return
    print()
    from hepnb.landscape import ParameterSpace, hutchinson_trace, lanczos
    from hepnb.models import JetTransformer, n_parameters

    torch.manual_seed(args.seed)
    net = JetTransformer()
    model = Packed(net)
    inputs, targets = make_batch(args.jets, args.seed)
    criterion = nn.BCEWithLogitsLoss()

    t0 = time.perf_counter()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss0 = float(criterion(model(inputs), targets).detach())
    for _ in range(args.adam_steps):
        opt.zero_grad(set_to_none=True)
        loss = criterion(model(inputs), targets)
        loss.backward()
        opt.step()
    del opt
    clear_grads(model)
    model.train()
    with torch.no_grad():
        loss1 = float(criterion(model(inputs), targets))
    print(f"model: JetTransformer, {n_parameters(net):,} parameters; batch {args.jets} jets x {N_CONSTITUENTS} "
          f"constituents x {N_FEATURES} features ({int(inputs[..., -1].sum())} real constituents), seed {args.seed}")
    print(f"{args.adam_steps} Adam steps (lr 1e-3) on the batch: loss {loss0:.4f} -> {loss1:.4f} "
          f"({time.perf_counter() - t0:.1f} s); torch {torch.__version__}, {torch.get_num_threads()} threads")

    with sdpa_kernel(SDPBackend.MATH):  # warm-up: one double-backward pass, not timed
        params = list(model.parameters())
        g = torch.autograd.grad(criterion(model(inputs), targets), params, create_graph=True)
        torch.autograd.grad(g, params, grad_outputs=[torch.ones_like(p) for p in params])
        del g

    # ------------------------------------------------------------------ (a) top eigenvalue
    print("\n(a) top eigenvalue, relative tolerance 1e-3")
    torch.manual_seed(args.seed)
    was_training = model.training
    with counted_pyhessian_hvps() as counter, sdpa_kernel(SDPBackend.MATH):
        t0 = time.perf_counter()
        h = hessian(model, criterion, data=(inputs, targets), cuda=False)
        t_init = time.perf_counter() - t0
        after_init = grads_left(model)
        t0 = time.perf_counter()
        ph_eig, _ = h.eigenvalues(top_n=1, maxIter=100, tol=1e-3)
        t_ph = t_init + time.perf_counter() - t0
    ph_eig, ph_hvp = float(ph_eig[0]), counter["n"]
    after_eig = grads_left(model)
    mode_changed = was_training and not model.training
    del h
    clear_grads(model)
    model.train(was_training)

    t0 = time.perf_counter()
    space = ParameterSpace(model, criterion, (inputs, targets))
    res = lanczos(space, k=1, tol=1e-3, seed=args.seed)
    t_hep = time.perf_counter() - t0
    hep_eig = float(res.eigenvalues[0])
    hep_grads = grads_left(model)[0]

    t0 = time.perf_counter()
    ref = lanczos(space, k=1, tol=1e-8, max_iter=150, seed=args.seed + 1)
    t_ref = time.perf_counter() - t0
    lam = float(ref.eigenvalues[0])
    del space

    print(f"reference (hepnb lanczos, tol 1e-8): {lam:.6g} ({ref.n_hvp} HVPs, {t_ref:.1f} s, "
          f"converged {ref.converged})")
    print(f"{'':<10} {'eigenvalue':>12} {'rel. err':>9} {'HVPs':>5} {'seconds':>8} {'s/HVP':>6}")
    print(f"{'PyHessian':<10} {ph_eig:>12.6g} {abs(ph_eig - lam) / abs(lam):>9.1e} {ph_hvp:>5d} {t_ph:>8.2f} "
          f"{t_ph / ph_hvp:>6.2f}")
    print(f"{'hepnb':<10} {hep_eig:>12.6g} {abs(hep_eig - lam) / abs(lam):>9.1e} {res.n_hvp:>5d} {t_hep:>8.2f} "
          f"{t_hep / res.n_hvp:>6.2f}")
    print(f"relative difference PyHessian vs hepnb: {abs(ph_eig - hep_eig) / abs(hep_eig):.1e}")
    print(f"PyHessian's constructor left .grad set on {after_init[0]} of {after_init[2]} parameters "
          f"({after_init[1]} holding the double-backward graph); after eigenvalues(): {after_eig[0]} "
          f"(its zero_grad() sets them to None in torch >= 2, but the hessian object keeps the graph)"
          f"{'; it switched the model to eval mode and left it there' if mode_changed else ''}; "
          f"hepnb left .grad on {hep_grads} parameters")
    verdict(t_ph / t_hep)
    bound_and_convergence(model, criterion, inputs, targets, lam, t_ph, args.seed)
    if args.eigen_only:
        return

    # ------------------------------------------------------------------ (b) trace
    print(f"\n(b) Hessian trace to {args.rel_error:.0%} relative standard error (at least {MIN_PROBES} probes)")
    torch.manual_seed(args.seed)
    with sdpa_kernel(SDPBackend.MATH):
        t0 = time.perf_counter()
        h = hessian(model, criterion, data=(inputs, targets), cuda=False)
        samples = pyhessian_trace_samples(h, args.rel_error, args.max_probes)
        t_ph = time.perf_counter() - t0
    del h
    clear_grads(model)
    model.train(was_training)
    s = np.asarray(samples)
    ph_ok = len(s) >= MIN_PROBES and rel_se(s) < args.rel_error
    ph_tr, ph_se = float(s.mean()), float(s.std(ddof=1) / math.sqrt(len(s)))
    own = pyhessian_stop(s, 1e-3)
    own_mean = float(s[:own].mean())
    own_se = float(s[:own].std(ddof=1) / math.sqrt(own)) if own > 1 else math.nan

    # batch_probes: a short timing run of PROBE_TIMING probes each, then the full run with the fastest
    timing = {}
    for b in (1, 4, 8):
        space = ParameterSpace(model, criterion, (inputs, targets))
        space.hvp(torch.zeros(space.dim))  # builds the gradient graph: not part of the per-probe cost
        t0 = time.perf_counter()
        hutchinson_trace(space, batch_probes=b, seed=args.seed, min_probes=PROBE_TIMING, max_probes=PROBE_TIMING)
        timing[b] = (time.perf_counter() - t0) / PROBE_TIMING
        del space
        gc.collect()
    print("hepnb seconds per probe (" + str(PROBE_TIMING) + " probes, graph built beforehand): "
          + ", ".join(f"batch_probes {b}: {sec:.3f}" for b, sec in timing.items()))
    rows = []
    b_best = min(timing, key=timing.get)
    for label, kwargs in ((f"batch_probes {b_best}", {"batch_probes": b_best}),
                          (f"deflate {args.deflate}", {"deflate": args.deflate})):
        if kwargs.get("deflate") == 0:
            continue
        t0 = time.perf_counter()
        space = ParameterSpace(model, criterion, (inputs, targets))
        tr = hutchinson_trace(space, rel_error=args.rel_error, seed=args.seed, max_probes=args.max_probes, **kwargs)
        rows.append((label, tr, time.perf_counter() - t0))
        del space
        gc.collect()

    print(f"{'':<24} {'trace':>10} {'stderr':>8} {'rel. SE':>8} {'probes':>7} {'HVPs':>5} {'seconds':>8}")
    print(f"{'PyHessian':<24} {ph_tr:>10.5g} {ph_se:>8.3g} {ph_se / abs(ph_tr):>8.2%} {len(s):>7d} {len(s):>5d} "
          f"{t_ph:>8.2f}" + ("" if ph_ok else f"  (not reached within {args.max_probes} samples)"))
    for label, tr, sec in rows:
        name = f"hepnb {label}"
        print(f"{name:<24} {tr.trace:>10.5g} {tr.stderr:>8.3g} {tr.stderr / abs(tr.trace):>8.2%} {tr.n_probes:>7d} "
              f"{tr.n_hvp:>5d} {sec:>8.2f}" + ("" if tr.converged else "  (not converged)"))
    print(f"PyHessian's own stop (tol 1e-3) on the same samples: {own} samples, trace {own_mean:.5g} "
          f"+- {own_se:.3g} ({own_se / abs(own_mean):.1%} relative SE)")
    plain = rows[0][1]
    m = min(len(s), len(plain.samples))
    if np.allclose(s[:m], plain.samples[:m], rtol=1e-4):
        print(f"both drew the same Rademacher probes (seed {args.seed} of torch's CPU generator): equal samples, equal "
              "probe counts, so the trace comparison is the cost per probe plus the set-up")
    for label, tr, sec in rows:
        z = abs(tr.trace - ph_tr) / math.hypot(tr.stderr, ph_se)
        print(f"hepnb {label}: trace differs from PyHessian's by {z:.1f} combined standard errors; "
              f"speed ratio {t_ph / sec:.2f}" + (f" (of which {tr.deflated:.4g} computed exactly from the top "
                                                 f"{args.deflate} eigenvectors)" if "deflate" in label else ""))
    label, best, t_best = min(rows, key=lambda r: r[2])
    print(f"best hepnb: {label}")
    print(f"reference top eigenvalue {lam:.6g}: trace / lambda_max = {best.trace / lam:.2f}")
    verdict(t_ph / t_best)


if __name__ == "__main__":
    main()
