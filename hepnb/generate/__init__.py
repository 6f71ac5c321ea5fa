"""Event generation with Pythia 8 (the ``pythia8mc`` wheel); explained in ``book/getting_started.ipynb``.

``pythia``     a quiet, seeded, validated Pythia instance and batched generation into awkward arrays
``processes``  the named physics processes of the book (settings lists shared by every chapter)
``resim``      one hard scattering showered five ways, matched jets, sharded and reproducible
               (explained in ``book/data/resimulation.ipynb``)
"""

from hepnb.generate.processes import PROCESSES, process_settings
from hepnb.generate.pythia import GeneratorError, derive_seed, generate_events, make_pythia, visible_final_state

__all__ = ["PROCESSES", "GeneratorError", "derive_seed", "generate_events", "make_pythia", "process_settings",
           "visible_final_state"]
