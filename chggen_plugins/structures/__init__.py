"""Crystals in and out (files, pymatgen, ASE), the batch the sampler sees, hosts and guest selection,
Wyckoff placement, random cells, prototypes and chemical systems."""
