"""Validation loss of native weights per chemical system, on the training split's own held-out
structures (issue 26: the model card gives the figure of every system, old and new).

The structures are those `chggen train` would validate on: within `--energy-window` eV/atom of their
formula's lowest (as the weights were trained) and held out by the content hash at the weights'
own validation fraction, so none of the compared weights trained on them. Each system's loss is
`chggen_native.train.validation_loss` on its structures alone (8 fixed noise levels, fixed guest
sets for host-conditioned weights): comparable between weights of one kind, not between systems of
different sizes. Weights that do not know a system's elements get no figure for it.

Run: python benchmarks/native_validation_by_system.py data/dataset --weights all=runs/native_all/best.pt \
         [--weights old=adapters/native/chggen_native/weights/native_conditional.pt]
Writes benchmarks/results/native_validation_by_system.json and .csv (or NAME.*): one row per weights
and system.
"""

import common  # first: it pins OpenBLAS threads before numpy loads

from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

from native_inpainting_quality import parse_weights  # noqa: E402

from chggen_native import NativeScoreModel  # noqa: E402
from chggen_native.train import validation_loss  # noqa: E402
from chggen_plugins.datasets.split import held_out  # noqa: E402
from chggen_plugins.datasets import read_dataset, within_energy_window  # noqa: E402


def main() -> None:
    parser = common.argument_parser(__doc__, "native_validation_by_system")
    parser.add_argument("data", type=Path)
    parser.add_argument("--weights", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--energy-window", type=float, default=0.2,
                        help="eV/atom above the formula's lowest (default 0.2, as the shipped weights trained)")
    args = parser.parse_args()
    run_settings = common.start(args)
    records = within_energy_window(read_dataset(args.data), args.energy_window)
    rows = []
    for label, path, _ in map(parse_weights, args.weights):
        model = NativeScoreModel.load(Path(path))
        val_fraction = model.metadata.get("train_settings", {}).get("val_fraction", 0.1)
        systems: dict[str, list] = defaultdict(list)
        for record in records:
            if held_out(record.structure, val_fraction) and set(record.structure.atomic_numbers) <= model.elements:
                systems[str(record.info.get("system", "unlabelled"))].append(record.structure)
        for system, structures in sorted(systems.items()):
            loss = validation_loss(model, structures)
            rows.append({"method": label, "system": system, "held_out": len(structures), "val_loss": round(loss, 4)})
            print(f"{label:<10} {system:<10} {len(structures):>4} {loss:.4f}", flush=True)
        everything = [s for structures in systems.values() for s in structures]
        loss = validation_loss(model, everything)
        rows.append({"method": label, "system": "all known", "held_out": len(everything), "val_loss": round(loss, 4)})
        print(f"{label:<10} {'all known':<10} {len(everything):>4} {loss:.4f}", flush=True)
    common.write_results(args.name, run_settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
