"""CHGGen: host-guided crystal structure generation by RePaint inpainting, for any score model.

The folders are layers; a module imports only from its own folder or from a layer below
(tests/test_layers.py checks it):

    cli/           the `chggen` command
    applications/  campaign, intercalation, ordering, symmetry benchmark
    runs/          configs, shards, results store, Dask executor, tables and figures
    api.py         inpaint / generate / sample_tasks: the Python API     datasets/  training data
    evaluation/    relaxation, symmetry, matching, stability, coordination, voltage  models/  analytic
    structures/    crystal I/O, batches, hosts, Wyckoff placement, cells, prototypes, systems
    sampling/      the one sampler (tensors only)
    contract/      protocol, hookspecs, registry, safe loading, devices, provenance
    files.py       output paths checked before the work, files written whole
    seeds.py       the seed range, its check, and drawing one
    errors.py, lazy.py, allocator.py
"""

import os

# OpenBLAS threads only slow the many tiny 3x3 products of sampling and relaxation (CHGNet cell
# relaxation ran 6x faster with 1). It must be set before numpy loads; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from chggen_plugins.allocator import keep_freed_memory  # noqa: E402
from chggen_plugins.lazy import lazy_exports  # noqa: E402

keep_freed_memory()  # torch's freed tensors stay mapped between score calls (allocator.py says why)

# Imported on first use: the CLI and the plugin registry import this package without needing torch.
_EXPORTS = {"ChggenError": ".errors", "CrystalBatch": ".contract.protocol", "InpaintTask": ".structures.batch",
            "LoadedRelaxer": ".contract.registry", "ModelSpec": ".contract.hookspecs",
            "NoiseProcess": ".contract.protocol", "RelaxerSpec": ".contract.hookspecs",
            "ScoreModel": ".contract.protocol", "generate": ".api", "hookimpl": ".contract.hookspecs",
            "inpaint": ".api", "installed_models": ".contract.registry",
            "installed_relaxers": ".contract.registry", "intercalate": ".applications.intercalation",
            "load_model": ".contract.registry", "load_relaxer": ".contract.registry",
            "order": ".applications.ordering", "sample_tasks": ".api"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"
