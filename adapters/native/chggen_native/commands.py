"""`chggen train`: the native backend's command, contributed through the chggen_add_commands hook.

Adding the command imports only the settings: every `chggen` command builds the parser, so torch and
the training code are imported when `chggen train` runs.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from chggen_plugins.cli.options import HelpFormatter

from .settings import NetworkConfig, TrainSettings


def add_train_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="train the native score network on a structure dataset",
        description="Denoising score matching of the native equivariant network over the sampler's "
                    "noise ladder. Resumes when OUT already holds a run; writes OUT/best.pt (use it "
                    "as --model-source for the model 'native'), OUT/log.csv as it goes.",
        epilog="Example:\n  chggen train data/dataset --out runs/native --steps 20000",
        formatter_class=HelpFormatter)
    parser.add_argument("data", type=Path, help="dataset: extxyz, ase.db, CDVAE-style CSV, CIF or a folder")
    parser.add_argument("--out", type=Path, required=True, help="run directory (created; resumed if present)")
    defaults, network = TrainSettings(), NetworkConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help="optimizer steps (cosine learning-rate decay over them)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="instead of --steps: time a few steps and a validation on this machine now, "
                             "then train as many steps as fit in SECONDS, validating 5 times (--eval-every "
                             "is set to match); a new run only")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="crystals per step")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate, help="peak AdamW learning rate")
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                        help="share of structures held out (chosen by content hash, stable as data grows)")
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every,
                        help="steps between validation, log.csv rows and checkpoints")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="initial weights and batch draws")
    parser.add_argument("--features", type=int, default=network.features, help="channels per atom")
    parser.add_argument("--layers", type=int, default=network.layers, help="message-passing layers")
    parser.add_argument("--cutoff", type=float, default=network.cutoff, help="graph radius, Angstrom")
    parser.add_argument("--conditional", action="store_true",
                        help="host-conditioned: each crystal draws a guest set (one species, 10-60%% of the "
                             "atoms, the atoms around a site, or all) and only guests are noised; the network "
                             "embeds a host flag and the sampler keeps hosts exact (RePaint r = 1 by default). "
                             "A resumed run keeps what its checkpoint is")
    parser.add_argument("--energy-window", type=float, default=None, metavar="EV_PER_ATOM",
                        help="train only on structures at most this far above the lowest energy per "
                             "atom found for their formula; not given: every structure")
    parser.add_argument("--levels", type=int, default=None,
                        help="noise levels the saved weights sample on by default (training always uses the "
                             "full 200-level ladder over the network's sigma range); default 200")
    parser.add_argument("--correctors", type=int, default=None,
                        help="Langevin corrector steps per level the saved weights sample with by default; default 5")
    parser.add_argument("--snr", type=float, default=None,
                        help="signal-to-noise ratio of those corrector steps (step 2 (snr sigma)^2); default 0.4")
    parser.add_argument("--supercell-atoms", type=int, default=defaults.supercell_atoms, metavar="N",
                        help="draw training crystals of fewer atoms as supercells of at least N atoms "
                             "(copies noised independently, as in a large host); 0: never")
    parser.add_argument("--supercell-fraction", type=float, default=defaults.supercell_fraction,
                        help="share of the draws of such crystals made as supercells")
    parser.add_argument("--device", default=defaults.device,
                        help="torch device to train on, e.g. cuda or cuda:1 (weights are saved for CPU)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    import torch

    from chggen_plugins.contract.devices import check_device
    from chggen_plugins.datasets import read_dataset, within_energy_window
    from chggen_plugins.datasets.split import split_dataset
    from chggen_plugins.errors import ChggenError

    from .model import NativeScoreModel
    from .train import steps_within, train, validation_loss

    device = check_device(args.device, "--device")
    records = read_dataset(args.data)
    read = len(records)
    if args.energy_window is not None:
        records = within_energy_window(records, args.energy_window)
    structures = [record.structure for record in records]
    systems = Counter(str(record.info.get("system", "unlabelled")) for record in records)
    recipe = {"data": str(args.data), "structures": len(structures), "systems": dict(systems),
              "read": read, "energy_window": args.energy_window}
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                             val_fraction=args.val_fraction, eval_every=args.eval_every, seed=args.seed,
                             device=device, supercell_atoms=args.supercell_atoms,
                             supercell_fraction=args.supercell_fraction)
    config = NetworkConfig(features=args.features, layers=args.layers, cutoff=args.cutoff,
                           host_flag=args.conditional)
    if args.time_budget is not None:
        if (args.out / "resume.pt").is_file():
            raise ChggenError(f"--time-budget: {args.out} holds a run to resume; resume it with --steps")
        if not args.time_budget > 0:
            raise ChggenError(f"--time-budget: {args.time_budget:g} must be > 0 seconds")
        steps = steps_within(args.time_budget, structures, settings, config)
        settings = replace(settings, steps=steps, eval_every=max(1, steps // 5))
        print(f"--time-budget {args.time_budget:g} s: {steps} steps, validating every {settings.eval_every}")
    window = "" if args.energy_window is None else \
        f" (of {read}, within {args.energy_window} eV/atom of their formula's lowest)"
    print(f"{len(structures)} structures{window} from {args.data}: {dict(systems)}; device {device}, "
          f"torch threads {torch.get_num_threads()}")
    model = train(structures, args.out, settings, config, recipe, progress=not args.quiet,
                  sample_levels=args.levels, sample_correctors=args.correctors,
                  sample_snr=args.snr)
    _, val = split_dataset(structures, settings.val_fraction)
    untrained = NativeScoreModel.untrained(model.elements, model.network.config, seed=settings.seed)
    print(f"best validation loss {model.metadata['val_loss']:.4f} at step {model.metadata['step']} "
          f"(untrained network on the same {len(val)} held-out structures: "
          f"{validation_loss(untrained, val):.4f}); weights: {args.out / 'best.pt'}")
