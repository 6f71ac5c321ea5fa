"""Checking user-supplied numbers, written once: every size, count, radius and fraction hepnb accepts goes through
these functions, so a nonsense value gets the same clear error everywhere. Explained in
``book/getting_started.ipynb`` (the scale registry uses them for every knob).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_int", "check_positive", "check_fraction"]


def check_int(name: str, value: Any, minimum: int | None = 1, maximum: int | None = None,
              error: type[Exception] = ValueError) -> int:
    """``value`` as a Python ``int`` if it is an integer (not a bool; a whole float such as ``1e5`` is accepted)
    within ``[minimum, maximum]`` (``None``: unbounded); otherwise ``error`` naming ``name`` and the bound."""
    if isinstance(value, bool):
        raise error(f"{name} must be an integer, got the bool {value!r}")
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise error(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise error(f"{name} must be an integer <= {maximum}, got {value}")
    return value


def check_positive(name: str, value: Any, error: type[Exception] = ValueError) -> float:
    """``value`` as a ``float`` if it is a finite number > 0 (not a bool); otherwise ``error`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise error(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(float(value)) or value <= 0:
        raise error(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_fraction(name: str, value: Any, closed_low: bool = False, closed_high: bool = True,
                   error: type[Exception] = ValueError) -> float:
    """``value`` as a ``float`` in ``(0, 1]`` (or with the ends closed/open as asked); otherwise ``error``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise error(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    low_ok = v >= 0 if closed_low else v > 0
    high_ok = v <= 1 if closed_high else v < 1
    if not (math.isfinite(v) and low_ok and high_ok):
        interval = f"{'[' if closed_low else '('}0, 1{']' if closed_high else ')'}"
        raise error(f"{name} must lie in {interval}, got {value!r}")
    return v


def check_window(obj: Any) -> None:
    """Check a frozen selection dataclass (the generators' ``Selection``): every field > 0, ``jet_pt_max`` above
    ``jet_pt_min``, ``max_constituents`` an integer >= 1. Explained in ``book/data/resimulation.ipynb``."""
    from dataclasses import asdict

    name = type(obj).__name__
    for field, value in asdict(obj).items():
        check_positive(f"{name}.{field}", value)
    if obj.jet_pt_max <= obj.jet_pt_min:
        raise ValueError(f"jet_pt_max ({obj.jet_pt_max}) must exceed jet_pt_min ({obj.jet_pt_min})")
    check_int(f"{name}.max_constituents", obj.max_constituents)
