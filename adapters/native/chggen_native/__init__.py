"""The bundled native CHGGen backend: an equivariant score network, its training, shipped weights."""

from .model import NativeScoreModel
from .network import NetworkConfig, ScoreNetwork

__all__ = ["NativeScoreModel", "NetworkConfig", "ScoreNetwork"]
