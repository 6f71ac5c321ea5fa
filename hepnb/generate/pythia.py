"""A quiet, seeded Pythia 8 and batched generation; explained in ``book/getting_started.ipynb``.

Generation uses ``Pythia.nextBatch``, which returns a whole batch of events as an awkward array (the fast path of
``../shared/DESIGN.md`` section 4), never a per-particle Python loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import awkward as ak
import numpy as np
from tqdm import tqdm  # the text bar: widget bars need ipywidgets and do not render in the book

from hepnb.errors import GeneratorError
from hepnb.quiet import captured_stdout_fd
from hepnb.validation import check_int

MAX_PYTHIA_SEED = 900_000_000  # Pythia's Random:seed: 1 .. 900 000 000 (0 means "seed from the clock")
NEUTRINOS = (12, 14, 16)


def derive_seed(seed: int, *keys: object) -> int:
    """A Pythia seed in [1, 900 000 000] derived from a base seed and any labels (process, shard, ...).

    Stable across processes, machines and Python versions (SHA-256 of the text, not ``hash()``), and never 0,
    which Pythia would read as "seed from the clock".
    """
    text = "|".join(map(str, (int(seed), *keys))).encode()
    return 1 + int.from_bytes(hashlib.sha256(text).digest()[:8], "big") % MAX_PYTHIA_SEED


def make_pythia(settings: Sequence[str], seed: int) -> Any:
    """Build and initialise a ``pythia8mc.Pythia`` with printing off, seeded with ``seed`` (1 .. 900 000 000).

    Every setting string is checked: one Pythia does not recognise raises :class:`GeneratorError` naming it
    (Pythia itself would only print a warning and carry on, or abort ``init``).
    """
    import pythia8mc

    seed = check_int("Pythia seed (0 would mean a clock seed; derive one with hepnb.generate.derive_seed)", seed,
                     minimum=1, maximum=MAX_PYTHIA_SEED, error=GeneratorError)
    pythia = pythia8mc.Pythia("", False)  # False: no banner
    for setting in ("Print:quiet = on", "Random:setSeed = on", f"Random:seed = {seed}", *settings):
        if not pythia.readString(setting):
            raise GeneratorError(f"Pythia rejected the setting {setting!r}")
    with captured_stdout_fd() as log:  # Vincia prints a banner at init even with Print:quiet = on
        ok = pythia.init()
    if not ok:
        raise GeneratorError("Pythia failed to initialise with settings:\n  " + "\n  ".join(settings)
                             + "\nPythia said:\n" + log.text[-3000:])
    return pythia


def generate_events(pythia: Any, n_events: int, batch_size: int = 1000, progress: bool = True) -> ak.Array:
    """Generate ``n_events`` successful events as one awkward array (fields ``prt`` and ``info``).

    Events Pythia fails to generate (``None`` under ``nextBatch(..., "none")``) are dropped and replaced by
    further batches until ``n_events`` are in hand; more than 10% failures raise :class:`GeneratorError`.
    """
    n_events = check_int("n_events", n_events, error=GeneratorError)
    batch_size = check_int("batch_size", batch_size, error=GeneratorError)
    chunks, have, tried = [], 0, 0
    with tqdm(total=n_events, desc="Pythia events", unit="ev", disable=not progress, leave=False,
              delay=2.0) as bar:
        while have < n_events:
            n = min(batch_size, n_events - have)
            batch = pythia.nextBatch(n, "none")
            tried += n
            batch = batch[~ak.is_none(batch, axis=0)]
            chunks.append(batch)
            have += len(batch)
            bar.update(len(batch))
            if tried - have > max(10, 0.1 * tried):
                raise GeneratorError(f"Pythia failed {tried - have} of {tried} events; check the settings")
    return ak.concatenate(chunks)[:n_events]


def visible_final_state(events: ak.Array, particle_data: Any) -> ak.Array:
    """The detector-visible final state: status > 0, neutrinos removed.

    Returns per-event records ``px, py, pz, E`` (GeV, vector ``Momentum4D`` behaviour), ``pid``, ``charge``
    (units of e, looked up once per species in ``particle_data``, i.e. ``pythia.particleData``) and the production
    vertex ``vx, vy, vz`` (mm; B/D decays displace it, see ``book/data/resimulation.ipynb``).
    """
    import vector

    vector.register_awkward()
    prt = events.prt
    absid = abs(prt.id)
    keep = prt.status > 0
    for nu in NEUTRINOS:
        keep = keep & (absid != nu)
    fs = prt[keep]
    pid = fs.id
    flat = ak.to_numpy(ak.flatten(pid))
    species = np.unique(flat)
    charges = np.array([particle_data.charge(int(s)) for s in species], dtype=np.float32)
    charge = ak.unflatten(charges[np.searchsorted(species, flat)], ak.num(pid))
    vertex = fs.vProd  # None where Pythia set no production vertex, i.e. the origin
    fields = {"px": fs.p.px, "py": fs.p.py, "pz": fs.p.pz, "E": fs.p.e, "pid": pid, "charge": charge}
    for name, component in (("vx", "px"), ("vy", "py"), ("vz", "pz")):
        fields[name] = ak.fill_none(vertex[component], 0.0)
    return ak.zip(fields, with_name="Momentum4D")
