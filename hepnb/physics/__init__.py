"""Physics of the events and jets: the one place for kinematics, jet clustering, substructure and observables.

``kinematics``    pT, eta, phi, rapidity, mass, ΔR, azimuth wrapping, Minkowski products, boosts (NumPy, torch,
                  awkward)
``jets``          anti-kT and friends with FastJet
``substructure``  N2 from FastJet-contrib's energy correlators
``observables``   jet observables of a sample and how much each shower variation shifts them
``detector``      the muon pT smearing of Nabat et al. (``book/symmetry/symmetry.ipynb``)

Explained in ``book/getting_started.ipynb`` (jets) and ``book/data/resimulation.ipynb`` (the rest).
"""
