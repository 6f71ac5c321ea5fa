"""What this run is made of: package versions, hardware, device; explained in ``book/getting_started.ipynb``."""

from __future__ import annotations

import os
import platform
from importlib import metadata

PACKAGES = ("hepnb", "torch", "numpy", "pythia8mc", "fastjet", "awkward", "vector", "h5py", "scikit-learn",
            "matplotlib", "jupyter-book", "papermill")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` where absent)."""
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine(device: str = "cpu") -> dict[str, str]:
    """Python, platform, CPU cores, torch threads and the accelerator behind ``device``."""
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = str(torch.version.cuda)
    return info


def report(device: str = "cpu") -> dict[str, str]:
    """:func:`machine` followed by :func:`versions`, one dict for a printout."""
    return {**machine(device), **versions()}
