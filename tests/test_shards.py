"""Shards as cache units (hepnb.generate.shardstore), the backends (hepnb.generate.backends) and the command line
(hepnb.cli, ``python -m hepnb``).

A generation killed mid-run (SIGKILL, a subprocess) is completed by running it again without regenerating any
finished shard (counted, and the files untouched) and gives the bytes of an uninterrupted run; this process, a
process pool and a local Dask cluster of two workers give the same bytes; a truncated, corrupt or foreign shard file
is regenerated with a warning naming it; command-line errors are one line with a non-zero status. Generation uses
the cheap dimuon generator (2000, 4000, 8000 ... events per shard, ~0.4 s per 2000) in temporary folders.
"""

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from hepnb.data import dimuon
from hepnb.data.generators import GENERATORS, Request, generator, merge_requests, plan
from hepnb.errors import ConfigError, GeneratorError, ShardWarning
from hepnb.generate.shardstore import ShardStore, shard_folder

ROOT = Path(__file__).resolve().parents[1]
HASH = "ab" * 32


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli(*args, data_dir, timeout=300):
    env = {**os.environ, "HEPNB_DATA": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "hepnb", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def shard_files(folder):
    return sorted(Path(folder).glob("shard-*.npz"))


# ---------------------------------------------------------------------------------------------------------------
# the store


def fake_shard(k, rows=5):
    rng = np.random.default_rng(k)
    return {"x": rng.normal(size=(rows, 3)).astype(np.float32), "event_id": np.arange(rows, dtype=np.int64) + k,
            "stats": {"tried": 10 * rows, "seconds": 0.25}}


def test_store_round_trip_is_exact(tmp_path):
    store = ShardStore(tmp_path / "s.shards", HASH)
    assert store.load(0, 100) is None  # nothing there yet
    original = fake_shard(0)
    path = store.save(0, 100, original)
    assert path.name == "shard-00000-n100.npz" and store.saved == [0]
    back = store.load(0, 100)
    assert back["stats"] == original["stats"] and store.loaded == [0]
    for key in ("x", "event_id"):
        assert back[key].dtype == original[key].dtype and np.array_equal(back[key], original[key])
    assert list(store.finished()) == [0]
    assert not list(tmp_path.glob("**/*.tmp-*"))  # written through a temporary name, nothing left behind
    store.finish(keep=True)
    assert path.exists()
    store.finish()
    assert not store.folder.exists()


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated or corrupt"),
    (lambda p: p.write_bytes(b"not a zip file at all"), "truncated or corrupt"),
    (lambda p: np.savez(p, x=np.zeros(3)), "foreign"),
])
def test_damaged_shard_is_rejected_with_a_warning_naming_it(tmp_path, damage, reason):
    store = ShardStore(tmp_path / "s.shards", HASH)
    path = store.save(3, 100, fake_shard(3, rows=2000))
    damage(path)
    with pytest.warns(ShardWarning, match=re.escape(str(path)) + ".*" + reason):
        assert store.load(3, 100) is None
    assert not path.exists() and store.rejected == [3]


def test_corrupted_byte_inside_a_shard_fails_the_crc(tmp_path):
    store = ShardStore(tmp_path / "s.shards", HASH)
    original = fake_shard(1, rows=4000)
    original["x"] = np.ones((4000, 3), np.float32) * np.arange(3)  # compressible, so a flipped byte is in the data
    path = store.save(1, 100, original)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(ShardWarning, match="shard-00001-n100.npz"):
        assert store.load(1, 100) is None


def test_shard_of_other_settings_or_index_is_foreign(tmp_path):
    folder = tmp_path / "s.shards"
    ShardStore(folder, "cd" * 32).save(0, 100, fake_shard(0))
    with pytest.warns(ShardWarning, match="other generation settings"):
        assert ShardStore(folder, HASH).load(0, 100) is None
    store = ShardStore(folder, HASH)
    store.save(0, 100, fake_shard(0))
    store.path(0, 100).rename(store.path(1, 100))  # a file under another shard's name
    with pytest.warns(ShardWarning, match="holds shard 0 of 100 events, expected shard 1"):
        assert store.load(1, 100) is None


def test_store_checks_its_inputs(tmp_path):
    with pytest.raises(ValueError, match="SHA-256"):
        ShardStore(tmp_path, "abc")
    with pytest.raises(ValueError, match="nothing to save"):
        ShardStore(tmp_path, HASH).save(0, 1, {"stats": {}})
    assert shard_folder(tmp_path / "dimuon-z-seed0-0123.h5") == tmp_path / "dimuon-z-seed0-0123.shards"


def wide_shard(shard, n):
    """A synthetic shard job: ``n`` rows of 250 float32 (1 kB a row)."""
    rng = np.random.default_rng(shard)
    return {"x": rng.standard_normal(size=(n, 250), dtype=np.float32),
            "event_id": np.arange(n, dtype=np.int64) + (shard << 20), "stats": {"tried": n}}


def test_store_backed_run_and_merge_hold_one_shard_and_one_column(tmp_path):
    """With a store, the run keeps only row ids of finished shards, and the merge fills one array per key from the
    files: peak memory stays near one column, where merging in memory needs every shard plus their concatenation."""
    import tracemalloc

    from hepnb.generate.shards import merge, run_shards

    n_rows, per_shard = 19_000, 1_000  # 20 shards, 20 MB of x in all
    total = 20 * per_shard * 250 * 4
    tracemalloc.start()
    try:
        run = run_shards(wide_shard, n_rows, n_hard=per_shard, progress=False, store=ShardStore(tmp_path, HASH))
        _, run_peak = tracemalloc.get_traced_memory()
        merged = merge(run, n_rows)
        assert len(merged["x"]) == n_rows and "stats" not in merged
        tracemalloc.reset_peak()
        x = np.asarray(merged["x"])
        _, merge_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(run) == 19 and all(set(s) == {"event_id", "stats"} for s in run)
    assert run_peak < 0.5 * total, run_peak
    assert merge_peak < 1.3 * total, merge_peak
    eager = merge([wide_shard(k, per_shard) for k in range(19)], n_rows)
    assert x.dtype == eager["x"].dtype and np.array_equal(x, eager["x"])
    assert np.array_equal(np.asarray(merged["event_id"]), eager["event_id"])


# ---------------------------------------------------------------------------------------------------------------
# generation through the store: resumed, rejected, identical bytes


def test_damaged_and_foreign_shards_are_regenerated_and_the_bytes_kept(tmp_path):
    path = tmp_path / "z.h5"
    info = dimuon.generate_file(path, "z", 3000, seed=3, progress=False, keep_shards=True)
    reference = sha256(path)
    files = shard_files(shard_folder(path))
    assert info["generated"] == info["shards"] == len(files) == 3 and info["reused"] == 0
    # a truncated shard, and a shard from another seed put under shard 2's name
    files[1].write_bytes(files[1].read_bytes()[:1000])
    other = tmp_path / "other.h5"
    dimuon.generate_file(other, "z", 3000, seed=4, progress=False, keep_shards=True)
    (shard_folder(other) / files[2].name).replace(files[2])
    path.unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = dimuon.generate_file(path, "z", 3000, seed=3, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, ShardWarning)]
    assert len(messages) == 2
    assert files[1].name in messages[0] and "truncated or corrupt" in messages[0]
    assert files[2].name in messages[1] and "other generation settings" in messages[1]
    assert (again["reused"], again["generated"]) == (1, 2)
    assert sha256(path) == reference
    assert not shard_folder(path).exists()  # removed once merged


def test_this_process_a_pool_and_local_dask_give_the_same_bytes(tmp_path):
    made = {}
    for name, kw in {"serial": {"workers": 1}, "pool": {"workers": 2}, "dask": {"workers": 2, "dask": "local"}}.items():
        info = dimuon.generate_file(tmp_path / f"{name}.h5", "gamma", 2500, seed=5, progress=False, **kw)
        made[name] = sha256(tmp_path / f"{name}.h5")
        assert info["generated"] >= 2
    assert info["backend"] == "dask local cluster (2 workers)"
    assert made["serial"] == made["pool"] == made["dask"]


def test_a_worker_with_other_versions_or_code_refuses_to_run_a_shard():
    from hepnb.generate.backends import checked, fingerprint

    mine = fingerprint()
    assert dict(mine)["pythia8mc"] == "8.317.2" and len(dict(mine)["hepnb code"]) == 16
    assert checked(mine, lambda a, b: a + b, 2, 3) == 5
    other = tuple((k, "0.0" if k == "pythia8mc" else v) for k, v in mine)
    with pytest.raises(GeneratorError, match=r"differs from the client: pythia8mc '8.317.2' \(client: '0.0'\)"):
        checked(other, lambda: None)


def test_resim_on_dask_gives_the_bytes_of_one_process(tmp_path):
    from hepnb.generate.shards import generate_class

    one, _ = generate_class("qcd", 12, seed=2, n_hard=30, progress=False)
    two, info = generate_class("qcd", 12, seed=2, n_hard=30, progress=False, dask="local", workers=2)
    assert info["backend"].startswith("dask") and one.keys() == two.keys()
    for key in one:
        assert np.array_equal(one[key], two[key]), key


def test_killed_generation_resumes_without_regenerating_finished_shards(tmp_path):
    """SIGKILL a command-line generation after some shards finished; rerunning it completes the file, reuses every
    finished shard (counted, files untouched) and writes the bytes of an uninterrupted run."""
    data = tmp_path / "data"
    args = ["generate", "dimuon", "--class", "z", "--events", "20000", "--seed", "11", "--workers", "1",
            "--keep-shards", "--quiet"]
    path = dimuon.cache_path("z", 11, folder=data / "dimuon")
    folder = shard_folder(path)
    env = {**os.environ, "HEPNB_DATA": str(data)}
    process = subprocess.Popen([sys.executable, "-m", "hepnb", *args], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(shard_files(folder)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the generation finished before it could be killed"
    assert not path.exists()  # nothing merged, nothing half-written under the final name
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_files(folder)}
    assert len(before) >= 2

    start = time.perf_counter()
    rerun = cli(*args, data_dir=data)
    seconds = time.perf_counter() - start
    assert rerun.returncode == 0, rerun.stderr
    summary = re.search(r"(\d+) shards?: (\d+) generated, (\d+) reused", rerun.stdout)
    total, generated, reused = map(int, summary.groups())
    assert reused == len(before) and generated == total - len(before) and generated >= 1
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_files(folder)}
    assert {k: after[k] for k in before} == before  # the finished shards were read, never rewritten

    reference = tmp_path / "reference.h5"
    dimuon.generate_file(reference, "z", 20000, seed=11, progress=False)
    assert sha256(path) == sha256(reference)
    print(f"resume: {len(before)} shards reused, {generated} generated, rerun {seconds:.1f} s")


def test_two_processes_making_the_same_file_share_its_shards(tmp_path):
    """Two commands generating one file at once both succeed, neither deletes shards the other still merges, the
    file has the bytes of a single run, and the last one to finish removes the shard folder."""
    args = [sys.executable, "-m", "hepnb", "generate", "dimuon", "--class", "gamma", "--events", "20000", "--seed",
            "19", "--workers", "1", "--quiet"]
    env = {**os.environ, "HEPNB_DATA": str(tmp_path)}
    runs = [subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    path = dimuon.cache_path("gamma", 19, folder=tmp_path / "dimuon")
    reference = tmp_path / "reference.h5"
    dimuon.generate_file(reference, "gamma", 20000, seed=19, progress=False)
    assert sha256(path) == sha256(reference)
    assert not shard_folder(path).exists()


def test_finish_leaves_the_folder_to_another_holder(tmp_path):
    a, b = ShardStore(tmp_path / "s.shards", HASH), ShardStore(tmp_path / "s.shards", HASH)
    with a.use(), b.use():
        a.save(0, 10, fake_shard(0))
        a.finish()
        assert a.path(0, 10).exists()  # b still holds the folder
        b.finish()
    assert not (tmp_path / "s.shards").exists()


# ---------------------------------------------------------------------------------------------------------------
# the command line


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, status, message", [
    (["generate", "pythia", "--events", "10"], 2, "invalid choice: 'pythia'"),
    (["generate", "resim", "--class", "hxx", "--events", "10"], 2, "generator 'resim' has no class 'hxx'; its "
     "classes are qcd, hbb, wqq"),
    (["generate", "resim", "--class", "hbb", "--events", "-5"], 2, "--events must be an integer >= 1, got -5"),
    (["generate", "dimuon", "--events", "10", "--seed", "-1"], 2, "--seed must be an integer >= 0, got -1"),
    (["generate", "dimuon", "--events", "10", "--workers", "0"], 2, "--workers must be an integer >= 1, got 0"),
    (["generate", "dimuon"], 2, "the following arguments are required: --events"),
    (["data", "--chapters", "nosuch", "--dry-run"], 2, "unknown chapters ['nosuch']"),
])
def test_cli_errors_are_one_line(tmp_path, args, status, message):
    result = cli(*args, data_dir=tmp_path)
    assert result.returncode == status
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hepnb: error: ") and message in lines[0], result.stderr
    assert not list(tmp_path.glob("*/*.h5"))


def test_unreachable_scheduler_fails_fast_naming_it_and_keeps_finished_shards(tmp_path):
    # an interrupted run's finished shards are there; the failing command must leave them
    path = dimuon.cache_path("z", 13, folder=tmp_path / "dimuon")
    store = ShardStore.for_file(path, dimuon.generation_record("z", 13))
    store.save(0, 2000, fake_shard(0))
    address = f"tcp://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    result = cli("generate", "dimuon", "--class", "z", "--events", "100", "--seed", "13", "--dask", address,
                 "--dask-timeout", "2", data_dir=tmp_path)
    assert time.perf_counter() - start < 30
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert f"cannot reach the Dask scheduler at {address}" in lines[0]
    assert [p.name for p in shard_files(store.folder)] == ["shard-00000-n2000.npz"]


def test_lost_scheduler_fails_in_one_line_and_a_pool_resumes_from_its_shards(tmp_path):
    """A real scheduler and two workers on loopback; the scheduler is killed mid-generation: the command fails with
    one line instead of hanging, keeps the finished shards, and a rerun on a process pool completes the file with
    the bytes of an uninterrupted run."""
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", port,
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--nworkers",
                                   "2", "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        args = ["generate", "dimuon", "--class", "z", "--events", "60000", "--seed", "17", "--quiet"]
        env = {**os.environ, "HEPNB_DATA": str(tmp_path)}
        run = subprocess.Popen([sys.executable, "-m", "hepnb", *args, "--dask", address, "--dask-timeout", "20"],
                               env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        folder = shard_folder(dimuon.cache_path("z", 17, folder=tmp_path / "dimuon"))
        deadline = time.monotonic() + 120
        while len(shard_files(folder)) < 2 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        scheduler.kill()
        _, stderr = run.communicate(timeout=90)
    finally:
        for p in (scheduler, worker):
            if p is not None:
                p.kill()
                p.wait()
    assert run.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "lost the Dask scheduler" in lines[0], stderr
    kept = len(shard_files(folder))
    assert kept >= 2
    rerun = cli(*args, "--workers", "2", data_dir=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{kept} reused" in rerun.stdout
    reference = tmp_path / "reference.h5"
    dimuon.generate_file(reference, "z", 60000, seed=17, progress=False)
    assert sha256(dimuon.cache_path("z", 17, folder=tmp_path / "dimuon")) == sha256(reference)


def test_cli_generates_then_finds_the_file_cached(tmp_path):
    first = cli("generate", "dimuon", "--class", "gamma", "--events", "1500", "--seed", "2", "--workers", "2",
                "--quiet", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    path = dimuon.cache_path("gamma", 2, folder=tmp_path / "dimuon")
    assert f"wrote {path}" in first.stdout and "process pool (2 workers)" in first.stdout
    assert dimuon.read_dimuons(path).muons.shape == (1500, 2, 4)
    assert not shard_folder(path).exists()
    second = cli("generate", "dimuon", "--class", "gamma", "--events", "1000", "--seed", "2", data_dir=tmp_path)
    assert second.returncode == 0 and "nothing to do" in second.stdout


# ---------------------------------------------------------------------------------------------------------------
# the generators and the chapters' data plan


def test_generators_registry():
    assert set(GENERATORS) == {"resim", "dimuon", "highpt"}
    assert generator("resim").classes == ("qcd", "hbb", "wqq")
    assert generator("dimuon").classes == ("gamma", "z")
    assert generator("highpt").classes == ("g", "q", "w", "z", "t")
    with pytest.raises(ConfigError, match="unknown generator 'x'; choose from resim, dimuon, highpt"):
        generator("x")
    with pytest.raises(ConfigError, match="n must be an integer >= 1"):
        Request("resim", "hbb", 0, 0)


def test_merge_requests_keeps_the_largest_size_per_file():
    merged = merge_requests([Request("resim", "hbb", 300, 0, ("data",)), Request("resim", "hbb", 500, 0, ("rs3l",)),
                             Request("resim", "hbb", 100, 1, ("adversarial",))])
    assert [(r.n, r.seed, r.chapters) for r in merged] == [(500, 0, ("data", "rs3l")), (100, 1, ("adversarial",))]


def test_plan_covers_every_chapter_with_data():
    from hepnb.config import resolve

    requests = plan("paper")
    by_key = {r.key: r for r in requests}
    assert len(by_key) == len(requests)
    adversarial = resolve("paper", chapter="adversarial")
    for s in range(adversarial.seeds):  # one independent replica per training seed
        assert by_key[("resim", "hbb", s)].n == adversarial.n_events
    symmetry = resolve("paper", chapter="symmetry")
    assert {r.seed for r in requests if r.generator == "dimuon"} == set(range(symmetry.ensembles))
    simplicity = resolve("paper", chapter="simplicity")
    assert by_key[("highpt", "g", 0)].n == simplicity.n_jets
    assert {c for g, c, _ in by_key if g == "highpt"} == {"g", "w", "z", "t"}
    assert set(by_key[("resim", "wqq", 0)].chapters) == {"data", "rs3l"}
    assert plan("smoke", chapters=["rs3l"]) == [Request("resim", c, 300, 0, ("rs3l",)) for c in ("qcd", "hbb", "wqq")]


class _Loaded(Exception):
    pass


@pytest.mark.parametrize("chapter", ["data", "adversarial", "symmetry", "simplicity", "rs3l", "benchmark"])
def test_plan_names_the_files_each_chapter_loads(monkeypatch, chapter):
    """Each study's first data load asks for exactly a file of its ``data_requests`` (recorded, then stopped)."""
    import importlib

    from hepnb.config import resolve
    from hepnb.data import cache, highpt

    asked = []

    def recorder(kind):
        def load(name, n, seed=0, *args, **kwargs):
            asked.append((kind, name, int(n), int(seed)))
            raise _Loaded

        return load

    monkeypatch.setattr(cache, "load_or_generate", recorder("resim"))
    monkeypatch.setattr(dimuon, "load_or_generate", recorder("dimuon"))
    monkeypatch.setattr(highpt, "load_or_generate", recorder("highpt"))
    study = importlib.import_module(f"hepnb.studies.{chapter}")
    cfg = resolve("smoke", chapter=chapter)
    load = {"data": lambda: study.load_samples(study.CLASSES, cfg.n_events, cfg.seed),
            "adversarial": lambda: study.load_replicas(cfg.n_events, [cfg.seed], cfg.batch_size),
            "symmetry": lambda: study.load_replicas(cfg.n_events, [cfg.seed], [cfg.sigma]),
            "simplicity": lambda: study.load_data(cfg.n_jets, cfg.seed),
            "rs3l": lambda: study.load_data(cfg.n_events, cfg.constituents, cfg.seed),
            "benchmark": lambda: study.load_replicas(cfg.n_events, [cfg.seed], 1, cfg.batch_size)}[chapter]
    with pytest.raises(_Loaded):
        load()
    wanted = {(r.generator, r.class_name, r.n, r.seed) for r in study.data_requests(cfg)}
    assert asked and asked[0] in wanted
