"""A DiffCSP run folder: which checkpoint file, and the hyperparameters that shape the network.

Layout written by DiffCSP's training script: `hparams.yaml` (the hydra config, interpolations left
unresolved), one or more `epoch=E-step=S.ckpt`, and `lattice_scaler.pt` (a data scaler the sampler
does not need). `--model-source` may name the folder or one `.ckpt` inside it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chggen_plugins.errors import ChggenError, first_line

from .network import CSPNetConfig

_EPOCH_STEP = re.compile(r"epoch=(\d+)-step=(\d+)")
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")

# DiffCSP's recommended Langevin step_lr per task and dataset (its scripts/eval_utils.py).
RECOMMENDED_STEP_LR = {
    "csp": {"perov_5": 5e-7, "carbon_24": 5e-6, "mp_20": 1e-5, "mpts_52": 1e-5},
    "gen": {"perov_5": 1e-6, "carbon_24": 1e-5, "mp_20": 5e-6},
}
DEFAULT_STEP_LR = 1e-5


@dataclass(frozen=True)
class RunSettings:
    """Everything chggen takes from a run folder besides the weights."""

    checkpoint: Path
    network: CSPNetConfig
    sigma_begin: float        # the corrector's step is step_lr * (sigma_t / sigma_begin)^2
    dataset: str              # e.g. "mp_20" (from data.root_path), "" if not recorded
    max_atoms_trained: int | None  # data.max_atoms: the largest crystal in training
    trained_on_clean_lattice: bool  # cost_lattice == 0: the network always saw the true lattice

    @property
    def task(self) -> str:
        return "gen" if self.network.predict_types else "csp"

    def default_step_lr(self) -> float:
        return RECOMMENDED_STEP_LR[self.task].get(self.dataset, DEFAULT_STEP_LR)


def find_checkpoint(source: Path) -> tuple[Path, Path]:
    """(checkpoint file, hparams.yaml) for a run folder or a .ckpt path; the newest epoch/step wins."""
    if source.is_file():
        checkpoint, folder = source, source.parent
    elif source.is_dir():
        folder = source
        found = sorted(source.glob("*.ckpt"))
        if not found:
            raise ChggenError(f"{source}: no *.ckpt file in this DiffCSP run folder")
        checkpoint = found[0]
        if len(found) > 1:
            unnamed = [path.name for path in found if not _EPOCH_STEP.search(path.name)]
            if unnamed:
                raise ChggenError(f"{source}: several checkpoints and {unnamed[0]} has no epoch=E-step=S "
                                  "in its name; pass the .ckpt file itself as --model-source")
            checkpoint = max(found, key=lambda path: tuple(map(int, _EPOCH_STEP.search(path.name).groups())))
            warnings.warn(f"{source}: {len(found)} checkpoints, using the newest, {checkpoint.name} "
                          "(pass a .ckpt file as --model-source to choose another)", stacklevel=2)
    else:
        raise ChggenError(f"{source}: no such DiffCSP run folder or checkpoint file")
    hparams = folder / "hparams.yaml"
    if not hparams.is_file():
        raise ChggenError(f"{folder}: no hparams.yaml beside the checkpoint (DiffCSP writes it into "
                          "the run folder; copy it there)")
    return checkpoint, hparams


class _Config:
    """hparams.yaml with `${a.b}` references resolved on read and errors naming the field."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.root = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ChggenError(f"{path}: not a readable YAML file ({first_line(error)})") from None
        if not isinstance(self.root, dict) or not isinstance(self.root.get("model"), dict):
            raise ChggenError(f"{path}: no 'model' section; is this a DiffCSP hparams.yaml?")

    def get(self, key: str, kind: type, default: Any = ..., _seen: tuple[str, ...] = ()) -> Any:
        node: Any = self.root
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not ...:
                    return default
                raise ChggenError(f"{self.path}: missing field {key}")
            node = node[part]
        reference = _REFERENCE.match(node) if isinstance(node, str) else None
        if reference:
            if reference.group(1) in _seen:
                raise ChggenError(f"{self.path}: field {key} refers to itself")
            return self.get(reference.group(1), kind, default, _seen + (key,))
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            raise ChggenError(f"{self.path}: field {key} should be {kind.__name__}, got {node!r}")
        return node


def read_run(source: Path) -> RunSettings:
    """Locate the checkpoint and read the network's shape and sampler constants from hparams.yaml."""
    checkpoint, path = find_checkpoint(source)
    config = _Config(path)
    target = config.get("model._target_", str)
    if target.endswith("diffusion_w_type.CSPDiffusion"):
        predict_types = True
    elif target.endswith("diffusion.CSPDiffusion"):
        predict_types = False
    else:
        raise ChggenError(f"{path}: model._target_ {target!r} is neither DiffCSP's CSP model "
                          "(diffusion.CSPDiffusion) nor its de novo model (diffusion_w_type.CSPDiffusion)")
    if config.get("model.cost_coord", float) < 1e-5:
        raise ChggenError(f"{path}: model.cost_coord is 0: this network never learned to denoise positions")
    edge_style = config.get("model.decoder.edge_style", str)
    if edge_style != "fc":
        raise ChggenError(f"{path}: model.decoder.edge_style {edge_style!r} is not supported (only 'fc', "
                          "the complete graph of the published models)")
    distance = config.get("model.decoder.dis_emb", str, "sin")
    if distance not in ("sin", "none"):
        raise ChggenError(f"{path}: model.decoder.dis_emb {distance!r} is not 'sin' or 'none'")
    activation = config.get("model.decoder.act_fn", str, "silu")
    if activation != "silu":
        raise ChggenError(f"{path}: model.decoder.act_fn {activation!r} is not supported (only 'silu')")
    if config.get("model.latent_dim", int) != 0:
        raise ChggenError(f"{path}: model.latent_dim is not 0; DiffCSP's sampler feeds no latent vector")
    timesteps = config.get("model.sigma_scheduler.timesteps", int)
    if config.get("model.beta_scheduler.timesteps", int) != timesteps:
        raise ChggenError(f"{path}: beta_scheduler and sigma_scheduler disagree on timesteps")
    network = CSPNetConfig(
        hidden_dim=config.get("model.decoder.hidden_dim", int),
        num_layers=config.get("model.decoder.num_layers", int),
        num_freqs=config.get("model.decoder.num_freqs", int) if distance == "sin" else 0,
        time_dim=config.get("model.time_dim", int),
        max_atoms=config.get("model.decoder.max_atoms", int),
        timesteps=timesteps,
        layer_norm=config.get("model.decoder.ln", bool, False),
        gram_lattice=config.get("model.decoder.ip", bool, True),
        sinusoid_edges=distance == "sin",
        predict_types=predict_types)
    root_path = config.get("data.root_path", str, "")
    return RunSettings(
        checkpoint=checkpoint,
        network=network,
        sigma_begin=config.get("model.sigma_scheduler.sigma_begin", float),
        dataset=root_path.rstrip("/").rsplit("/", 1)[-1],
        max_atoms_trained=config.get("data.max_atoms", int, None),
        trained_on_clean_lattice=config.get("model.cost_lattice", float) < 1e-5)
