"""CHGGen: host-guided crystal structure generation by RePaint inpainting, for any score model."""

import os

# OpenBLAS threads only slow the many tiny 3x3 products of sampling and relaxation (CHGNet cell
# relaxation ran 6x faster with 1). It must be set before numpy loads; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .allocator import keep_freed_memory  # noqa: E402
from .lazy import lazy_exports  # noqa: E402

keep_freed_memory()  # torch's freed tensors stay mapped between score calls (allocator.py says why)

# Imported on first use: the CLI and the plugin registry import this package without needing torch.
_EXPORTS = {"ChggenError": ".errors", "CrystalBatch": ".protocol", "InpaintTask": ".batch",
            "NoiseProcess": ".protocol", "ScoreModel": ".protocol", "generate": ".pipeline",
            "inpaint": ".pipeline", "installed_models": ".plugins", "intercalate": ".intercalation",
            "load_model": ".plugins", "order": ".ordering",
            "sample_tasks": ".pipeline"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"
