"""The book's jet models: the paper-000 dense tagger and the paper-002 jet transformer.

Explained in ``book/landscape/sharpness.ipynb``; each module's docstring says which paper it follows and where we
differ.
"""

from hepnb.models.dense import DenseTagger
from hepnb.models.transformer import JetTransformer, n_parameters

__all__ = ["DenseTagger", "JetTransformer", "n_parameters"]
