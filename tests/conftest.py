"""Shared test set-up. Agg is set here only: setting MPLBACKEND globally would blank the book's figures."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

# Notebooks under tests/fixtures are inputs of tests (with deliberately stored outputs), not pages to run.
collect_ignore_glob = ["fixtures/*"]
