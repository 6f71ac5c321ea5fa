"""hepnb.studies.data (the data chapter's heavy lifting) on small synthetic samples with known answers."""

import numpy as np

from hepnb import resolve
from hepnb.data import cache, store
from hepnb.data.public import write_rs3l_layout
from hepnb.data.sample import JetSample
from hepnb.evaluation.claims import CLAIM_COLUMNS
from hepnb.evaluation.tables import Table
from hepnb.generate.catalogue import CLASS_NAMES, VARIATION_NAMES, VARIATIONS
from hepnb.generate.resim import Selection
from hepnb.physics import kinematics
from hepnb.studies import data

V = len(VARIATION_NAMES)


def _sample(name="hbb", n=40, C=8, seed=0, source="synthetic"):
    """Jets of ``n`` hard events whose multiplicity grows with the row; every variation a copy of the nominal."""
    rng = np.random.default_rng(seed)
    count = 3 + np.arange(n) % (C - 2)
    mask = np.broadcast_to(np.arange(C) < count[:, None, None], (n, V, C)).copy()
    pt = rng.uniform(1, 50, size=(n, 1, C)).repeat(V, 1)
    phi, eta = rng.normal(0, 0.2, size=(n, 1, C)).repeat(V, 1), rng.normal(0, 0.2, size=(n, 1, C)).repeat(V, 1)
    p4 = np.where(mask[..., None], kinematics.p4_from_pt_eta_phi(pt, eta, phi, pt * np.cosh(eta) + 0.1), 0)
    charge = np.where(mask, 1, 0).astype(np.int8)
    parton = np.full(n, 25) if name == "hbb" else rng.choice([1, 2, 4, 5, 21], size=n)
    return JetSample(p4=p4.astype(np.float32), charge=charge, pid=np.where(mask, 211, 0).astype(np.int32),
                     d0=np.zeros((n, V, C), np.float32), dz=np.zeros((n, V, C), np.float32), mask=mask,
                     jet_p4=p4.sum(2), n_constituents=count[:, None].repeat(V, 1).astype(np.int32),
                     label=np.full(n, CLASS_NAMES.index(name), np.int8), parton=parton.astype(np.int32),
                     event_id=np.arange(n, dtype=np.int64), source=source)


def test_variation_and_selection_rows_come_from_the_code():
    rows = data.variation_rows()
    assert [r["name"] for r in rows] == list(VARIATION_NAMES)
    assert rows[2]["extra Pythia settings"] == "; ".join(VARIATIONS[2].settings) and rows[0]["extra Pythia settings"] == "-"
    here = {r["setting"]: r["here"] for r in data.selection_rows(Selection(jet_pt_min=500, max_constituents=60))}
    assert here["jet pT [GeV]"] == "500-1000" and here["constituents kept"] == "60 hardest"
    assert all(set(r) == {"setting", "Harris et al.", "here"} for r in data.selection_rows())


def test_run_summary_quotes_the_config():
    cfg = resolve("smoke", chapter="data", n_events=1234, n_substructure=567)
    text = data.run_summary(cfg)
    assert "1,234 hard events per class" in text and "567 jets" in text and f"{cfg.workers} worker" in text


def test_load_samples_reports_cache_and_generation(tmp_path, monkeypatch):
    arrays = {"cands": np.zeros((6, V, 3, 7), np.float32), "pid": np.zeros((6, V, 3), np.int32),
              "charge": np.zeros((6, V, 3), np.int8), "n_constituents": np.zeros((6, V), np.int32),
              "jet": np.ones((6, V, 4)), "hard_p4": np.ones((6, 4)), "parton": np.full(6, 25, np.int32),
              "event_id": np.arange(6, dtype=np.int64), "label": np.full(6, CLASS_NAMES.index("hbb"), np.int8)}
    attrs = {"format": store.FORMAT, "schema_version": store.SCHEMA_VERSION, "n_events": 6, "class_name": "hbb",
             "variations": list(VARIATION_NAMES), "cand_fields": ["px", "py", "pz", "E", "vx", "vy", "vz"],
             "seed": 3, "settings": {}}
    store.write_resim(cache.cache_path("hbb", 3, folder=tmp_path), arrays, attrs)
    samples, rows = data.load_samples(["hbb"], 4, seed=3, folder=tmp_path)
    assert len(samples["hbb"]) == 4 and rows[0]["how"] == "read from cache" and rows[0]["hard events"] == 4

    generated = []
    monkeypatch.setattr(cache, "generate_file", lambda path, name, n, **kw: generated.append(n) or
                        store.write_resim(path, {k: np.concatenate([v] * 2) for k, v in arrays.items()},
                                          {**attrs, "n_events": 12}))
    samples, rows = data.load_samples(["hbb"], 10, seed=3, folder=tmp_path)
    assert generated == [10] and rows[0]["how"] == "generated" and len(samples["hbb"]) == 12


def test_cache_rows_and_qcd_partons(tmp_path):
    path = tmp_path / "f.h5"
    path.write_bytes(b"x" * 2**20)
    sample = _sample("qcd", source=str(path))
    attrs = {"n_events": 40, "hard_tried": 500, "showered": {v: 100 - 10 * i for i, v in enumerate(VARIATION_NAMES)},
             "passed": {v: 90 - 10 * i for i, v in enumerate(VARIATION_NAMES)}}
    sample = JetSample(**{k: getattr(sample, k) for k in ("p4", "charge", "pid", "d0", "dz", "mask", "jet_p4",
                                                          "n_constituents", "label", "parton", "event_id")},
                       source=str(path), attrs=attrs)
    row = data.cache_rows({"qcd": sample})[0]
    assert row["MB"] == 1.0 and row["showers run"] == sum(attrs["showered"].values())
    assert row["kept after alt_shower"] == 50 and row["kept / showered in nominal"] == 0.9
    partons = {r["hard parton"]: r["jets"] for r in data.qcd_partons(sample)}
    assert sum(partons.values()) == 40 and partons["gluon"] == int((sample.parton == 21).sum())


def test_typical_row_and_title():
    sample = _sample()
    row = data.typical_row(sample)
    assert sample.n_constituents[row, 0] == np.sort(sample.n_constituents[:, 0])[len(sample) // 2]  # the median
    pt = float(kinematics.pt(sample.jet_p4[row, 0]))
    assert f"nominal jet pT = {pt:.0f} GeV" in data.jet_title(sample, row, "H")


def test_observables_shifts_and_features_of_identical_showers():
    samples = {"hbb": _sample("hbb"), "qcd": _sample("qcd", seed=1)}
    values = data.observables_by_variation(samples, n_substructure=10)
    assert set(values["hbb"]) == set(VARIATION_NAMES)
    assert len(values["qcd"]["fsr_up"]["mass"]) == 40 and len(values["qcd"]["fsr_up"]["n2"]) == 10
    rows = data.shift_rows(values)
    assert len(rows) == 2 * (V - 1)
    assert all(r[f"KS {k}"] == 0 for r in rows for k in data.SHIFT_OBSERVABLES)  # every shower is the nominal
    assert rows[0]["noise N2 (95%)"] > rows[0]["noise (95%)"]  # fewer jets with N2, larger noise
    features = data.feature_values(samples, ("hbb",), ("nominal", "alt_shower"), n_jets=7)
    x, mask = features["hbb"]
    assert x.shape[:2] == (7, 2) and mask.shape == x.shape[:3] and np.array_equal(x[:, 0], x[:, 1])


def _values(rng, mult_shift, n=3000):
    """Observables whose alternative shower shifts by known amounts; N2: FSR down up, FSR up down, alt most."""
    out = {}
    for name in ("hbb", "qcd"):
        mass = rng.normal(100 if name == "hbb" else 60, 15, n)
        mult = rng.poisson(40, n).astype(float)
        n2 = rng.normal(0.2, 0.05, n)
        out[name] = {
            "nominal": {"mass": mass, "multiplicity": mult, "n2": n2},
            "seed": {"mass": mass, "multiplicity": mult, "n2": n2},
            "fsr_down": {"mass": mass, "multiplicity": mult, "n2": n2 + 0.01},
            "fsr_up": {"mass": mass, "multiplicity": mult, "n2": n2 - 0.01},
            "alt_shower": {"mass": 1.2 * mass, "multiplicity": mult + mult_shift, "n2": n2 + 0.05},
        }
    return out


def test_claims_reproduce_known_shifts_and_see_an_opposite_one():
    rng = np.random.default_rng(0)
    rows = data.claims(_values(rng, mult_shift=5.0))
    assert all(set(CLAIM_COLUMNS) <= set(r) for r in rows)
    assert all("paper 00" not in r["claim"] for r in rows)
    assert [r["claim"].split(":")[0] for r in rows[:2]] == ["hbb", "qcd"]  # one multiplicity row per class
    assert [r["reproduced"] for r in rows] == ["yes"] * 7
    opposite = data.claims(_values(rng, mult_shift=-5.0))
    assert [r["reproduced"] for r in opposite[:2]] == ["no (opposite)"] * 2
    assert opposite[0]["ours"].startswith("-5.00 ±")
    same = {name: {v: obs["nominal"] for v in obs} for name, obs in _values(rng, 0.0).items()}
    verdicts = [r["reproduced"] for r in data.claims(same)]
    assert verdicts[:5] == ["not significant"] * 5 and verdicts[5] == "no"  # no shift at all is not "the largest"


def test_public_summary_without_files_says_where_it_looked(tmp_path):
    table = data.public_summary(folder=tmp_path / "nothing")
    assert isinstance(table, Table) and len(table.rows) == 1
    assert str(tmp_path / "nothing") in table.rows[0]["note"]


def test_public_summary_counts_the_classes_of_a_file(tmp_path):
    both = JetSample.concatenate([_sample("hbb", n=12), _sample("qcd", n=30, seed=2)])
    write_rs3l_layout(both, tmp_path / "rs3l" / "part0.h5")
    table = data.public_summary(max_rows=100, folder=tmp_path / "rs3l")
    jets = {r["class"]: r["jets"] for r in table.rows}
    assert jets == {"qcd": 30, "hbb": 12}
    hbb = next(r for r in table.rows if r["class"] == "hbb")
    assert hbb["mean constituents nominal"] == round(float(both.n_constituents[both.label == 1, 0].mean()), 1)
    first = data.public_summary(max_rows=5, folder=tmp_path / "rs3l")  # only the first rows are read: all H->bb
    assert [(r["class"], r["jets"]) for r in first.rows] == [("hbb", 5)]


def test_two_claims_that_must_hold_together():
    from hepnb.evaluation.stats import Verdict

    yes, opposite, nothing = Verdict("yes"), Verdict("opposite"), Verdict("not significant")

    def open_(n):
        return Verdict("undecided", n, "hard events")

    assert data.both(yes, yes).outcome == "yes"
    assert data.both(yes, opposite).outcome == data.both(open_(10), opposite).outcome == "opposite"
    assert data.both(yes, open_(5000)).needed == data.both(open_(100), open_(5000)).needed == 5000
    assert data.both(nothing, open_(10)).outcome == "not significant"
