"""Training: one loop for every chapter, the tasks that say what is learned, the strategies that say how a step is
taken, and load-or-train checkpoints.

``loop``         :func:`~hepnb.training.loop.fit`, :func:`~hepnb.training.loop.predict`, ``History``
``tasks``        what a batch becomes: inputs, loss, prediction and metric (binary, multi-class, contrastive, ...)
``adversarial``  the strategies of Rothen et al.: FGSM, PGD, SAM, SSAM-D
``checkpoints``  trained models cached under a hash of everything that made them, versioned per study

Explained in ``book/landscape/sharpness.ipynb`` (the loop) and ``book/adversarial/adversarial.ipynb`` (strategies,
checkpoints).
"""
