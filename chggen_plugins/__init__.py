"""CHGGen: host-guided crystal structure generation by RePaint inpainting, for any score model."""

import os

# OpenBLAS threads only slow the many tiny 3x3 products of sampling and relaxation (CHGNet cell
# relaxation ran 6x faster with 1). It must be set before numpy loads; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .batch import InpaintTask  # noqa: E402
from .errors import ChggenError  # noqa: E402
from .pipeline import generate, inpaint, sample_tasks  # noqa: E402
from .plugins import installed_models, load_model  # noqa: E402
from .protocol import CrystalBatch, NoiseProcess, ScoreModel  # noqa: E402

__all__ = ["ChggenError", "CrystalBatch", "InpaintTask", "NoiseProcess", "ScoreModel", "generate",
           "inpaint", "installed_models", "load_model", "sample_tasks"]
__version__ = "0.1.0"
