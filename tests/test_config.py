"""hepnb.config: scale precedence, overrides, validation, device choice, data directory."""

import math
from pathlib import Path

import pytest

import hepnb
from hepnb import config
from hepnb.config import CHAPTERS, COMMON, SCALES, ConfigError, resolve, resolve_scale


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv(config.SCALE_ENV, raising=False)
    monkeypatch.delenv(config.PUBLIC_DATA_ENV, raising=False)
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "data"))


def test_default_scale_is_book():
    assert resolve_scale(None) == "book"
    assert resolve().scale == "book"


def test_env_beats_default(monkeypatch):
    monkeypatch.setenv(config.SCALE_ENV, "smoke")
    assert resolve().scale == "smoke"


def test_parameter_beats_env(monkeypatch):
    monkeypatch.setenv(config.SCALE_ENV, "smoke")
    assert resolve("paper").scale == "paper"


def test_empty_env_counts_as_unset(monkeypatch):
    monkeypatch.setenv(config.SCALE_ENV, "")
    assert resolve().scale == "book"


@pytest.mark.parametrize("scale", SCALES)
def test_values_come_from_the_scale(scale):
    cfg = resolve(scale, chapter="adversarial")
    for key, knob in CHAPTERS["adversarial"].items():
        assert cfg[key] == knob.at(scale)
    assert cfg.overridden == frozenset()


def test_scales_grow_from_smoke_to_paper():
    """Every size knob is at least as large at book as at smoke, and at paper as at book."""
    for chapter, table in CHAPTERS.items():
        for key, knob in table.items():
            if knob.kind == "count":
                assert knob.smoke <= knob.book <= knob.paper, (chapter, key)


def test_every_registered_value_is_valid():
    for table in (COMMON, *CHAPTERS.values()):
        for key, knob in table.items():
            for scale in SCALES:
                config._check_value(key, knob.kind, knob.at(scale))


def test_non_none_overrides_win_and_none_is_ignored():
    cfg = resolve("smoke", chapter="adversarial", epochs=7, n_events=None, seed=11)
    assert cfg.epochs == 7 and cfg.seed == 11
    assert cfg.n_events == CHAPTERS["adversarial"]["n_events"].smoke
    assert cfg.overridden == {"epochs", "seed"}
    assert "(override)" in repr(cfg)


def test_integral_floats_are_accepted_as_counts():
    cfg = resolve("smoke", chapter="getting_started", n_events=1e3)
    assert cfg.n_events == 1000 and isinstance(cfg.n_events, int)


def test_unknown_scale_names_itself():
    with pytest.raises(ConfigError, match="'huge'"):
        resolve("huge")


def test_unknown_scale_from_env_says_where_it_came_from(monkeypatch):
    monkeypatch.setenv(config.SCALE_ENV, "tiny")
    with pytest.raises(ConfigError, match=r"\$HEPNB_SCALE"):
        resolve()


def test_unknown_chapter():
    with pytest.raises(ConfigError, match="unknown chapter 'adverserial'"):
        resolve("smoke", chapter="adverserial")


def test_unknown_knob_is_a_typo_not_silently_ignored():
    with pytest.raises(ConfigError, match="n_jet"):
        resolve("smoke", chapter="adversarial", n_jet=10)
    with pytest.raises(ConfigError, match="n_events"):
        resolve("smoke", n_events=10)  # no chapter: only seed and device exist


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100", math.nan])
def test_nonsense_sizes_are_rejected(bad):
    with pytest.raises(ConfigError, match="n_events"):
        resolve("smoke", chapter="adversarial", n_events=bad)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5])
def test_nonsense_seeds_are_rejected(bad):
    with pytest.raises(ConfigError, match="seed"):
        resolve("smoke", seed=bad)


@pytest.mark.parametrize("bad", [0.0, -1e-4, math.inf])
def test_nonpositive_rates_are_rejected(bad):
    with pytest.raises(ConfigError, match="lr"):
        resolve("smoke", chapter="adversarial", lr=bad)


def test_config_is_read_only():
    cfg = resolve("smoke")
    with pytest.raises(AttributeError):
        cfg.seed = 3
    with pytest.raises(AttributeError, match="no setting 'epochs'"):
        cfg.epochs  # noqa: B018


def test_as_dict_has_everything():
    cfg = resolve("book", chapter="adversarial")
    d = cfg.as_dict()
    assert d["scale"] == "book" and d["chapter"] == "adversarial"
    assert set(d) == {"scale", "chapter", *COMMON, *CHAPTERS["adversarial"]}


def test_device_auto_is_resolved():
    import torch

    expected = "cuda" if torch.cuda.is_available() else None
    device = resolve("book").device
    assert device != "auto"
    if expected:
        assert device == expected
    assert resolve("smoke").device == "cpu"


def test_cuda_without_a_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="cuda"):
        resolve("paper", device="cuda")


def test_unknown_device():
    with pytest.raises(ConfigError, match="tpu"):
        resolve("smoke", device="tpu")


def test_data_dir_follows_env(tmp_path, monkeypatch):
    target = tmp_path / "elsewhere"
    monkeypatch.setenv(config.DATA_ENV, str(target))
    assert hepnb.data_dir() == target.resolve()
    assert target.is_dir()
    assert resolve("smoke").data_dir == target.resolve()
    assert hepnb.public_data_dir() == target.resolve() / "public"


def test_data_dir_defaults_to_the_checkout(monkeypatch):
    monkeypatch.delenv(config.DATA_ENV)
    root = config.repo_root()
    assert root is not None and (root / "_toc.yml").is_file()
    assert hepnb.data_dir() == root / "data"


def test_data_dir_that_is_a_file_is_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(config.DATA_ENV, str(blocker))
    with pytest.raises(ConfigError, match="not a directory"):
        hepnb.data_dir()


def test_public_data_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv(config.PUBLIC_DATA_ENV, str(tmp_path / "rs3l"))
    assert hepnb.public_data_dir() == Path(tmp_path / "rs3l").resolve()


def test_scale_table_lists_every_knob():
    rows = config.scale_table()
    listed = {(r["chapter"], r["knob"]) for r in rows}
    expected = {("(all)", k) for k in COMMON} | {(c, k) for c, t in CHAPTERS.items() for k in t}
    assert listed == expected
    one = config.scale_table("landscape")
    assert [r["knob"] for r in one] == [*COMMON, *CHAPTERS["landscape"]]


def test_config_survives_pickle_and_copy():
    import copy
    import pickle

    cfg = resolve("smoke", chapter="adversarial", epochs=4)
    for clone in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert clone.as_dict() == cfg.as_dict() and clone.overridden == cfg.overridden
