"""What this run is made of: package versions, hardware, device; explained in ``book/getting_started.ipynb``."""

from __future__ import annotations

import os
import platform
from importlib import metadata

PACKAGES = ("hepnb", "torch", "numpy", "pythia8mc", "fastjet", "awkward", "vector", "h5py", "scikit-learn",
            "matplotlib", "jupyter-book", "papermill")


def version(package: str, missing: str = "not installed") -> str:
    """Installed version of one distribution, or ``missing`` where it is absent (the generated files record
    ``"unknown"``: :mod:`hepnb.data.store`)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return missing


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` where absent)."""
    return {name: version(name) for name in packages}


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
