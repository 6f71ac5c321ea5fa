"""The RS3L EdgeConv backbone (Harris et al., eq. 1): the kNN graph equals a brute-force search, the factorised edge
convolution equals the straightforward one (outputs and gradients), the neighbour maximum equals a naive gather, and
the backbone is blind to constituent order and padding, trains end to end, and stays fixed when frozen."""

import copy

import pytest
import torch
from torch.nn import functional as F

from hepnb.models import edgeconv
from hepnb.models.edgeconv import (
    DynamicEdgeConv,
    EdgeConvBackbone,
    RS3LTagger,
    dense_edge_conv,
    knn_graph,
    neighbour_max,
)
from hepnb.training.loop import fit
from hepnb.training.tasks import BinaryTask


def jets(n_real, n_constituents, n_features, seed=0, dtype=torch.float64, scatter=True, garbage=50.0):
    """Random continuous features; jet ``b`` has ``n_real[b]`` real constituents, at random positions when
    ``scatter`` (padding in between), and the padded slots hold garbage of scale ``garbage``, not zeros."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(n_real), n_constituents, n_features, generator=g, dtype=dtype)
    mask = torch.zeros(len(n_real), n_constituents, dtype=torch.bool)
    for b, n in enumerate(n_real):
        where = torch.randperm(n_constituents, generator=g)[:n] if scatter else torch.arange(n)
        mask[b, where] = True
    x[~mask] = garbage * torch.randn(int((~mask).sum()), n_features, generator=g, dtype=dtype)
    return x, mask


def small_backbone(n_features=6, width=12, k=5, n_conv=2, seed=0):
    torch.manual_seed(seed)
    return EdgeConvBackbone(n_features=n_features, embed=(10, width), k=k, n_conv=n_conv, encoder=(8, 4)).double()


def brute_force_neighbours(h, mask, k):
    """Per jet and real constituent: the real constituents by increasing sum((a - b)^2), itself first."""
    out = {}
    for b in range(h.shape[0]):
        real = [j for j in range(h.shape[1]) if mask[b, j]]
        for i in real:
            distance = {j: float(((h[b, i] - h[b, j]) ** 2).sum()) for j in real}
            out[b, i] = sorted(real, key=lambda j: (j != i, distance[j]))[:k]
    return out


@pytest.mark.parametrize("k", [4, 7, 30])
def test_knn_graph_equals_a_brute_force_search(k):
    n_real, c = [12, 9, 3, 7, 1], 12  # padding of varying length; jets with fewer than k real constituents
    h, mask = jets(n_real, c, 5, seed=k, garbage=1.0)  # padding among the real constituents in feature space
    r0, r1 = mask[0].nonzero().flatten()[:2].tolist()
    h[0, r1] = h[0, r0]  # two constituents at distance 0: each is still its own first neighbour
    index, valid = knn_graph(h, mask, k)
    assert index.shape == valid.shape == (5, c, min(k, c)) and valid.dtype == torch.bool
    expected = brute_force_neighbours(h, mask, k)
    twin = {r1: r0}  # the twins tie as anyone else's neighbours: either may come first

    def untied(b, i, neighbours):
        return neighbours if b != 0 or i in (r0, r1) else [twin.get(j, j) for j in neighbours]

    for (b, i), neighbours in expected.items():
        m = len(neighbours)
        assert m == min(k, n_real[b])
        assert untied(b, i, index[b, i, :m].tolist()) == untied(b, i, neighbours)
        assert valid[b, i, :m].all() and not valid[b, i, m:].any()  # False exactly where the jet runs out
    assert index[0, r0, :2].tolist() == [r0, r1] and index[0, r1, :2].tolist() == [r1, r0]


def test_dynamic_edge_conv_equals_the_dense_form_in_value_and_gradients():
    h, mask = jets([10, 6, 3, 10], 10, 6, seed=1)
    h = (h * mask[..., None]).requires_grad_(True)  # as the backbone feeds it: zero padding
    torch.manual_seed(1)
    layer = DynamicEdgeConv(6, 5, k=4).double()
    upstream = torch.randn(4, 10, 5, dtype=torch.float64)
    outputs, grads = [], []
    for form in (layer, lambda h, mask: dense_edge_conv(layer, h, mask)):
        out = form(h, mask)
        outputs.append(out)
        grads.append(torch.autograd.grad((out * upstream).sum(), [h, *layer.parameters()]))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-12, atol=1e-12)
    assert outputs[0].shape == (4, 10, 5) and (outputs[0][~mask] == 0).all()
    for fast, dense in zip(*grads):
        torch.testing.assert_close(fast, dense, rtol=1e-10, atol=1e-12)
        assert fast.abs().sum() > 0
    # and with garbage in the padded rows of the input, in a wider layer where k >= C
    h2, mask2 = jets([5, 2], 5, 3, seed=2)
    wide = DynamicEdgeConv(3, 7, k=8).double()
    torch.testing.assert_close(wide(h2, mask2), dense_edge_conv(wide, h2, mask2), rtol=1e-12, atol=1e-12)


def naive_neighbour_max(q, index, valid):
    gathered = torch.stack([q[b][index[b]] for b in range(q.shape[0])])  # (B, C, k, w)
    return gathered.masked_fill(~valid[..., None], float("-inf")).amax(dim=2)


@pytest.mark.parametrize("chunk", [None, 1, 2 * 8 * 4 * 6])
def test_neighbour_max_equals_a_naive_gather_forward_and_backward(chunk, monkeypatch):
    if chunk is not None:  # the 3 jets in chunks of 1 jet, or of 2 and 1, instead of all at once
        monkeypatch.setattr(edgeconv, "_CHUNK_ELEMENTS", chunk)
    h, mask = jets([8, 5, 2], 8, 4, seed=3)
    index, valid = knn_graph(h, mask, 4)
    q = torch.randn(3, 8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    upstream = torch.randn(3, 8, 6, dtype=torch.float64) * mask[..., None]  # a padded constituent's row is moot
    fast, naive = neighbour_max(q, index, valid), naive_neighbour_max(q, index, valid)
    assert torch.equal(fast[mask], naive[mask])  # the same maxima of the same numbers
    torch.testing.assert_close(torch.autograd.grad((fast * upstream).sum(), q)[0],
                               torch.autograd.grad((naive * upstream).sum(), q)[0], rtol=0, atol=1e-14)
    # random continuous q: no ties within a finite-difference step
    assert torch.autograd.gradcheck(lambda q: neighbour_max(q, index, valid)[mask], (q,))
    # an integer-valued q has ties: each output's gradient goes, whole, to one neighbour that attains the maximum
    qi = torch.randint(0, 3, (3, 8, 6), generator=torch.Generator().manual_seed(5)).double().requires_grad_(True)
    out = neighbour_max(qi, index, valid)
    assert torch.equal(out[mask], naive_neighbour_max(qi, index, valid)[mask])
    (grad,) = torch.autograd.grad(out[mask].sum(), qi)
    assert grad.sum() == out[mask].numel() and (grad >= 0).all()
    assert (grad * qi).sum() == out[mask].sum()  # every unit of gradient lands on a value equal to its maximum


def test_neighbour_max_in_other_precisions_and_with_non_finite_values():
    h, mask = jets([30, 17], 30, 8, seed=6)
    index, valid = knn_graph(h, mask, 24)
    q = torch.randn(2, 30, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    q32 = q.float().requires_grad_(True)
    q64 = q.requires_grad_(True)
    out32, out64 = neighbour_max(q32, index, valid), neighbour_max(q64, index, valid)
    assert torch.equal(out32, out64.float())
    out32.sum().backward()
    out64.sum().backward()
    assert torch.equal(q32.grad.double(), q64.grad)  # the same arg-max neighbours
    q16 = q.detach().bfloat16().requires_grad_(True)  # rounding makes ties; the ranks stay exact
    out16 = neighbour_max(q16, index, valid)
    assert torch.equal(out16[mask], naive_neighbour_max(q16.detach(), index, valid)[mask])
    (grad16,) = torch.autograd.grad(out16[mask].sum(), q16)
    assert grad16.sum() == out16[mask].numel() and (grad16.double() * q16.double()).sum() == out16[mask].double().sum()
    q_bad = q.detach().clone()
    q_bad[0, 0, 0], q_bad[1, 3, 2] = float("nan"), float("inf")
    q_bad.requires_grad_(True)
    neighbour_max(q_bad, index, valid).sum().backward()  # no index error; the gradient still adds up
    assert q_bad.grad.sum() == 2 * 30 * 16


def permute(x, mask, seed):
    """Each jet's constituents (padding included) in its own random order."""
    g = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(x.shape[1], generator=g) for _ in range(x.shape[0])])
    return torch.gather(x, 1, order[..., None].expand_as(x)), torch.gather(mask, 1, order)


def test_backbone_is_invariant_under_permuting_constituents():
    model = small_backbone()
    x, mask = jets([14, 10, 3, 7], 14, 6, seed=7, scatter=False)
    z = model(x, mask)
    assert z.shape == (4, 4)
    for seed in range(3):
        torch.testing.assert_close(model(*permute(x, mask, seed)), z, rtol=1e-12, atol=1e-12)
    # and at the paper's size in float32
    torch.manual_seed(0)
    paper = EdgeConvBackbone()
    x32, mask32 = jets([40, 25, 30], 40, 15, seed=8, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(paper(*permute(x32, mask32, 0)), paper(x32, mask32), rtol=1e-4, atol=1e-4)


def test_padding_changes_nothing_and_gets_no_gradient():
    model = small_backbone()
    x, mask = jets([9, 4, 2], 9, 6, seed=9)
    z = model(x, mask)
    # more padding, with garbage features
    g = torch.Generator().manual_seed(10)
    extra = 100.0 * torch.randn(3, 6, 6, generator=g, dtype=torch.float64)
    longer = model(torch.cat([x, extra], dim=1), torch.cat([mask, torch.zeros(3, 6, dtype=torch.bool)], dim=1))
    torch.testing.assert_close(longer, z, rtol=1e-12, atol=1e-12)
    # other garbage in the same padded slots
    x_other = x.clone()
    x_other[~mask] = -1e3 * torch.rand(int((~mask).sum()), 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(model(x_other, mask), z, rtol=1e-12, atol=1e-12)
    # no gradient reaches a padded input
    x_grad = x.clone().requires_grad_(True)
    (model(x_grad, mask) * torch.randn(3, 4, dtype=torch.float64)).sum().backward()
    assert (x_grad.grad[~mask] == 0).all()
    assert (x_grad.grad[mask].abs().sum(-1) > 0).all()


def test_every_parameter_gets_a_finite_nonzero_gradient():
    torch.manual_seed(0)
    tagger = RS3LTagger(EdgeConvBackbone())  # the paper's size, floating
    x, mask = jets([30, 12, 25, 5], 30, 15, seed=11, dtype=torch.float32)
    loss = F.binary_cross_entropy_with_logits(tagger(x, mask), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    loss.backward()
    names = [name for name, _ in tagger.named_parameters()]
    assert any(n.startswith("backbone.convs.2.") for n in names) and "head.weight" in names
    for name, p in tagger.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def _tagger_after_training(freeze):
    tagger = RS3LTagger(small_backbone(n_features=6), freeze_backbone=freeze).double()
    before = copy.deepcopy(tagger.state_dict())
    batches = []
    for seed in range(2):
        x, mask = jets([9, 5, 7, 3], 9, 6, seed=20 + seed)
        batches.append({"x": x, "mask": mask, "y": torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)})
    fit(tagger, batches, batches[:1], epochs=3, lr=1e-2, progress=False, task=BinaryTask(input_keys=("x", "mask")))
    return tagger, before


def test_a_frozen_backbone_stays_bit_identical_while_the_head_trains():
    tagger, before = _tagger_after_training(freeze=True)
    after = tagger.state_dict()
    backbone_keys = [k for k in after if k.startswith("backbone.")]
    assert backbone_keys and all(torch.equal(after[k], before[k]) for k in backbone_keys)
    assert all(not p.requires_grad and p.grad is None for p in tagger.backbone.parameters())
    assert not torch.equal(after["head.weight"], before["head.weight"])


def test_a_floating_backbone_trains():
    tagger, before = _tagger_after_training(freeze=False)
    after = tagger.state_dict()
    assert all(not torch.equal(after[k], before[k]) for k in after)  # every backbone tensor, and the head


def test_nonsense_sizes_and_wrong_shapes_raise():
    for kwargs in [dict(n_features=0), dict(embed=()), dict(encoder=()), dict(embed=(16, 0)), dict(k=0),
                   dict(n_conv=-1), dict(encoder=(8, -1))]:
        with pytest.raises(ValueError, match="nonsense sizes"):
            EdgeConvBackbone(**kwargs)
    for args in [(0, 4, 3), (4, 0, 3), (4, 4, 0)]:
        with pytest.raises(ValueError, match="nonsense sizes"):
            DynamicEdgeConv(*args)
    with pytest.raises(ValueError, match="k"):
        knn_graph(torch.zeros(2, 5, 3), torch.ones(2, 5, dtype=torch.bool), 0)
    model = small_backbone()
    x, mask = jets([5, 3], 5, 6)
    for bad_x, bad_mask in [(x[0], mask[0]), (x, mask[:, :4]), (x, mask[0]), (x[..., :5], mask)]:
        with pytest.raises(ValueError, match="expected"):
            model(bad_x, bad_mask)
        with pytest.raises(ValueError, match="expected"):
            RS3LTagger(model)(bad_x, bad_mask)
    with pytest.raises(ValueError, match="expected"):
        knn_graph(x, mask[:, :4], 3)
    with pytest.raises(ValueError, match="expected"):
        DynamicEdgeConv(5, 4, k=3)(x, mask)  # 6 features into a layer of width 5
