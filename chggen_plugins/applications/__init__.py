"""Whole applications built on the layers below: the CHGGen campaign, intercalation sweeps, ordering
of partial occupancy and the cross-model symmetry benchmark."""
