"""The bundled native CHGGen backend: an equivariant score network, its training, shipped weights."""

from chggen_plugins.lazy import lazy_exports

# Imported on first use: registering the plugin (every `chggen` command) must not import torch.
_EXPORTS = {"NativeScoreModel": ".model", "NetworkConfig": ".settings", "ScoreNetwork": ".network"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
