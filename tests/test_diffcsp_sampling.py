"""DiffCSP's noise process and score convention, checked with an ideal network.

The oracle outputs exactly DiffCSP's training target for known clean positions,
d_log_p_wrapped_normal(x_t - x_0, sigma_t) / sqrt(sigmas_norm[t]). Fed through the adapter, that must
become the true score of the wrapped normal at the level's sigma, and the core sampler driven by it
must land the guests on their clean sites while the host stays exact.
"""

import torch

from chggen_diffcsp import CSPNetConfig, DiffCSPProcess, DiffCSPScoreModel
from chggen_diffcsp.noise import wrapped_normal_tables
from chggen_plugins import inpaint
from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.structures.batch import structures_to_batch

TIMESTEPS = 12
SIGMAS, NORMS = wrapped_normal_tables(TIMESTEPS)
IMAGES = torch.arange(-10, 11, dtype=torch.float64)


class Oracle(torch.nn.Module):
    """The perfect DiffCSP coordinate head for clean positions `clean` [N, 3]."""

    def __init__(self, clean: torch.Tensor) -> None:
        super().__init__()
        self.clean = clean
        self.config = CSPNetConfig(timesteps=TIMESTEPS)

    def forward(self, t, atom_types, frac, lattice, batch):
        sigma = SIGMAS.double()[t][batch][:, None, None]
        d = (frac.double() - self.clean)[..., None] + IMAGES
        weights = torch.exp(-d ** 2 / (2 * sigma ** 2))
        target = (d / sigma ** 2 * weights).sum(-1) / weights.sum(-1)
        return None, target / NORMS.double()[t][batch][:, None].sqrt(), None


def oracle_model(clean: torch.Tensor, step_lr: float = 1e-5) -> DiffCSPScoreModel:
    return DiffCSPScoreModel(Oracle(clean), DiffCSPProcess(SIGMAS, NORMS, 0.005, step_lr))


def test_adapter_score_is_the_wrapped_normal_score(reference):
    batch = structures_to_batch([reference])
    clean = batch.frac_coords
    model = oracle_model(clean)
    generator = torch.Generator().manual_seed(0)
    for level in (0, 5, TIMESTEPS - 1):
        sigma = model.noise_process.sigma(level)
        assert sigma == float(SIGMAS[level + 1])  # level l is DiffCSP's t = l + 1
        noisy = model.noise_process.marginal(clean, level, batch, generator).requires_grad_(True)
        log_density = torch.logsumexp(-((noisy - clean)[..., None] + IMAGES) ** 2 / (2 * sigma ** 2), -1).sum()
        (true_score,) = torch.autograd.grad(log_density, noisy)
        got = model.score(batch.with_frac_coords(noisy.detach()), level)
        torch.testing.assert_close(got, true_score, rtol=1e-4, atol=1e-3 / sigma)


def test_oracle_inpainting_puts_guests_on_their_sites(host, reference):
    clean = structures_to_batch([reference]).frac_coords
    guest_sites = clean[[1, 4]]  # the reference's Li sites, in the order the sampler appends guests
    target = torch.cat([structures_to_batch([host]).frac_coords, guest_sites])
    out = inpaint(host, {"Li": 2}, oracle_model(target), n_samples=1, seed=3, jump_length=4, resamples=2)[0]
    assert out.composition.reduced_formula == reference.composition.reduced_formula
    assert [site.species for site in out][:4] == [site.species for site in host]
    assert (out.frac_coords[:4] == host.frac_coords).all()
    error = (out.frac_coords[4:] - guest_sites.numpy() + 0.5) % 1.0 - 0.5
    assert abs(error).max() < 1e-4


def test_corrector_is_diffcsp_langevin_step():
    process = DiffCSPProcess(SIGMAS, NORMS, sigma_begin=0.005, step_lr=2e-5)
    n = 30000
    frac = torch.full((n, 3), 0.5, dtype=torch.float64)
    batch = CrystalBatch(frac, 5.0 * torch.eye(3, dtype=torch.float64)[None], torch.full((n,), 14),
                         torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool))
    score = torch.ones_like(frac)
    generator = torch.Generator().manual_seed(0)
    level = 6
    step = 2e-5 * (float(SIGMAS[level + 1]) / 0.005) ** 2
    moved = process.corrector_step(frac, score, level, batch, generator) - frac
    assert abs(moved.mean().item() - step) < 0.05 * (2 * step) ** 0.5
    assert abs(moved.std().item() / (2 * step) ** 0.5 - 1) < 0.02
    last = process.corrector_step(frac, score, 0, batch, generator) - frac  # t = 1: no noise
    torch.testing.assert_close(last, torch.full_like(frac, 2e-5))
