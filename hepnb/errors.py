"""Errors for data files; explained in ``book/data/resimulation.ipynb``."""


class DataFileError(ValueError):
    """A data file is missing, truncated, corrupt, foreign (not the expected layout) or inconsistent.

    The message names the file and exactly what is wrong with it.
    """
