"""DiffCSP checkpoints as chggen score models, without DiffCSP's training stack."""

from .model import DiffCSPScoreModel, load_weights
from .network import CSPNet, CSPNetConfig, DiffCSPNetwork
from .noise import DiffCSPProcess
from .run import RunSettings, read_run
from .unpickle import load_checkpoint

__all__ = ["CSPNet", "CSPNetConfig", "DiffCSPNetwork", "DiffCSPProcess", "DiffCSPScoreModel",
           "RunSettings", "load_checkpoint", "load_weights", "read_run"]
