"""PyTorch datasets and loaders over a :class:`~hepnb.data.sample.JetSample`.

Explained in ``book/data/resimulation.ipynb``. Splits are made on the hard event (``event_id``), never on the row
or the jet, so the shower variations of one event cannot sit in training and test at once. Features are computed
once with :func:`hepnb.data.features.sample_features` and kept as float32 tensors.

Two layouts: one item per (row, variation) for classifiers (``paired=False``), or one item per row holding every
selected variation of that hard event, for contrastive learning on re-simulated pairs (``paired=True``, RS3L).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hepnb.data.features import sample_features
from hepnb.data.sample import JetSample, SampleError
from hepnb.generate.catalogue import CLASS_NAMES
from hepnb.validation import check_int, check_positive

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(fractions)
    except TypeError:
        raise ValueError(f"fractions must be a sequence of numbers, got {fractions!r}") from None
    if not values:
        raise ValueError("fractions is empty; give one fraction per split, e.g. (0.7, 0.15, 0.15)")
    values = tuple(check_positive(f"every fraction of {fractions!r}", f) for f in values)
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions!r} (sum {sum(values):.6g})")
    return values


def split_by_event(event_ids: np.ndarray, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
                   ) -> tuple[np.ndarray, ...]:
    """Row indices of each split, made on hard events: every row sharing an ``event_id`` lands in one split.

    The distinct event ids are shuffled with ``seed`` and cut at the cumulative ``fractions`` (positive, summing
    to 1; any number of splits), so split sizes follow the fractions in hard events, and the result is the same
    for the same ids and seed whatever the row order. Returns one sorted int64 index array per fraction.
    Explained in ``book/data/resimulation.ipynb``.
    """
    fractions = _check_fractions(fractions)
    ids = np.asarray(event_ids)
    if ids.ndim != 1:
        raise ValueError(f"event_ids must be one-dimensional (one id per row), got shape {ids.shape}")
    unique, inverse = np.unique(ids, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    cuts = np.rint(np.cumsum(fractions) * len(unique)).astype(np.int64)
    cuts[-1] = len(unique)
    split_of_event = np.empty(len(unique), np.int64)
    start = 0
    for k, stop in enumerate(cuts):
        split_of_event[order[start:stop]] = k
        start = stop
    split_of_row = split_of_event[inverse.reshape(-1)]
    return tuple(np.flatnonzero(split_of_row == k).astype(np.int64) for k in range(len(fractions)))


def _select_rows(sample: JetSample, rows: Any) -> np.ndarray:
    n = len(sample)
    if rows is None:
        return np.arange(n, dtype=np.int64)
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise SampleError(f"a boolean row mask must have shape ({n},), got {rows.shape}")
        return np.flatnonzero(rows).astype(np.int64)
    if rows.size == 0:
        return np.zeros(0, np.int64)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise SampleError(f"rows must be a 1-d array of row indices or a boolean mask, got {rows.dtype} {rows.shape}")
    if rows.min() < -n or rows.max() >= n:
        raise SampleError(f"row index outside 0..{n - 1}")
    return np.unique(rows % n)


def _select_variations(sample: JetSample, variations: Any) -> tuple[int, ...]:
    if isinstance(variations, (str, int, np.integer)):
        variations = (variations,)
    if variations is None:
        return tuple(range(sample.n_variations))
    idx = tuple(sample.variation_index(v) for v in variations)
    if not idx:
        raise SampleError("variations is empty: select at least one (by index or name), or None for all")
    return idx


def _check_classes(sample: JetSample, classes: Any) -> tuple[str, ...]:
    if isinstance(classes, str):
        classes = (classes,)
    classes = tuple(classes)
    if len(classes) < 1:
        raise SampleError("classes is empty: name at least one of " + ", ".join(CLASS_NAMES))
    for name in classes:
        if name not in CLASS_NAMES:
            raise SampleError(f"unknown class {name!r}; known: {', '.join(CLASS_NAMES)}")
        if name not in sample.classes:
            raise SampleError(f"class {name!r} is absent from the sample (it holds: {', '.join(sample.classes)})")
    if len(set(classes)) != len(classes):
        raise SampleError(f"classes lists a class twice: {classes}")
    return classes


class JetDataset(Dataset):
    """Jets of a :class:`~hepnb.data.sample.JetSample` as float32 tensors for PyTorch.

    ``rows``: sample rows to use (indices, repeats ignored, or a boolean mask; ``None`` = all). ``variations``:
    which shower variations, by index or name. ``classes``: class names from :data:`hepnb.data.sample.CLASS_NAMES`;
    the target ``y`` is the position in ``classes`` (``("qcd", "hbb")``: 0 for QCD, 1 for H->bb) and rows of
    other classes are dropped. ``max_constituents``: the hardest ``C`` constituents are kept (``None`` = all).
    ``balance``: downsample every class to the smallest class's number of rows (hard events), seeded by ``seed``.

    ``paired=False``: one item per (row, variation), ``len = rows * V``, each a dict of ``x`` (C, 15), ``jet``
    (2,), ``mask`` (C,) bool, ``y`` (float32 scalar), ``variation`` (the sample's axis-1 index) and ``row`` (the
    sample row). ``paired=True`` (contrastive learning): one item per row with ``x`` (V, C, 15), ``jet`` (V, 2),
    ``mask`` (V, C), ``y`` and ``row``.

    Attributes: ``rows`` (sample row of each kept row), ``variations`` (their names), ``variation_indices``,
    ``classes``, ``n_per_class`` (kept rows per class), ``labels`` (target per kept row), and the feature tensors
    ``x`` (R, V, C, 15), ``jet`` (R, V, 2), ``mask`` (R, V, C), ``y`` (R,). Explained in
    ``book/data/resimulation.ipynb``.
    """

    def __init__(self, sample: JetSample, rows: Any = None, variations: Any = (0,),
                 classes: Sequence[str] = ("qcd", "hbb"), max_constituents: int | None = 100, balance: bool = True,
                 paired: bool = False, seed: int = 0):
        if max_constituents is not None:
            max_constituents = check_int("max_constituents (or None for all)", max_constituents, error=SampleError)
        self.classes = _check_classes(sample, classes)
        self.variation_indices = _select_variations(sample, variations)
        self.variations = tuple(sample.variations[i] for i in self.variation_indices)
        self.paired = bool(paired)

        selected = _select_rows(sample, rows)
        if len(selected) == 0:
            raise SampleError("empty selection: no rows were given")
        codes = [CLASS_NAMES.index(name) for name in self.classes]
        labels = sample.label[selected]
        groups = [selected[labels == code] for code in codes]
        for name, group in zip(self.classes, groups):
            if len(group) == 0:
                raise SampleError(f"empty selection: class {name!r} has no rows among the {len(selected)} selected")
        if balance:
            rng = np.random.default_rng(seed)
            smallest = min(len(g) for g in groups)
            groups = [np.sort(rng.choice(g, size=smallest, replace=False)) if len(g) > smallest else g
                      for g in groups]
        self.n_per_class = {name: len(g) for name, g in zip(self.classes, groups)}
        target = np.concatenate([np.full(len(g), k) for k, g in enumerate(groups)])
        kept = np.concatenate(groups)
        order = np.argsort(kept, kind="stable")  # keep sample order: classes interleave as in the file
        self.rows = kept[order]
        self.labels = target[order].astype(np.int64)

        x, jet, mask = sample_features(sample.rows(self.rows), variations=list(self.variation_indices),
                                       max_constituents=max_constituents)
        self.x = torch.from_numpy(x)
        self.jet = torch.from_numpy(jet)
        self.mask = torch.from_numpy(mask)
        self.y = torch.from_numpy(self.labels.astype(np.float32))

    @property
    def n_variations(self) -> int:
        return len(self.variation_indices)

    def __len__(self) -> int:
        return len(self.rows) if self.paired else len(self.rows) * self.n_variations

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        if self.paired:
            return {"x": self.x[index], "jet": self.jet[index], "mask": self.mask[index], "y": self.y[index],
                    "row": int(self.rows[index])}
        r, v = divmod(index, self.n_variations)
        return {"x": self.x[r, v], "jet": self.jet[r, v], "mask": self.mask[r, v], "y": self.y[r],
                "variation": self.variation_indices[v], "row": int(self.rows[r])}

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}: {count}" for name, count in self.n_per_class.items())
        layout = "paired" if self.paired else "one item per jet"
        return (f"JetDataset({len(self.rows)} hard events [{counts}] x variations {self.variations} "
                f"x {self.x.shape[2]} constituents; {layout}, {len(self)} items)")


def split_datasets(sample: JetSample, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
                   **dataset_kwargs: Any) -> dict[str, JetDataset]:
    """``{"train", "val", "test"}`` :class:`JetDataset` of one sample, split by hard event.

    :func:`split_by_event` on ``sample.event_id`` first, then one :class:`JetDataset` per split (so ``balance``
    acts within each split) with ``dataset_kwargs`` (``variations``, ``classes``, ``max_constituents``, ``paired``
    ...) and the split's ``seed``. An empty split raises :class:`~hepnb.errors.SampleError`. Explained in
    ``book/data/resimulation.ipynb``.
    """
    for key in ("rows", "seed"):
        if key in dataset_kwargs:
            raise ValueError(f"the splits set {key!r} of each dataset themselves; do not pass it")
    fractions = _check_fractions(fractions)
    if len(fractions) != len(SPLIT_NAMES):
        raise ValueError(f"a split needs {len(SPLIT_NAMES)} fractions ({', '.join(SPLIT_NAMES)}), "
                         f"got {fractions!r}")
    sets = {}
    for name, rows in zip(SPLIT_NAMES, split_by_event(sample.event_id, fractions, seed)):
        if len(rows) == 0:
            raise SampleError(f"split {name!r} is empty: {len(np.unique(sample.event_id))} hard events are too few "
                              f"for fractions {fractions}")
        sets[name] = JetDataset(sample, rows=rows, seed=seed, **dataset_kwargs)
    return sets


def make_loaders(sample: JetSample, batch_size: int = 128, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                 seed: int = 0, num_workers: int = 0, **dataset_kwargs: Any) -> dict[str, DataLoader]:
    """``{"train", "val", "test"}`` DataLoaders over the datasets of :func:`split_datasets`.

    The training loader shuffles with a ``torch.Generator`` seeded by ``seed``; validation and test keep their
    order. The same sample and seed give the same batches. Explained in ``book/data/resimulation.ipynb``.
    """
    batch_size = check_int("batch_size", batch_size)
    num_workers = check_int("num_workers", num_workers, minimum=0)
    loaders = {}
    for name, dataset in split_datasets(sample, fractions, seed, **dataset_kwargs).items():
        train = name == "train"
        generator = torch.Generator().manual_seed(int(seed)) if train else None
        loaders[name] = DataLoader(dataset, batch_size=batch_size, shuffle=train, generator=generator,
                                   num_workers=num_workers)
    return loaders


class DictBatches:
    """Minibatches of a dict of equally long tensors: in order, shuffled, or drawn with replacement by weight.

    ``shuffle``: a new permutation every pass. ``weights`` (one per example, >= 0): every pass draws as many
    examples as there are, with replacement, each with probability proportional to its weight (PyTorch's
    ``WeightedRandomSampler``; the reweighted background of ``book/symmetry/symmetry.ipynb``). Both are drawn from
    a generator seeded by ``seed``, so the same seed gives the same batches. Explained in
    ``book/adversarial/adversarial.ipynb``.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: int = 128, shuffle: bool = False,
                 seed: int = 0, weights: Any = None):
        self.batch_size = check_int("batch_size", batch_size)
        lengths = {k: len(t) for k, t in tensors.items()}
        if not lengths or len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
            raise SampleError(f"batches need non-empty tensors of one length, got lengths {lengths}")
        self.tensors, self.shuffle = dict(tensors), bool(shuffle)
        self.n = next(iter(lengths.values()))
        self.weights = None
        if weights is not None:
            w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
            if w.shape != (self.n,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise SampleError(f"sampling weights must be {self.n} finite values >= 0, not all zero")
            self.weights = w
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=self.generator)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)
        else:
            order = torch.arange(self.n)
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield {k: t[idx] for k, t in self.tensors.items()}


class TensorBatches(DictBatches):
    """Minibatches of one shower variation of a per-jet :class:`JetDataset`, sliced straight from its tensors.

    The same dict batches as a DataLoader (``x``, ``jet``, ``mask``, ``y``), sliced with one index per batch instead
    of collating item dicts one by one. ``shuffle``: a new permutation every pass from a generator seeded by
    ``seed`` (the same seed gives the same batches). Explained in ``book/adversarial/adversarial.ipynb``.
    """

    def __init__(self, dataset: JetDataset, variation: str | int = 0, batch_size: int = 128, shuffle: bool = False,
                 seed: int = 0):
        if isinstance(variation, str):
            if variation not in dataset.variations:
                raise SampleError(f"variation {variation!r} is not in the dataset's {dataset.variations}")
            v = dataset.variations.index(variation)
        else:
            v = int(variation)
            if not 0 <= v < dataset.n_variations:
                raise SampleError(f"variation index {v} out of range for {dataset.n_variations} variations")
        self.variation = dataset.variations[v]
        super().__init__({"x": dataset.x[:, v], "jet": dataset.jet[:, v], "mask": dataset.mask[:, v],
                          "y": dataset.y}, batch_size, shuffle, seed)


class PartnerBatches:
    """Minibatches of hard events, each with its anchor jet and one re-simulated *partner* drawn afresh every pass
    (the positive pairs of RS3L, Harris et al. Sec. II A; explained in ``book/rs3l/rs3l.ipynb``).

    ``jets``: per-jet tensors shaped (N, V, ...) with the shower variation on axis 1 (row ``i`` of every variation
    is the same hard event); ``rows``: the rows (hard events) to draw from; ``partners``: the variation indices a
    partner may come from; ``anchor``: the anchor's variation (0, nominal). Every pass draws one partner per row,
    uniformly from ``partners``, and (``shuffle``) a new order, from a generator seeded by ``(seed, pass)``:
    the same seed gives the same batches, and a partner is never another event's jet. ``fixed=True`` draws the
    same partners and order every pass (a validation set). The reference code pre-generates one fixed pair per
    event instead; drawing afresh shows every partner of an event over the epochs.

    ``layout="pairs"``: each jet tensor comes as (B, 2, ...), [anchor, partner] (for
    :class:`~hepnb.training.tasks.ContrastiveTask`); ``"mixture"``: as (2B, ...), the B anchors then their B
    partners, with every per-row tensor in ``labels`` (N, ...) repeated to match (a classifier trained on the
    augmented mixture, as the fine-tuning and supervised networks of Harris et al. are). ``labels`` also ride along
    in ``"pairs"`` batches, once per row.
    """

    LAYOUTS = ("pairs", "mixture")

    def __init__(self, jets: dict[str, torch.Tensor], rows: Any, partners: Sequence[int], batch_size: int = 100,
                 layout: str = "pairs", labels: dict[str, torch.Tensor] | None = None, anchor: int = 0,
                 shuffle: bool = True, fixed: bool = False, seed: int = 0):
        self.batch_size = check_int("batch_size", batch_size)
        if layout not in self.LAYOUTS:
            raise SampleError(f"unknown layout {layout!r}; choose one of {', '.join(self.LAYOUTS)}")
        if not jets:
            raise SampleError("PartnerBatches needs at least one per-jet tensor")
        shapes = {k: tuple(t.shape[:2]) for k, t in jets.items()}
        if len(set(shapes.values())) != 1 or min(len(s) for s in shapes.values()) < 2:
            raise SampleError(f"per-jet tensors must share their (N, V) axes; got {shapes}")
        n, v = next(iter(shapes.values()))
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.rows.size == 0 or self.rows.min() < 0 or self.rows.max() >= n:
            raise SampleError(f"rows must be a non-empty selection of 0..{n - 1}")
        self.partners = np.asarray(sorted(set(int(p) for p in partners)), dtype=np.int64)
        if self.partners.size == 0 or self.partners.min() < 0 or self.partners.max() >= v:
            raise SampleError(f"partner variations must be a non-empty subset of 0..{v - 1}; got {list(partners)}")
        if not 0 <= int(anchor) < v:
            raise SampleError(f"anchor variation {anchor} out of range for {v} variations")
        labels = dict(labels or {})
        for k, t in labels.items():
            if len(t) != n:
                raise SampleError(f"per-row tensor {k!r} has {len(t)} rows, the jets {n}")
        self.jets, self.labels, self.layout = dict(jets), labels, layout
        self.anchor, self.shuffle, self.fixed, self.seed = int(anchor), bool(shuffle), bool(fixed), int(seed)
        self.passes = 0

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def draw(self, pass_index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, partner variations)`` of pass ``pass_index``, in batch order."""
        rng = np.random.default_rng((self.seed, 0 if self.fixed else int(pass_index)))
        order = rng.permutation(self.rows) if self.shuffle else self.rows.copy()
        return order, self.partners[rng.integers(len(self.partners), size=len(order))]

    def __iter__(self):
        order, partner = self.draw(self.passes)
        self.passes += 1
        order_t, partner_t = torch.from_numpy(order), torch.from_numpy(partner)
        for start in range(0, len(order), self.batch_size):
            idx, var = order_t[start:start + self.batch_size], partner_t[start:start + self.batch_size]
            batch = {}
            for k, t in self.jets.items():
                a, b = t[idx, self.anchor], t[idx, var]
                batch[k] = torch.stack([a, b], dim=1) if self.layout == "pairs" else torch.cat([a, b])
            for k, t in self.labels.items():
                batch[k] = t[idx] if self.layout == "pairs" else torch.cat([t[idx], t[idx]])
            yield batch
