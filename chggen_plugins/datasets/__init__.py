"""Training data: read datasets users have (`read_dataset`) and build the project's own (`build_dataset`)."""

from chggen_plugins.lazy import lazy_exports

# Imported on first use: the builder brings PyXtal, CHGNet and pymatgen's AFLOW library (seconds).
_EXPORTS = {"BuildSummary": ".build", "build_dataset": ".build", "Record": ".readers",
            "read_dataset": ".readers", "DEFAULT_SYSTEMS": "chggen_plugins.structures.systems",
            "energy_above_lowest": ".selection", "within_energy_window": ".selection"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
