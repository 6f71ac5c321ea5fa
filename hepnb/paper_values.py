"""Published numbers the chapters compare against, copied from the papers' tables (value, uncertainty).

Explained where they are used: paper 000 (Rothen et al., Phys. Rev. D 112, 016004) in
``book/adversarial/adversarial.ipynb``. "pythia" is their nominal Pythia 8 (RS3L0), "herwig" their Herwig 7
re-shower (RS3L4); keys are ``(train, evaluate)``. Uncertainties are the standard deviation over 5 seeds.
"""

from __future__ import annotations

__all__ = ["ROTHEN_SCORES", "ROTHEN_DELTA_S", "ROTHEN_EIGEN_PP", "ROTHEN_METHODS"]

ROTHEN_METHODS = ("default", "sam", "ssamd", "fgsm", "pgd")

# Table IX (raw scores, cross-evaluation) and its "Target" row = the default model on its own simulator (Table III):
# AUC and background rejection at signal efficiency 0.85.
ROTHEN_SCORES: dict[tuple[str, str, str], dict[str, tuple[float, float]]] = {
    ("default", "pythia", "herwig"): {"auc": (0.953, 0.004), "rejection": (11.3, 0.2)},
    ("sam", "pythia", "herwig"): {"auc": (0.962, 0.002), "rejection": (13.8, 0.1)},
    ("ssamd", "pythia", "herwig"): {"auc": (0.963, 0.002), "rejection": (14.2, 0.2)},
    ("fgsm", "pythia", "herwig"): {"auc": (0.957, 0.004), "rejection": (11.5, 0.1)},
    ("pgd", "pythia", "herwig"): {"auc": (0.962, 0.003), "rejection": (13.8, 0.2)},
    ("default", "herwig", "pythia"): {"auc": (0.965, 0.003), "rejection": (15.0, 0.1)},
    ("sam", "herwig", "pythia"): {"auc": (0.968, 0.001), "rejection": (15.6, 0.2)},
    ("ssamd", "herwig", "pythia"): {"auc": (0.968, 0.003), "rejection": (16.3, 0.2)},
    ("fgsm", "herwig", "pythia"): {"auc": (0.971, 0.002), "rejection": (17.5, 0.2)},
    ("pgd", "herwig", "pythia"): {"auc": (0.975, 0.003), "rejection": (20.7, 0.3)},
    ("default", "herwig", "herwig"): {"auc": (0.974, 0.002), "rejection": (21.2, 0.0)},
    ("default", "pythia", "pythia"): {"auc": (0.978, 0.002), "rejection": (24.2, 0.0)},
}

# Table V: fractional improvement Delta S (eq. 14) over the default model.
ROTHEN_DELTA_S: dict[tuple[str, str, str], dict[str, tuple[float, float]]] = {
    ("sam", "pythia", "herwig"): {"auc": (0.44, 0.02), "rejection": (0.25, 0.02)},
    ("ssamd", "pythia", "herwig"): {"auc": (0.47, 0.01), "rejection": (0.29, 0.02)},
    ("fgsm", "pythia", "herwig"): {"auc": (0.21, 0.01), "rejection": (0.03, 0.01)},
    ("pgd", "pythia", "herwig"): {"auc": (0.46, 0.02), "rejection": (0.25, 0.02)},
    ("sam", "herwig", "pythia"): {"auc": (0.20, 0.01), "rejection": (0.07, 0.01)},
    ("ssamd", "herwig", "pythia"): {"auc": (0.23, 0.01), "rejection": (0.14, 0.01)},
    ("fgsm", "herwig", "pythia"): {"auc": (0.44, 0.02), "rejection": (0.27, 0.02)},
    ("pgd", "herwig", "pythia"): {"auc": (0.76, 0.03), "rejection": (0.62, 0.02)},
}

# Table IV: largest reduced-Hessian eigenvalue, trained and evaluated on Pythia; (space, class).
ROTHEN_EIGEN_PP: dict[str, dict[tuple[str, str], tuple[float, float]]] = {
    "default": {("features", "hbb"): (0.84, 0.08), ("features", "qcd"): (0.03, 0.01),
                ("weights", "hbb"): (0.31, 0.05), ("weights", "qcd"): (0.28, 0.07)},
    "sam": {("features", "hbb"): (0.82, 0.11), ("features", "qcd"): (0.07, 0.04),
            ("weights", "hbb"): (0.11, 0.01), ("weights", "qcd"): (0.12, 0.01)},
    "ssamd": {("features", "hbb"): (0.98, 0.09), ("features", "qcd"): (0.04, 0.01),
              ("weights", "hbb"): (0.22, 0.01), ("weights", "qcd"): (0.19, 0.03)},
    "fgsm": {("features", "hbb"): (0.17, 0.01), ("features", "qcd"): (0.024, 0.006),
             ("weights", "hbb"): (0.80, 0.09), ("weights", "qcd"): (0.49, 0.07)},
    "pgd": {("features", "hbb"): (0.056, 0.004), ("features", "qcd"): (0.005, 0.002),
            ("weights", "hbb"): (0.72, 0.07), ("weights", "qcd"): (0.42, 0.08)},
}
