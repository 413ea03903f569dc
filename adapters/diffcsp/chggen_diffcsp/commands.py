"""`chggen train-diffcsp`: DiffCSP's CSP objective on a chggen dataset, written as a DiffCSP run folder.

Contributed through the chggen_add_commands hook. Building the parser imports only the settings
dataclass: torch and the training code are imported when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chggen_plugins.cli.options import HelpFormatter

from .settings import DiffCSPTrainSettings


def add_train_command(commands: argparse._SubParsersAction) -> None:
    defaults = DiffCSPTrainSettings()
    parser = commands.add_parser(
        "train-diffcsp", help="train a DiffCSP CSPNet (CSP task) on a structure dataset",
        description="DiffCSP's crystal-structure-prediction objective (wrapped-normal score matching on "
                    "fractional coordinates, cosine DDPM on the lattice, species given) on the native "
                    "model's content-hash split. Writes a DiffCSP run folder (hparams.yaml + "
                    "epoch=E-step=S.ckpt, the best by validation loss) that `--model diffcsp "
                    "--model-source OUT` loads; resumes when OUT holds a run of this command.",
        epilog="Example:\n  chggen train-diffcsp data/dataset --out runs/diffcsp --energy-window 0.2",
        formatter_class=HelpFormatter)
    parser.add_argument("data", type=Path, help="dataset: extxyz, ase.db, CDVAE-style CSV, CIF or a folder")
    parser.add_argument("--out", type=Path, required=True, help="run folder (created; resumed if it holds a run)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps (cosine decay over them)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="crystals per step")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate, help="peak Adam learning rate")
    parser.add_argument("--hidden", type=int, default=defaults.hidden_dim, help="CSPNet hidden size")
    parser.add_argument("--layers", type=int, default=defaults.num_layers, help="CSPNet layers")
    parser.add_argument("--freqs", type=int, default=defaults.num_freqs,
                        help="Fourier frequencies of the fractional displacement")
    parser.add_argument("--max-atoms", type=int, default=defaults.max_atoms,
                        help="leave out larger crystals (the complete graph costs atoms squared)")
    parser.add_argument("--energy-window", type=float, default=None, metavar="EV_PER_ATOM",
                        help="train only on structures at most this far above their formula's lowest "
                             "energy per atom; not given: every structure")
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                        help="share held out, chosen by content hash (the same crystals as every backend)")
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every,
                        help="steps between validation, log.csv rows and checkpoints")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="initial weights and draws")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> None:
    import torch

    from chggen_plugins.datasets import read_dataset, within_energy_window
    from chggen_plugins.errors import ChggenError

    from .train import train

    out: Path = args.out
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "resume.pt").is_file())):
        raise ChggenError(f"--out {out}: exists and is not a run of chggen train-diffcsp (no resume.pt); "
                          "choose a new folder")
    for name, value in (("--steps", args.steps), ("--batch-size", args.batch_size), ("--hidden", args.hidden),
                        ("--layers", args.layers), ("--freqs", args.freqs), ("--max-atoms", args.max_atoms),
                        ("--eval-every", args.eval_every)):
        if value < 1:
            raise ChggenError(f"{name} {value}: must be at least 1")
    if not 0 < args.val_fraction < 1 or not args.lr > 0:
        raise ChggenError(f"--val-fraction {args.val_fraction} must lie in (0, 1) and --lr {args.lr} be > 0")
    records = read_dataset(args.data)
    read = len(records)
    if args.energy_window is not None:
        records = within_energy_window(records, args.energy_window)
    settings = DiffCSPTrainSettings(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                                    val_fraction=args.val_fraction, eval_every=args.eval_every, seed=args.seed,
                                    max_atoms=args.max_atoms, hidden_dim=args.hidden, num_layers=args.layers,
                                    num_freqs=args.freqs, energy_window=args.energy_window)
    print(f"{len(records)} structures of {read} from {args.data}; torch threads {torch.get_num_threads()}")
    train([record.structure for record in records], out, settings, data=str(args.data), progress=not args.quiet)
    print(f"DiffCSP run in {out}: use it with --model diffcsp --model-source {out} (log: {out / 'log.csv'})")
