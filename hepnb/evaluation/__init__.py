"""Evaluating trained models and presenting results: scores, small-sample statistics, tables and figures.

``metrics``   AUC, background rejection, Delta S, mass sculpting
``stats``     seed statistics, paired bootstrap, the verdict rule of every paper-vs-ours table
``tables``    :class:`~hepnb.evaluation.tables.Table`, built from values, shown as HTML or text
``plotting``  the book's figures

Explained in ``book/adversarial/adversarial.ipynb`` (metrics, stats) and ``book/getting_started.ipynb`` (the rest).
"""
