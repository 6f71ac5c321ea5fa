"""Silencing C++ libraries that print to file descriptor 1 (Pythia's Vincia banner, FastJet's banner).

Explained in ``book/getting_started.ipynb``. Python-level redirection cannot catch these prints: the C++ code writes
to the process's stdout descriptor directly, so the descriptor itself is pointed at a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    """Text written to stdout inside :func:`captured_stdout_fd`; ``text`` is filled when the block exits."""

    text: str = ""


@contextlib.contextmanager
def captured_stdout_fd() -> Iterator[Captured]:
    """Capture C-level stdout (descriptor 1) for the duration of the block; the text is on the yielded object."""
    captured = Captured()
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with tempfile.TemporaryFile(mode="w+b") as sink:
            os.dup2(sink.fileno(), 1)
            try:
                yield captured
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                os.dup2(saved, 1)
                sink.seek(0)
                captured.text = sink.read().decode(errors="replace")
    finally:
        os.close(saved)
