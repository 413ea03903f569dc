"""Plain torch or e3nn for the native score network: CPU cost side by side in one run (issue).

(a) the native ScoreNetwork (chggen_native.network, PaiNN-style, plain torch) at its default
    config: 64 scalar + 64 vector channels per atom, 3 layers;
(b) a NequIP-style e3nn network written here: node irreps e.g. 32x0e+32x1o, spherical harmonics
    l <= 2 of the edge directions, a tensor product (uvu paths) whose per-edge weights come from an
    MLP of the same radial basis, gate nonlinearity, residual updates, the same noise embedding,
    the same cutoff; one 1o vector per atom out (the output of sigma * score, like the native net).

Both take the same inputs and build the same periodic radius graph (chggen_native.graph) inside
forward, so each call costs graph + network; the graph alone is timed too. Batches are Li-Si-like
random crystals of 12 and 24 atoms in 5-7 A cells. Forward is timed under no_grad (sampling);
forward+backward is an MSE-style loss back to the weights (training). Each figure is the median of
--repeats calls after --warmup calls; the whole measurement is repeated --rounds times,
interleaving the models, and the spread across rounds is printed (the machine may be shared).

e3nn is not a project dependency: pip install e3nn (it leaves torch alone).
Run: python benchmarks/native_e3nn_vs_torch.py [--threads 1] [--rounds 3] [--variants l1,l2]
Writes benchmarks/results/native_e3nn_vs_torch.json and .csv: the models (`table` = models) and one
row per batch, pass and model (`table` = timings).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads; this comparison pins OpenMP too

import common  # noqa: E402  (first of the rest: it pins OpenBLAS threads before numpy loads)

import copy  # noqa: E402
import dataclasses  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

try:
    from e3nn import o3  # noqa: E402
    from e3nn.nn import FullyConnectedNet, Gate  # noqa: E402
except ImportError:
    sys.exit("e3nn is not installed: `pip install e3nn` to run this benchmark (not a project dependency)")

from chggen_native.graph import radius_graph  # noqa: E402
from chggen_native.network import NetworkConfig, NoiseEmbedding, RadialBasis, ScoreNetwork  # noqa: E402

LI, SI = 3, 14

# name -> (node irreps, spherical-harmonic lmax, radial MLP hidden width)
VARIANTS = {
    "l1": ("32x0e+32x1o", 2, 64),
    "l2": ("32x0e+32x1o+16x2e", 2, 64),
    "wide": ("64x0e+64x1o", 2, 64),   # same channel count as the native net's default
}


# ----------------------------------------------------------------------------------------------
# The e3nn network
# ----------------------------------------------------------------------------------------------

class E3Interaction(nn.Module):
    """NequIP-style block: linear, edge tensor product with radial weights, sum, linear, gate."""

    def __init__(self, hidden: o3.Irreps, sh: o3.Irreps, radial_basis: int, radial_hidden: int,
                 noise_width: int, neighbour_norm: float) -> None:
        super().__init__()
        self.scalars = hidden.count("0e")
        self.norm = neighbour_norm
        self.noise = nn.Linear(noise_width, self.scalars)
        self.up = o3.Linear(hidden, hidden)

        # every path node irrep x edge harmonic -> an irrep the node features carry, one weight per channel
        wanted = {ir for _, ir in hidden}
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(hidden):
            for j, (_, ir_edge) in enumerate(sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in wanted:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        mid = o3.Irreps(mid)
        mid_sorted, order, _ = mid.sort()
        instructions = [(i, j, order[k], mode, train) for i, j, k, mode, train in instructions]
        self.tp = o3.TensorProduct(hidden, sh, mid_sorted, instructions,
                                   shared_weights=False, internal_weights=False)
        self.radial = FullyConnectedNet([radial_basis, radial_hidden, self.tp.weight_numel],
                                        torch.nn.functional.silu)

        gated = o3.Irreps([(mul, ir) for mul, ir in hidden if ir.l > 0])
        self.gate = Gate(o3.Irreps(f"{self.scalars}x0e"), [torch.nn.functional.silu],
                         o3.Irreps(f"{gated.num_irreps}x0e"), [torch.sigmoid], gated)
        self.down = o3.Linear(mid_sorted.simplify(), self.gate.irreps_in)

    def forward(self, x: Tensor, noise: Tensor, source: Tensor, target: Tensor, radial: Tensor,
                harmonics: Tensor) -> Tensor:
        x = torch.cat([x[:, :self.scalars] + self.noise(noise), x[:, self.scalars:]], dim=1)
        h = self.up(x)
        messages = self.tp(h[source], harmonics, self.radial(radial))
        summed = torch.zeros(len(x), messages.shape[1], dtype=x.dtype, device=x.device)
        summed = summed.index_add_(0, target, messages) / self.norm
        return x + self.gate(self.down(summed))


class E3ScoreNetwork(nn.Module):
    """Same inputs and output as the native ScoreNetwork: [N, 3] sigma * score."""

    def __init__(self, hidden: str, lmax: int, radial_hidden: int, layers: int = 3,
                 config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        self.hidden = o3.Irreps(hidden)
        if self.hidden != self.hidden.sort().irreps.simplify() or self.hidden[0].ir != o3.Irrep("0e"):
            raise ValueError(f"node irreps {hidden} must be sorted and simplified, scalars first")
        self.scalars = self.hidden.count("0e")
        self.config = config
        self.sh = o3.Irreps.spherical_harmonics(lmax)
        self.embedding = nn.Embedding(config.max_z + 1, self.scalars)
        self.noise_embedding = NoiseEmbedding(dataclasses.replace(config, features=self.scalars))
        self.radial = RadialBasis(config.radial_basis, config.cutoff)
        self.interactions = nn.ModuleList(
            E3Interaction(self.hidden, self.sh, config.radial_basis, radial_hidden, self.scalars,
                          config.neighbour_norm) for _ in range(layers))
        self.out = o3.Linear(self.hidden, o3.Irreps("1x1o"))  # e3nn's 1o basis is (x, y, z)

    def forward(self, frac: Tensor, lattice: Tensor, atomic_numbers: Tensor, crystal: Tensor,
                sigma: Tensor) -> Tensor:
        edges = radius_graph(frac, lattice, crystal, self.config.cutoff)
        radial = self.radial(edges.vectors.norm(dim=1))
        harmonics = o3.spherical_harmonics(self.sh, edges.vectors, normalize=True, normalization="component")
        noise = self.noise_embedding(sigma)
        s = self.embedding(atomic_numbers)
        x = torch.cat([s, s.new_zeros(len(s), self.hidden.dim - self.scalars)], dim=1)
        for interaction in self.interactions:
            x = interaction(x, noise, edges.source, edges.target, radial, harmonics)
        return self.out(x)


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------

def random_crystal(n_atoms: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Li-Si-like: a near-cubic cell, 2 Si per Li, atoms at least ~1.8 A apart (rejection)."""
    low, high = (5.0, 6.0) if n_atoms <= 12 else (6.2, 7.0)
    lengths = low + (high - low) * torch.rand(3, generator=generator)
    skew = 0.08 * (torch.rand(3, 3, generator=generator) - 0.5)
    lattice = torch.diag(lengths) + skew * lengths.mean()
    frac = torch.empty(0, 3)
    while len(frac) < n_atoms:
        trial = torch.rand(1, 3, generator=generator)
        gap = trial - frac
        gap = gap - torch.round(gap)
        if len(frac) == 0 or (gap @ lattice).norm(dim=1).min() > 1.8:
            frac = torch.cat([frac, trial])
    species = torch.full((n_atoms,), SI)
    species[torch.randperm(n_atoms, generator=generator)[: n_atoms // 3]] = LI
    return frac, lattice, species


def make_batch(crystals: int, seed: int) -> tuple[Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    parts = [random_crystal(12 if k % 2 == 0 else 24, generator) for k in range(crystals)]
    frac = torch.cat([p[0] for p in parts])
    lattice = torch.stack([p[1] for p in parts])
    species = torch.cat([p[2] for p in parts])
    crystal = torch.cat([torch.full((len(p[0]),), k) for k, p in enumerate(parts)])
    sigma = torch.exp(torch.empty(len(frac)).uniform_(math.log(0.01), math.log(10.0), generator=generator))
    return frac, lattice, species, crystal, sigma


# ----------------------------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------------------------

def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def rotation_error(model: nn.Module, inputs: tuple[Tensor, ...], seed: int = 1) -> float:
    """max |f(R x) - f(x) R^T| / max |f(x)| in float64; lattice rows rotate, fractions do not."""
    model = copy.deepcopy(model).double().eval()
    frac, lattice, species, crystal, sigma = inputs
    torch.manual_seed(seed)
    rotation = o3.rand_matrix(dtype=torch.float64)
    with torch.no_grad():
        plain = model(frac.double(), lattice.double(), species, crystal, sigma.double())
        turned = model(frac.double(), lattice.double() @ rotation.T, species, crystal, sigma.double())
    return float((turned - plain @ rotation.T).abs().max() / plain.abs().max())


def median_seconds(call, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_call(model, inputs):
    def call():
        with torch.no_grad():
            model(*inputs)
    return call


def backward_call(model, inputs):
    def call():
        model.zero_grad(set_to_none=True)
        model(*inputs).pow(2).mean().backward()
    return call


def graph_call(inputs, cutoff):
    frac, lattice, _, crystal, _ = inputs
    return lambda: radius_graph(frac, lattice, crystal, cutoff)


def spread(values: list[float]) -> str:
    mid = statistics.median(values)
    return f"{mid * 1e3:8.1f} [{min(values) * 1e3:7.1f}-{max(values) * 1e3:7.1f}]"


def timing_row(batch: int, kind: str, model: str, seconds: list[float], ratios: list[float] | None) -> dict:
    """One result row: median and spread over rounds (ms), and the per-round ratio to plain torch."""
    return {"table": "timings", "batch": batch, "pass": kind, "model": model,
            "median_ms": round(statistics.median(seconds) * 1e3, 3), "min_ms": round(min(seconds) * 1e3, 3),
            "max_ms": round(max(seconds) * 1e3, 3),
            "ratio_to_torch": None if ratios is None else round(statistics.median(ratios), 3),
            "ratio_min": None if ratios is None else round(min(ratios), 3),
            "ratio_max": None if ratios is None else round(max(ratios), 3)}


def main() -> None:
    parser = common.argument_parser(__doc__, "native_e3nn_vs_torch")
    parser.add_argument("--batches", default="16,64", help="crystals per batch, comma separated")
    parser.add_argument("--variants", default="l1,l2,wide", help=f"e3nn variants from {sorted(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=3, help="whole-measurement repeats (spread)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (median)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_interop_threads(1)  # before any parallel work; common.start sets the intra-op threads
    settings = {**common.start(args), "omp_threads": os.environ["OMP_NUM_THREADS"]}
    variants = [v for v in args.variants.split(",") if v]
    batch_sizes = [int(b) for b in args.batches.split(",")]

    import e3nn
    config = NetworkConfig()
    torch.manual_seed(0)
    models = {"torch": ScoreNetwork(config)}
    for name in variants:
        hidden, lmax, radial_hidden = VARIANTS[name]
        models[f"e3nn-{name}"] = E3ScoreNetwork(hidden, lmax, radial_hidden, config.layers, config)
    for model in models.values():
        model.train()
    batches = {b: make_batch(b, seed=b) for b in batch_sizes}

    load_start = os.getloadavg()
    settings["e3nn"] = e3nn.__version__
    print(f"torch {torch.__version__}, e3nn {e3nn.__version__}; OMP_NUM_THREADS {os.environ['OMP_NUM_THREADS']}; "
          f"{os.cpu_count()} CPUs, load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    print(f"cutoff {config.cutoff} A, {config.radial_basis} radial functions, float32; "
          f"median of {args.repeats} calls after {args.warmup} warm-up, {args.rounds} rounds "
          f"(figure = median over rounds [min-max])")
    for b, inputs in batches.items():
        edges = radius_graph(inputs[0], inputs[1], inputs[3], config.cutoff)
        print(f"batch {b:>3}: {len(inputs[0])} atoms, {len(edges.source)} edges "
              f"({len(edges.source) / len(inputs[0]):.0f} per atom)")
    print()
    print("rotation err = max|f(Rx) - f(x)R^T| / max|f(x)|, one random rotation, float64 copy of each model "
          "(e3nn's\n  Clebsch-Gordan constants were built in float32, so ~1e-10 there; a broken model gives ~1e-2)")
    print(f"{'model':<10} {'node features':<22} {'params':>8} {'rotation err':>13}")
    check = batches[batch_sizes[0]]
    rows = []
    for name, model in models.items():
        irreps = ("64x0e+64x1o (PaiNN)" if name == "torch" else str(model.hidden))
        error = rotation_error(model, check)
        rows.append({"table": "models", "model": name, "node_features": irreps, "parameters": parameters(model),
                     "rotation_error": error})
        print(f"{name:<10} {irreps:<22} {parameters(model):>8} {error:>13.1e}")
    print()

    # results[(batch, model, kind)] = [seconds per round]
    results: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for b, inputs in batches.items():
            results.setdefault((b, "graph", "fwd"), []).append(
                median_seconds(graph_call(inputs, config.cutoff), args.warmup, args.repeats))
            for name, model in models.items():
                for kind, make in (("fwd", forward_call), ("fwd+bwd", backward_call)):
                    results.setdefault((b, name, kind), []).append(
                        median_seconds(make(model, inputs), args.warmup, args.repeats))

    print(f"{'batch':>5} {'pass':<8} {'model':<10} {'ms per call [spread]':>26} {'e3nn/torch [spread]':>22}")
    for b in batch_sizes:
        graph = results[(b, "graph", "fwd")]
        rows.append(timing_row(b, "graph", "(both)", graph, None))
        print(f"{b:>5} {'graph':<8} {'(both)':<10} {spread(graph):>26}")
        for kind in ("fwd", "fwd+bwd"):
            base = results[(b, "torch", kind)]
            for name in models:
                times = results[(b, name, kind)]
                ratio, ratios = "", None
                if name != "torch":
                    ratios = [t / r for t, r in zip(times, base)]
                    ratio = f"{statistics.median(ratios):6.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
                rows.append(timing_row(b, kind, name, times, ratios))
                print(f"{b:>5} {kind:<8} {name:<10} {spread(times):>26} {ratio:>22}")
    load_end = os.getloadavg()
    print(f"\nload average at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} "
          f"(per-round ratios pair the same round's torch and e3nn figures)")
    common.write_results(args.name, settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
