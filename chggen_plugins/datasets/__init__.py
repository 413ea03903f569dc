"""Training data: read datasets users have (`read_dataset`) and build the project's own (`build_dataset`)."""

from .build import BuildSummary, build_dataset
from .readers import Record, read_dataset
from .systems import DEFAULT_SYSTEMS

__all__ = ["DEFAULT_SYSTEMS", "BuildSummary", "Record", "build_dataset", "read_dataset"]
