"""hepnb.generate.catalogue: one table of jet classes and one of shower variations, everything else derived."""

import hashlib
import json
import subprocess
import sys

import pytest

from hepnb.generate import catalogue
from hepnb.generate.catalogue import (
    CLASS_COLOURS,
    CLASS_LABELS,
    CLASS_NAMES,
    GENERATED_CLASSES,
    JET_CLASSES,
    VARIATION_LABELS,
    VARIATION_NAMES,
    VARIATION_STYLES,
    VARIATIONS,
    jet_class,
)
from hepnb.generate.processes import PROCESSES


def test_label_and_axis_orders_are_those_stored_in_files():
    # a file's label is an index into CLASS_NAMES and its axis 1 follows VARIATION_NAMES (the RS3L order)
    assert CLASS_NAMES == ("qcd", "hbb", "wqq", "zqq")
    assert VARIATION_NAMES == ("nominal", "seed", "fsr_down", "fsr_up", "alt_shower")


def test_everything_is_derived_from_the_two_tables():
    assert CLASS_NAMES == tuple(c.name for c in JET_CLASSES)
    assert list(CLASS_LABELS) == list(CLASS_COLOURS) == list(CLASS_NAMES)
    assert list(VARIATION_LABELS) == list(VARIATION_STYLES) == list(VARIATION_NAMES)
    assert len(set(CLASS_COLOURS.values())) == len(CLASS_NAMES)  # classes are told apart in plots
    assert len(set(VARIATION_STYLES.values())) == len(VARIATION_NAMES)
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES) and len(set(VARIATION_NAMES)) == len(VARIATION_NAMES)


def test_other_modules_use_the_catalogue_not_copies():
    from hepnb.data import public, sample, store
    from hepnb.evaluation import plotting
    from hepnb.generate import resim

    assert sample.CLASS_NAMES is CLASS_NAMES and sample.VARIATION_NAMES is VARIATION_NAMES
    assert sample.CLASS_LABELS is CLASS_LABELS
    assert store.CLASS_NAMES is CLASS_NAMES and public.VARIATION_NAMES is VARIATION_NAMES
    assert plotting.VARIATION_STYLES is VARIATION_STYLES and plotting.VARIATION_LABELS is VARIATION_LABELS
    assert resim.VARIATIONS is VARIATIONS and resim.jet_class is jet_class


def test_generated_classes_name_a_process_and_public_ones_none():
    assert set(GENERATED_CLASSES) == {"qcd", "hbb", "wqq"}
    for cls in JET_CLASSES:
        assert (cls.process in PROCESSES) if cls.name in GENERATED_CLASSES else cls.process is None, cls
    assert jet_class("hbb").target_id == 25 and jet_class("wqq").target_id == 24
    assert jet_class("qcd").target_id is None  # matched to the hard parton, not a resonance


def test_unknown_and_public_only_classes_are_refused_by_name():
    with pytest.raises(KeyError, match="unknown jet class 'ttbar'"):
        jet_class("ttbar")
    with pytest.raises(KeyError, match="'zqq' is not generated here, only the public RS3L files"):
        jet_class("zqq")


def test_what_determines_the_data_is_pinned():
    """Descriptions and settings go into every generated file and its cache name: changing them by accident would
    silently regenerate every cache. Change this pin only together with a deliberate change of the data."""
    record = {"variations": [[v.name, v.description, list(v.settings)] for v in VARIATIONS],
              "classes": [[c.name, c.process, c.target_id, c.description] for c in GENERATED_CLASSES.values()]}
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    assert digest == "500a32ecb85c613c", record  # the values of the pre-catalogue code


def test_reading_files_does_not_load_pythia():
    code = ("import sys, hepnb.data.sample, hepnb.data.store, hepnb.data.public, hepnb.generate.catalogue; "
            "print(sorted(m for m in ('pythia8mc', 'hepnb.generate.pythia', 'fastjet') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_generate_package_loads_its_names_on_first_use():
    import hepnb.generate as generate

    assert generate.derive_seed(0, "x") == generate.pythia.derive_seed(0, "x")
    assert set(generate.__all__) >= {"derive_seed", "make_pythia", "process_settings", "visible_final_state"}
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        generate.nothing  # noqa: B018
    assert catalogue.__name__ == "hepnb.generate.catalogue"
