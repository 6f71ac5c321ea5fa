"""One module per chapter, named by the chapter's key (``config.CHAPTERS``, ``book/<key>/``): the chapter's heavy
lifting and its paper's published values, so that the notebook reads as narrative. The rule is explained in
``README.md`` ("Adding a chapter"); each module's docstring names its page, e.g. ``book/adversarial/adversarial.ipynb``.

``data``         the re-simulated jets against the papers' descriptions (``book/data/``)
``landscape``    the sharpness toolkit checked and applied (``book/landscape/``)
``adversarial``  Rothen et al.: adversarial training across simulators (``book/adversarial/``)
``symmetry``     Nabat et al.: general, Lorentz-invariant and hybrid networks on Z vs gamma* dimuons
                 (``book/symmetry/``)
``simplicity``   Glowacki: the SEAL soft Lorentz-symmetry loss, curvature, robustness, distillation
                 (``book/simplicity/``)
``rs3l``         Harris et al.: re-simulation-based contrastive pre-training and fine-tuning (``book/rs3l/``)
``benchmark``    every method of the four papers on one cross-shower benchmark (``book/benchmark/``)
"""
