"""Data: the in-memory sample, its HDF5 store and cache, the public-file loaders, network features and datasets.

``sample``    :class:`~hepnb.data.sample.JetSample`, jets of N hard events in V shower variations
``files``     atomic writes and validated HDF5 opening
``store``     the native HDF5 files: the ``hepnb-resim`` layout, and the writer and opener every native format uses
``cache``     generate once, read back whenever the settings match (``load_or_generate``, ``load_classes``)
``public``    the real public RS3L files, read into the same sample
``features``  the 15 constituent and 2 jet features (NumPy or torch)
``datasets``  splits by hard event and PyTorch datasets/batches (``DictBatches``: shuffled or weighted draws)
``dimuon``    the ``hepnb-dimuon`` files of Z and gamma* -> mu mu events and their cache
``highpt``    ``HighPtSample``, the ``hepnb-highpt`` files of 1 TeV g, q, W, Z, t jets and their cache
``hls4ml``    the real public hls4ml jet files, read into the same sample
``reweighting``  background weights in bins of one variable
``generators``   the three generators under one interface, and the files every chapter reads at a scale (``plan``)

Explained in ``book/data/resimulation.ipynb`` (dimuons and reweighting in ``book/symmetry/symmetry.ipynb``, the
1 TeV jets and the hls4ml files in ``book/simplicity/simplicity.ipynb``).
"""
