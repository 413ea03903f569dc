"""MatterGen checkpoint directories: find, check, load; and write a randomly initialised one.

A checkpoint directory is MatterGen's published layout (mattergen_base, mp_20_base, chemical_system,
...): `config.yaml` (the resolved training config) and `checkpoints/last.ckpt` (a Lightning
checkpoint). The model is built by MatterGen's own code: its config is composed by
`MatterGenCheckpointInfo`, instantiated with hydra (`DiffusionLightningModule` -> `DiffusionModule`
-> `GemNetTDenoiser`), and the weights restored with `load_state_dict(strict=True)`, the steps of
MatterGen's `load_model_diffusion`.

Neither file may run code. hydra calls whatever a `_target_` names (`os.system` too) before any
type check, and MatterGen registers an `eval` resolver for `${eval:...}` interpolations; so the config
is refused unless it has no resolver calls and every `_target_` is one of MatterGen's own model
classes (`MODEL_TARGETS`). A Lightning checkpoint pickles its config beside the weights, which
torch's `weights_only=True` refuses and a full unpickling would execute, so `last.ckpt` is read by the
core's restricted unpickler (`chggen_plugins.contract.safe_load`): tensors only, everything else inert.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from omegaconf import DictConfig, OmegaConf

from chggen_plugins.contract.safe_load import load_checkpoint
from chggen_plugins.errors import ChggenError, first_line

from .runtime import gemnet_scale_root, mattergen_module

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = Path("checkpoints") / "last.ckpt"
HUB_REPOSITORY = "microsoft/mattergen"
LAYOUT = f"a MatterGen checkpoint directory holds {CONFIG_FILE} and {CHECKPOINT_FILE}"
# Every `_target_` the lightning_module of MatterGen 1.0.3's published checkpoints and training
# configs (mattergen/conf/lightning_module, adapter) names: its model classes, and the optimizer,
# scheduler and identity scaler those configs carry. Nothing else is instantiated.
MODEL_TARGETS = frozenset({
    "mattergen.adapter.GemNetTAdapter",
    "mattergen.common.diffusion.corruption.LatticeVPSDE.from_vpsde_config",
    "mattergen.common.diffusion.corruption.NumAtomsVarianceAdjustedWrappedVESDE",
    "mattergen.common.gemnet.gemnet.GemNetT",
    "mattergen.common.gemnet.gemnet_ctrl.GemNetTCtrl",
    "mattergen.common.gemnet.layers.embedding_block.AtomEmbedding",
    "mattergen.common.loss.MaterialsLoss",
    "mattergen.common.utils.data_utils.StandardScalerTorch",
    "mattergen.denoiser.GemNetTDenoiser",
    "mattergen.diffusion.corruption.d3pm_corruption.D3PMCorruption",
    "mattergen.diffusion.corruption.multi_corruption.MultiCorruption",
    "mattergen.diffusion.d3pm.d3pm.MaskDiffusion",
    "mattergen.diffusion.d3pm.d3pm.create_discrete_diffusion_schedule",
    "mattergen.diffusion.diffusion_module.DiffusionModule",
    "mattergen.diffusion.lightning_module.DiffusionLightningModule",
    "mattergen.diffusion.model_utils.NoiseLevelEncoding",
    "mattergen.property_embeddings.ChemicalSystemMultiHotEmbedding",
    "mattergen.property_embeddings.EmbeddingVector",
    "mattergen.property_embeddings.PropertyEmbedding",
    "mattergen.property_embeddings.SetEmbeddingType",
    "mattergen.property_embeddings.SpaceGroupEmbeddingVector",
    "torch.nn.Identity",
    "torch.optim.Adam",
    "torch.optim.lr_scheduler.ReduceLROnPlateau",
})
_RESOLVER_CALL = re.compile(r"\$\{\s*[\w.\-]+\s*:")  # ${eval:...}, ${oc.env:...}; not ${a.b}


def published_names() -> tuple[str, ...]:
    """Names of the checkpoints MatterGen publishes on the Hugging Face hub."""
    classes = mattergen_module("common.utils.data_classes")
    return classes.PRETRAINED_MODEL_NAME.__args__


def resolve_source(source: str) -> Path:
    """A checkpoint directory for `source`: a local path, or a published name fetched from the hub."""
    path = Path(source).expanduser()
    if path.exists() or source not in published_names():
        return check_directory(path)
    classes = mattergen_module("common.utils.data_classes")
    try:
        return check_directory(Path(classes.MatterGenCheckpointInfo.from_hf_hub(source).model_path))
    except OSError as error:  # huggingface_hub's offline and HTTP errors are OSErrors
        raise ChggenError(
            f"could not fetch MatterGen checkpoint {source!r} from the Hugging Face hub "
            f"({type(error).__name__}); without network, download checkpoints/{source}/{CONFIG_FILE} and "
            f"checkpoints/{source}/{CHECKPOINT_FILE} from huggingface.co/{HUB_REPOSITORY} into one "
            f"folder DIR (DIR/{CONFIG_FILE}, DIR/{CHECKPOINT_FILE}) and pass --model-source DIR") from None


def check_directory(path: Path) -> Path:
    """The directory itself, if it has both files; otherwise one line naming what is missing."""
    if not path.is_dir():
        hint = f"; or one of the published names {', '.join(published_names())}" if not path.exists() else ""
        raise ChggenError(f"{path}: not a directory ({LAYOUT}{hint})")
    missing = [name for name in (CONFIG_FILE, CHECKPOINT_FILE) if not (path / name).is_file()]
    if missing:
        raise ChggenError(f"{path}: missing {' and '.join(str(name) for name in missing)} ({LAYOUT})")
    return path.resolve()


def read_config(directory: Path) -> DictConfig:
    """The training config, composed by MatterGen's own `MatterGenCheckpointInfo`."""
    classes = mattergen_module("common.utils.data_classes")
    try:
        with warnings.catch_warnings():  # hydra's "version_base not specified", raised in MatterGen
            warnings.simplefilter("ignore", UserWarning)
            config = classes.MatterGenCheckpointInfo(model_path=str(directory)).config
    except Exception as error:  # hydra / yaml parse errors have no common base
        raise ChggenError(f"{directory / CONFIG_FILE}: cannot be read as a hydra config "
                          f"({type(error).__name__}: {first_line(error)})") from None
    if "lightning_module" not in config:
        raise ChggenError(f"{directory / CONFIG_FILE}: no 'lightning_module' section, so not a "
                          "MatterGen training config")
    return config


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The weights of a Lightning checkpoint, read without running anything the pickle names."""
    with open(path, "rb") as handle:
        if handle.read(64).startswith(b"version https://git-lfs"):
            raise ChggenError(f"{path}: a Git LFS pointer, not the weights (run `git lfs pull` in the "
                              "clone, or download the file itself)")
    try:
        checkpoint = load_checkpoint(path)
    except Exception as error:  # truncated files raise RuntimeError, EOFError, UnpicklingError...
        raise ChggenError(f"{path}: not a readable torch checkpoint ({type(error).__name__}: "
                          f"{first_line(error)})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ChggenError(f"{path}: no 'state_dict' in it, so not a Lightning checkpoint")
    return checkpoint["state_dict"]


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, key, value) of every mapping entry in a plain container tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}"
        yield where, key, value
        yield from _walk(value, where)


def checked_lightning_module(config: DictConfig, where: str) -> DictConfig:
    """`config.lightning_module` resolved, once nothing in `config` calls a resolver (MatterGen's
    `eval` runs Python) and every `_target_` in it is in `MODEL_TARGETS`; else one line naming it."""
    for path, _, value in _walk(OmegaConf.to_container(config, resolve=False), "config"):
        if isinstance(value, str) and _RESOLVER_CALL.search(value):
            raise ChggenError(f"{where}: {path.removeprefix('config.')} = {value[:80]!r} calls a config "
                              "resolver, which could run code; a MatterGen checkpoint config has none")
    try:
        section = OmegaConf.to_container(config.lightning_module, resolve=True)
    except Exception as error:  # omegaconf's InterpolationResolutionError and kin
        raise ChggenError(f"{where}: lightning_module cannot be resolved ({first_line(error)})") from None
    for path, key, value in _walk(section, "lightning_module"):
        if key == "_target_" and (not isinstance(value, str) or value not in MODEL_TARGETS):
            raise ChggenError(f"{where}: {path} = {str(value)[:80]!r} is not one of MatterGen's model "
                              "classes; refusing to instantiate it (it could run code)")
    return OmegaConf.create(section)


def build_module(config: DictConfig, where: str) -> torch.nn.Module:
    """MatterGen's DiffusionLightningModule instantiated from `config.lightning_module`, checked."""
    from hydra.utils import instantiate

    section = checked_lightning_module(config, where)
    lightning = mattergen_module("diffusion.lightning_module")
    try:
        with gemnet_scale_root():
            module = instantiate(section)
    except Exception as error:  # hydra wraps every failure in InstantiationException
        raise ChggenError(f"{where}: MatterGen could not build the model from lightning_module "
                          f"({first_line(error)})") from None
    if not isinstance(module, lightning.DiffusionLightningModule):
        raise ChggenError(f"{where}: lightning_module builds {type(module).__name__}, not MatterGen's "
                          "DiffusionLightningModule")
    return module


def load_module(directory: Path, device: str = "cpu") -> tuple[torch.nn.Module, DictConfig]:
    """(DiffusionLightningModule in eval mode with the checkpoint's weights, its config)."""
    config = read_config(directory)
    with torch.random.fork_rng(devices=[]):  # initial weights are drawn, then overwritten: leave
        module = build_module(config, str(directory / CONFIG_FILE))  # the caller's random state alone
    state = read_state_dict(directory / CHECKPOINT_FILE)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), str(error))
        raise ChggenError(f"{directory / CHECKPOINT_FILE}: weights do not match {CONFIG_FILE} "
                          f"({detail[:300]})") from None
    return module.to(device).eval(), config


def untrained_config(hidden_dim: int = 512, num_blocks: int = 4, discrete_steps: int = 1000,
                     cutoff: float = 7.0, max_neighbors: int = 50,
                     average_density: float = 0.05771451654022283) -> dict[str, Any]:
    """The `lightning_module` config of MatterGen's unconditional model (mattergen_base's
    architecture at the defaults: GemNet-T, hidden 512, 4 blocks, cutoff 7 A, 50 neighbours; wrapped
    VE positions sigma 0.01 -> 5; lattice VP SDE to density 0.0577 atoms/A^3; D3PM masked species),
    with the sizes (and graph cutoff / neighbour cap) as arguments so tests can build a small model
    of the same classes."""
    return {"lightning_module": {
        "_target_": "mattergen.diffusion.lightning_module.DiffusionLightningModule",
        "diffusion_module": {
            "_target_": "mattergen.diffusion.diffusion_module.DiffusionModule",
            "model": {
                "_target_": "mattergen.denoiser.GemNetTDenoiser",
                "hidden_dim": hidden_dim, "denoise_atom_types": True, "atom_type_diffusion": "mask",
                "property_embeddings": {}, "property_embeddings_adapt": {},
                "gemnet": {
                    "_target_": "mattergen.common.gemnet.gemnet.GemNetT",
                    "num_targets": 1, "latent_dim": hidden_dim,
                    "atom_embedding": {
                        "_target_": "mattergen.common.gemnet.layers.embedding_block.AtomEmbedding",
                        "emb_size": hidden_dim, "with_mask_type": True},
                    "emb_size_atom": hidden_dim, "emb_size_edge": hidden_dim,
                    "max_neighbors": max_neighbors, "max_cell_images_per_dim": 5,
                    "cutoff": cutoff,
                    "num_blocks": num_blocks, "regress_stress": True, "otf_graph": True}},
            "corruption": {
                "_target_": "mattergen.diffusion.corruption.multi_corruption.MultiCorruption",
                "sdes": {
                    "pos": {"_target_": "mattergen.common.diffusion.corruption."
                                        "NumAtomsVarianceAdjustedWrappedVESDE",
                            "wrapping_boundary": 1.0, "sigma_max": 5.0, "limit_info_key": "num_atoms"},
                    "cell": {"_target_": "mattergen.common.diffusion.corruption.LatticeVPSDE."
                                         "from_vpsde_config",
                             "vpsde_config": {"beta_min": 0.1, "beta_max": 20,
                                              "limit_density": average_density,
                                              "limit_var_scaling_constant": 0.25}}},
                "discrete_corruptions": {"atomic_numbers": {
                    "_target_": "mattergen.diffusion.corruption.d3pm_corruption.D3PMCorruption",
                    "offset": 1,
                    "d3pm": {"_target_": "mattergen.diffusion.d3pm.d3pm.MaskDiffusion", "dim": 101,
                             "schedule": {"_target_": "mattergen.diffusion.d3pm.d3pm."
                                                      "create_discrete_diffusion_schedule",
                                          "kind": "standard", "num_steps": discrete_steps}}}}},
            "loss_fn": {"_target_": "mattergen.common.loss.MaterialsLoss", "reduce": "sum",
                        "include_pos": True, "include_cell": True, "include_atomic_numbers": True,
                        "d3pm_hybrid_lambda": 0.01,
                        "weights": {"cell": 1.0, "pos": 0.1, "atomic_numbers": 1.0}},
            "pre_corruption_fn": {"_target_": "mattergen.property_embeddings.SetEmbeddingType",
                                  "p_unconditional": 0.2, "dropout_fields_iid": False}}}}


def write_untrained_checkpoint(directory: Path, hidden_dim: int = 512, num_blocks: int = 4,
                               discrete_steps: int = 1000, cutoff: float = 7.0, max_neighbors: int = 50,
                               seed: int = 0) -> torch.nn.Module:
    """A randomly initialised MatterGen in the published layout (for tests and timing), built by
    MatterGen's classes. Returns the module that was saved.

    The checkpoint pickles its config as an OmegaConf object, as a Lightning run does, so torch's
    `weights_only=True` refuses it as it refuses a real checkpoint.
    """
    directory = Path(directory)
    config = OmegaConf.create(untrained_config(hidden_dim, num_blocks, discrete_steps, cutoff,
                                                max_neighbors))
    torch.manual_seed(seed)
    module = build_module(config, "untrained config").eval()
    (directory / CHECKPOINT_FILE).parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, directory / CONFIG_FILE)
    torch.save({"state_dict": module.state_dict(), "config": config, "epoch": 0, "global_step": 0},
               directory / CHECKPOINT_FILE)
    return module
