"""DiffCSP checkpoints as chggen score models, without DiffCSP's training stack."""

from chggen_plugins.lazy import lazy_exports

# Imported on first use: registering the plugin (every `chggen` command) must not import torch.
_EXPORTS = {"CSPNet": ".network", "CSPNetConfig": ".network", "DiffCSPNetwork": ".network",
            "DiffCSPProcess": ".noise", "DiffCSPScoreModel": ".model", "RunSettings": ".run",
            "load_checkpoint": "chggen_plugins.contract.safe_load", "load_weights": ".model", "read_run": ".run"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
