"""One run setup for campaign, sweep and ordering: the model on its ladder, its row fields and
fingerprint, and the store claimed before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Structure

from chggen_plugins.errors import ChggenError
from chggen_plugins.runs.setup import claim_store, model_run, resolve_seed
from chggen_plugins.sampling.inpaint import SamplerSettings
from chggen_plugins.structures.batch import InpaintTask

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_a_registered_model_is_put_on_its_ladder_with_its_defaults_recorded() -> None:
    host = Structure.from_file(str(EXAMPLES / "si_host.cif"))
    run = model_run("analytic", str(EXAMPLES / "li4si8_reference.cif"), 12, "cpu", SamplerSettings(5, None),
                    [InpaintTask(host, {"Li": 2}, 1)])
    assert run.levels == run.model.noise_process.num_levels == 12
    assert run.settings.resamples == 3  # an unconditional model's RePaint default
    fields = run.fields()
    assert fields["backend"] == "analytic" and fields["weights"] == "trained" and fields["levels"] == 12
    assert (fields["jump_length"], fields["resamples"]) == (5, 3)
    assert run.fingerprint()["sampler"] == "j5 r3" and run.fingerprint()["levels"] == "12"
    heun = model_run("analytic", str(EXAMPLES / "li4si8_reference.cif"), 12, "cpu",
                     SamplerSettings(5, None, "heun", 6, 0.3), [InpaintTask(host, {"Li": 2}, 1)])
    assert heun.fingerprint()["sampler"] == "j5 r3 heun s6 c0.3"
    with pytest.raises(ChggenError, match="Na"):
        model_run("analytic", str(EXAMPLES / "li4si8_reference.cif"), None, "cpu", SamplerSettings(),
                  [InpaintTask(host, {"Na": 1}, 1)])


def test_a_run_without_a_model_says_so() -> None:
    run = model_run(None, None, 50, "cpu", SamplerSettings(10, None))
    assert run.model is None and run.levels == 0
    assert run.fields()["backend"] == "none" and run.fields()["weights"] is None
    assert run.fingerprint() == {"model": "none", "model_source": "", "weights": "", "levels": "0",
                                 "sampler": "j10 rNone"}


def test_the_store_is_claimed_once_and_other_settings_are_refused_by_name(tmp_path: Path) -> None:
    store = claim_store(tmp_path, {"model": "a", "seed": "0"}, "a test run")
    assert store.metadata["fingerprint"] == {"model": "a", "seed": "0"}
    store.add("x/0", {"status": "error"})
    claim_store(tmp_path, {"model": "a", "seed": "0"}, "a test run")  # the same settings resume
    with pytest.raises(ChggenError, match=r"holds a test run made with different settings \(seed changed\); rerun"):
        claim_store(tmp_path, {"model": "a", "seed": "1"}, "a test run")


def test_a_missing_seed_is_drawn_once_and_a_rerun_resumes_with_the_stored_one(tmp_path: Path) -> None:
    seed, drawn = resolve_seed(None, tmp_path)
    assert drawn and 0 <= seed < 2**31
    claim_store(tmp_path, {"model": "a", "seed": str(seed)}, "a test run")
    assert resolve_seed(None, tmp_path) == (seed, False)
    assert resolve_seed(7, tmp_path) == (7, False)  # given: the claim then refuses it if it differs
    for bad in (-1, 2**63, 1.5, True):
        with pytest.raises(ChggenError, match="an integer in 0..2"):
            resolve_seed(bad, tmp_path)
