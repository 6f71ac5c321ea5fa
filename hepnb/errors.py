"""Every error class of hepnb, in one place; each is explained in the chapter named in its docstring (the data
errors in ``book/data/resimulation.ipynb``, the configuration errors in ``book/getting_started.ipynb``).

All derive from :class:`HepnbError`, so ``except hepnb.errors.HepnbError`` catches anything hepnb raises on purpose.
Each is also a ``ValueError`` or ``RuntimeError``, as the kind of problem suggests, so generic handlers still work.
The messages name the offending input (the file, the setting, the value) and what is wrong with it.
"""

from __future__ import annotations

__all__ = ["HepnbError", "ConfigError", "DataFileError", "SampleError", "GeneratorError", "CheckpointError",
           "ShardWarning"]


class HepnbError(Exception):
    """Base class of every error hepnb raises on purpose."""


class ConfigError(HepnbError, ValueError):
    """A scale, knob or value that hepnb cannot use (explained in ``book/getting_started.ipynb``)."""


class DataFileError(HepnbError, ValueError):
    """A data file is missing, truncated, corrupt, foreign (not the expected layout) or inconsistent.

    The message names the file and exactly what is wrong with it (explained in ``book/data/resimulation.ipynb``).
    """


class SampleError(HepnbError, ValueError):
    """Arrays of a :class:`~hepnb.data.sample.JetSample` do not fit together (shapes, dtypes, classes), or a
    selection of it is empty or unknown (explained in ``book/data/resimulation.ipynb``)."""


class GeneratorError(HepnbError, RuntimeError):
    """Pythia rejected a setting, failed to initialise, or was asked for something impossible (explained in
    ``book/getting_started.ipynb``)."""


class CheckpointError(HepnbError, RuntimeError):
    """A checkpoint file that cannot be used: unreadable, not a hepnb checkpoint, or made with other settings
    (explained in ``book/adversarial/adversarial.ipynb``)."""


class ShardWarning(UserWarning):
    """A finished shard file of a generation could not be trusted (truncated, corrupt, or written for other
    settings) and is generated again; the message names the file and what is wrong with it (explained in
    ``book/data/resimulation.ipynb``, section "Generating at scale")."""
