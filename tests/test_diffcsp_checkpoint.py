"""DiffCSP run folders as users have them: loading, choosing a checkpoint, inpainting, bad input.

The .ckpt files here are written the way pytorch-lightning 1.3.8 writes them: weights beside training
callbacks keyed by their classes and omegaconf hyperparameters. Those classes are stand-ins registered
under the real module paths only while saving, so the loader meets classes it cannot import.
"""

import sys
import types
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml
from pymatgen.core import Element, Structure

from chggen_diffcsp import CSPNetConfig, DiffCSPScoreModel, load_checkpoint
from chggen_plugins import ChggenError, inpaint, load_model
from chggen_plugins.cli import main
from chggen_plugins.contract.safe_load import StandIn
from chggen_plugins.structures.batch import structures_to_batch

SI_HOST = Path(__file__).parents[1] / "examples" / "si_host.cif"
TINY = CSPNetConfig(hidden_dim=16, num_layers=2, num_freqs=4, time_dim=8, timesteps=10)
LIGHTNING_CLASSES = {
    "pytorch_lightning.callbacks.model_checkpoint": ("ModelCheckpoint", object),
    "pytorch_lightning.callbacks.early_stopping": ("EarlyStopping", object),
    "pytorch_lightning.utilities.parsing": ("AttributeDict", dict),
    "omegaconf.dictconfig": ("DictConfig", object),
    "omegaconf.base": ("ContainerMetadata", object),
}


@contextmanager
def foreign_classes():
    """Classes under Lightning's and omegaconf's module paths, present only inside the block."""
    saved = {name: module for name, module in sys.modules.items()
             if name.split(".")[0] in ("pytorch_lightning", "omegaconf")}
    classes = {}
    try:
        for module_name, (class_name, base) in LIGHTNING_CLASSES.items():
            parts = module_name.split(".")
            for depth in range(1, len(parts) + 1):
                name = ".".join(parts[:depth])
                if not isinstance(sys.modules.get(name), types.ModuleType) or name in saved:
                    sys.modules[name] = types.ModuleType(name)
            cls = type(class_name, (base,), {"__module__": module_name})
            setattr(sys.modules[module_name], class_name, cls)
            classes[class_name] = cls
        yield classes
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] in ("pytorch_lightning", "omegaconf")]:
            del sys.modules[name]
        sys.modules.update(saved)


def hparams(config: CSPNetConfig, **model_fields) -> dict:
    """hparams.yaml as DiffCSP's training script writes it (hydra config, references unresolved)."""
    target = "diffusion_w_type" if config.predict_types else "diffusion"
    model = {
        "decoder": {"_target_": "diffcsp.pl_modules.cspnet.CSPNet", "hidden_dim": config.hidden_dim,
                    "latent_dim": 0, "max_atoms": config.max_atoms, "num_layers": config.num_layers,
                    "act_fn": "silu", "dis_emb": "sin", "num_freqs": config.num_freqs, "edge_style": "fc",
                    "max_neighbors": "${model.max_neighbors}", "cutoff": "${model.radius}", "ln": True,
                    "ip": True},
        "beta_scheduler": {"_target_": "diffcsp.pl_modules.diff_utils.BetaScheduler",
                           "timesteps": "${model.timesteps}", "scheduler_mode": "cosine"},
        "sigma_scheduler": {"_target_": "diffcsp.pl_modules.diff_utils.SigmaScheduler",
                            "timesteps": "${model.timesteps}", "sigma_begin": 0.005, "sigma_end": 0.5},
        "_target_": f"diffcsp.pl_modules.{target}.CSPDiffusion", "time_dim": config.time_dim,
        "latent_dim": 0, "cost_coord": 1.0, "cost_lattice": 1.0, "max_neighbors": 20, "radius": 7.0,
        "timesteps": config.timesteps}
    if config.predict_types:
        model["cost_type"] = 20.0
    model.update(model_fields)
    return {"data": {"root_path": "${oc.env:PROJECT_ROOT}/data/mp_20", "max_atoms": 20},
            "model": model, "optim": {"optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001}},
            "expname": "test", "core": {"version": "0.0.1", "tags": ["${now:%Y-%m-%d}"]}}


def write_ckpt(path: Path, state: dict, epoch: int = 9, step: int = 99) -> None:
    with foreign_classes() as cls:
        metadata = cls["ContainerMetadata"]()
        metadata.ref_type, metadata.object_type, metadata.key = object, dict, "decoder"
        decoder = cls["DictConfig"]()
        decoder.__dict__.update(_metadata=metadata, _content={"hidden_dim": 16}, _parent=None)
        torch.save({
            "epoch": epoch, "global_step": step, "pytorch-lightning_version": "1.3.8",
            "state_dict": OrderedDict((key, value.clone()) for key, value in state.items()),
            "callbacks": {cls["ModelCheckpoint"]: {"monitor": "val_loss", "best_model_score": torch.tensor(0.3),
                                                   "best_model_path": str(path), "dirpath": str(path.parent)},
                          cls["EarlyStopping"]: {"wait_count": 3, "patience": 100000}},
            "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros(3)}},
                                  "param_groups": [{"lr": 0.001, "params": [0]}]}],
            "lr_schedulers": [{"factor": 0.6, "patience": 30}],
            "hparams_name": "kwargs",
            "hyper_parameters": cls["AttributeDict"](decoder=decoder, time_dim=8),
        }, path)


def write_run(folder: Path, model: DiffCSPScoreModel, **model_fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hparams.yaml").write_text(yaml.safe_dump(hparams(model.network.config, **model_fields)))
    write_ckpt(folder / "epoch=9-step=99.ckpt", model.network.state_dict())
    torch.save({"means": torch.zeros(6), "stds": torch.ones(6)}, folder / "lattice_scaler.pt")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = DiffCSPScoreModel.untrained(TINY, seed=2)
    with torch.no_grad():
        for parameter in model.network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model, write_run(tmp_path_factory.mktemp("run") / "mp_20_csp", model)


def test_run_folder_round_trips_through_the_loader(trained, reference):
    model, folder = trained
    checkpoint = load_checkpoint(folder / "epoch=9-step=99.ckpt")
    assert all(issubclass(key, StandIn) for key in checkpoint["callbacks"])
    assert type(checkpoint["hyper_parameters"]).__module__ == "pytorch_lightning.utilities.parsing"
    loaded = load_model("diffcsp", str(folder))
    original, again = model.network.state_dict(), loaded.network.state_dict()
    assert original.keys() == again.keys() and all(torch.equal(original[k], again[k]) for k in original)
    batch = structures_to_batch([reference])
    for level in (0, 9):
        assert torch.equal(loaded.score(batch, level), model.score(batch, level))
    assert loaded.noise_process.num_levels == 10 and loaded.noise_process.step_lr == 1e-5  # mp_20 CSP
    assert "10 levels" in loaded.noise_process.describe()
    assert (loaded.trained, model.trained) == (True, False)  # global_step 99 vs random weights
    assert "99 training steps" in loaded.provenance


def test_de_novo_model_loads_with_its_type_head(tmp_path, reference):
    model = DiffCSPScoreModel.untrained(CSPNetConfig(**{**TINY.__dict__, "predict_types": True}), seed=4)
    loaded = DiffCSPScoreModel.load(write_run(tmp_path / "gen", model))
    assert len(loaded.network.state_dict()) == 76 - 60 + 20  # 76 at 6 layers; 2 layers here
    assert loaded.noise_process.step_lr == 5e-6  # DiffCSP's recommendation for mp_20 generation
    batch = structures_to_batch([reference])
    assert torch.equal(loaded.score(batch, 4), model.score(batch, 4))


def test_stored_schedule_tables_are_used_as_they_are(trained, tmp_path, reference):
    model, folder = trained
    state = model.network.state_dict()
    state["sigma_scheduler.sigmas_norm"] = state["sigma_scheduler.sigmas_norm"] * 1.69
    (tmp_path / "hparams.yaml").write_text((folder / "hparams.yaml").read_text())
    write_ckpt(tmp_path / "epoch=1-step=5.ckpt", state)
    rescaled = DiffCSPScoreModel.load(tmp_path)
    batch = structures_to_batch([reference])
    torch.testing.assert_close(rescaled.score(batch, 3), 1.3 * model.score(batch, 3))


def test_newest_checkpoint_is_chosen_and_a_file_can_be_named(trained, tmp_path):
    model, folder = trained
    (tmp_path / "hparams.yaml").write_text((folder / "hparams.yaml").read_text())
    state = model.network.state_dict()
    older = {key: torch.zeros_like(value) if key.startswith("decoder") else value for key, value in state.items()}
    write_ckpt(tmp_path / "epoch=12-step=900.ckpt", state)
    write_ckpt(tmp_path / "epoch=3-step=2000.ckpt", older)
    with pytest.warns(UserWarning, match=r"2 checkpoints, using the newest, epoch=12-step=900.ckpt"):
        newest = DiffCSPScoreModel.load(tmp_path)
    assert torch.equal(newest.network.decoder.coord_out.weight, model.network.decoder.coord_out.weight)
    chosen = DiffCSPScoreModel.load(tmp_path / "epoch=3-step=2000.ckpt")
    assert not chosen.network.decoder.coord_out.weight.any()


def test_inpainting_li_into_si_keeps_host_and_composition(trained):
    _, folder = trained
    model = load_model("diffcsp", str(folder))
    host = Structure.from_file(SI_HOST)
    samples = inpaint(host, {"Li": 3}, model, n_samples=2, seed=7, jump_length=3, resamples=2)
    again = inpaint(host, {"Li": 3}, model, n_samples=2, seed=7, jump_length=3, resamples=2)
    for sample, repeat in zip(samples, again):
        assert sample.composition.as_dict() == {"Si": 8.0, "Li": 3.0}
        assert sample.lattice == host.lattice
        assert (sample.frac_coords[:8] == host.frac_coords).all()
        assert [site.specie.symbol for site in sample][8:] == ["Li"] * 3
        assert ((sample.frac_coords >= 0) & (sample.frac_coords < 1)).all()
        assert (sample.frac_coords == repeat.frac_coords).all()
    assert abs(samples[0].frac_coords[8:] - samples[1].frac_coords[8:]).max() > 1e-3


def test_cli_inpaints_from_a_run_folder(trained, tmp_path, capsys):
    _, folder = trained
    out = tmp_path / "li_si.extxyz"
    status = main(["inpaint", str(SI_HOST), "--guest", "Li:1", "--model", "diffcsp", "--model-source",
                   str(folder), "--samples", "2", "--out", str(out), "--seed", "0", "--jump-length", "3",
                   "--resamples", "1", "-q"])
    assert status == 0 and "wrote 2 structures" in capsys.readouterr().out
    assert main(["inpaint", str(SI_HOST), "--guest", "Li:1", "--model", "diffcsp", "--model-source",
                 str(tmp_path / "nowhere"), "--out", str(out), "-q"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_bad_run_folders_are_named(trained, tmp_path):
    model, folder = trained
    with pytest.raises(ChggenError, match="no such DiffCSP run folder or checkpoint file"):
        DiffCSPScoreModel.load(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ChggenError, match=r"empty: no \*.ckpt file"):
        DiffCSPScoreModel.load(empty)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    write_ckpt(lonely / "epoch=0-step=1.ckpt", model.network.state_dict())
    with pytest.raises(ChggenError, match="lonely: no hparams.yaml"):
        DiffCSPScoreModel.load(lonely)
    (lonely / "hparams.yaml").write_text(yaml.safe_dump(hparams(TINY, decoder={"hidden_dim": 16})))
    with pytest.raises(ChggenError, match="hparams.yaml: missing field model.decoder.edge_style"):
        DiffCSPScoreModel.load(lonely)
    (lonely / "hparams.yaml").write_text(yaml.safe_dump(hparams(TINY, timesteps="ten")))
    with pytest.raises(ChggenError, match="field model.timesteps should be int, got 'ten'"):
        DiffCSPScoreModel.load(lonely)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "hparams.yaml").write_text((folder / "hparams.yaml").read_text())
    (junk / "epoch=1-step=1.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ChggenError, match="epoch=1-step=1.ckpt: not a readable torch checkpoint"):
        DiffCSPScoreModel.load(junk)


def test_checkpoint_keys_must_match_hparams(trained, tmp_path):
    model, folder = trained
    deeper = tmp_path / "deeper"
    deeper.mkdir()
    (deeper / "hparams.yaml").write_text(yaml.safe_dump(hparams(CSPNetConfig(**{**TINY.__dict__, "num_layers": 3}))))
    write_ckpt(deeper / "epoch=1-step=1.ckpt", model.network.state_dict())
    with pytest.raises(ChggenError, match=r"missing \['decoder.csp_layer_2.edge_mlp.0.weight', "
                                          r"'decoder.csp_layer_2.edge_mlp.0.bias', .*unexpected \[\]"):
        DiffCSPScoreModel.load(deeper)
    typed = tmp_path / "typed"
    typed.mkdir()
    (typed / "hparams.yaml").write_text((folder / "hparams.yaml").read_text())
    state = dict(model.network.state_dict(), **{"decoder.type_out.weight": torch.zeros(100, 16)})
    write_ckpt(typed / "epoch=1-step=1.ckpt", state)
    with pytest.raises(ChggenError, match=r"missing \[\], unexpected \['decoder.type_out.weight'\]"):
        DiffCSPScoreModel.load(typed)
    wider = tmp_path / "wider"
    wider.mkdir()
    (wider / "hparams.yaml").write_text(yaml.safe_dump(hparams(CSPNetConfig(**{**TINY.__dict__, "num_freqs": 5}))))
    write_ckpt(wider / "epoch=1-step=1.ckpt", model.network.state_dict())
    with pytest.raises(ChggenError, match=r"decoder.csp_layer_0.edge_mlp.0.weight has shape \(16, 65\) "
                                          r"in the checkpoint but \(16, 71\)"):
        DiffCSPScoreModel.load(wider)


def test_elements_outside_the_embedding_are_refused(trained, reference):
    model, _ = trained
    assert model.elements == frozenset(range(1, 101))
    host = Structure.from_file(SI_HOST)
    with pytest.raises(ChggenError, match="element\\(s\\) Md unknown to DiffCSPScoreModel"):
        inpaint(host, {Element.from_Z(101).symbol: 1}, model, n_samples=1, seed=0)
    batch = structures_to_batch([reference])
    bad = type(batch)(batch.frac_coords, batch.lattice, torch.full_like(batch.atomic_numbers, 118),
                      batch.batch, batch.fixed)
    with pytest.raises(ChggenError, match="atomic number 118 is outside this DiffCSP model's embedding"):
        model.score(bad, 0)
