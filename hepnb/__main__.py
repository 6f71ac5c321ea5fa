"""``python -m hepnb``: the command line of :mod:`hepnb.cli` (explained in ``book/data/resimulation.ipynb``)."""

import sys

from hepnb.cli import main

if __name__ == "__main__":  # spawned worker processes import this module too: only the real run starts work
    sys.exit(main())
