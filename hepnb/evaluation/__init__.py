"""Evaluating trained models and presenting results: scores, small-sample statistics, tables and figures.

``metrics``   AUC, background rejection, Delta S, mass sculpting
``stats``     small-sample statistics (Student-t intervals, paired bootstrap) and the verdict rule of every
              paper-vs-ours table
``claims``    one claims-table row per claim of a paper, the rule printed under the table
``stability`` do two runs' verdicts agree? (``benchmarks/claims_stability.py``)
``tables``    :class:`~hepnb.evaluation.tables.Table`, built from values, shown as HTML or text
``plotting``  the book's figures

Explained in ``book/adversarial/adversarial.ipynb`` (metrics, stats) and ``book/getting_started.ipynb`` (the rest).
"""
