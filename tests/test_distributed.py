"""The campaign on a local Dask cluster (2 worker processes on loopback): the same rows as the plain
path, a worker killed mid-shard, the coordinator killed mid-run, and a relaxation that raises.

Helper classes live in this module so that worker processes (which inherit sys.path) unpickle them."""

import os
from pathlib import Path

import ase.db
import pytest
from test_workflow import CONFIG, Killed, campaign_dir, small_model

from chggen_plugins.applications.campaign import Campaign
from chggen_plugins.evaluation.relax import Relaxer
from chggen_plugins.runs.config import load_config
from chggen_plugins.runs.dask import dask_client, shard_path
from chggen_plugins.runs.shards import SHARDS_NAME
from chggen_plugins.runs.store import ResultStore

TEXT = (CONFIG.replace('host_files = ["si_host.cif", "p1_host.cif"]', 'host_files = ["si_host.cif"]')
        .replace("[cells]", "[cells]\nsamples_per_cell = 2").replace("max_steps = 80", "max_steps = 20"))
MAX_STEPS = 20


class ExitOnceRelaxer(Relaxer):
    """Kills its worker process at its second structure, once per test (a marker file remembers)."""

    def __init__(self, marker: Path) -> None:
        super().__init__(max_steps=MAX_STEPS)
        self.marker, self.calls = marker, 0

    def relax(self, structure, fixed=()):
        self.calls += 1
        if self.calls == 2 and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        return super().relax(structure, fixed)


class CubicFails(Relaxer):
    """CHGNet 'fails' on the 3-atom cubic cells (a choice that does not depend on the worker)."""

    def _relax(self, structure, fixed):
        if len(structure) == 3 and structure.lattice.is_orthogonal and len(set(structure.lattice.abc)) == 1:
            raise RuntimeError("CHGNet exploded")
        return super()._relax(structure, fixed)


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The undisturbed campaign on the plain (serial) path: uid -> (status, energy)."""
    config = load_config(campaign_dir(tmp_path_factory.mktemp("serial"), TEXT))
    campaign = Campaign(config, model=small_model(), relaxer=Relaxer(max_steps=MAX_STEPS), progress=False)
    campaign.stages()
    rows = {r.uid: (r.get("status"), r.get("e_per_atom")) for r in campaign.store.results()}
    assert sum(r[0] in ("relaxed", "unconverged") for r in rows.values()) >= 6 and any("/inpainting/" in uid for uid in rows)
    return rows


def stored_uids(config) -> list[str]:
    return [row.uid for row in ase.db.connect(config.output / "results.db").select()]


def assert_same_rows(config, reference) -> None:
    uids = stored_uids(config)
    assert len(uids) == len(set(uids)), "a structure is stored twice"
    assert sorted(uids) == sorted(reference)
    campaign_rows = {r.uid: r for r in ResultStore(config.output / "results.db").results()}
    for uid, (status, energy) in reference.items():
        assert campaign_rows[uid].get("status") == status
        assert campaign_rows[uid].get("e_per_atom", 0.0) == pytest.approx(energy or 0.0, abs=1e-6)


def test_dask_path_stores_what_the_plain_path_stores(tmp_path, client, reference):
    config = load_config(campaign_dir(tmp_path, TEXT))
    campaign = Campaign(config, model=small_model(), relaxer=Relaxer(max_steps=MAX_STEPS), progress=False,
                        client=client)
    campaign.stages()
    assert_same_rows(config, reference)
    # One database per shard, each holding only its own uids; one model load per worker process.
    shards = list((config.output / SHARDS_NAME).glob("*.db"))
    generated = {uid.rsplit("/", 1)[0] for uid, (status, _) in reference.items() if status not in ("host", "skipped")}
    assert len(shards) == len(generated) >= 3  # two cells, at least one host
    for path in shards:
        uids = {row.uid for row in ase.db.connect(path).select()}
        assert len({uid.rsplit("/", 1)[0] for uid in uids}) == 1
        assert shard_path(config.output / SHARDS_NAME, next(iter(uids)).rsplit("/", 1)[0] + "/part0") == path
    name = campaign._workers.plugin
    loads = client.run(lambda dask_worker: dask_worker.plugins[name].loads)
    assert set(loads.values()) <= {0, 1} and sum(loads.values()) >= 1


def test_a_worker_killed_mid_shard_is_replaced_and_its_shard_completes(tmp_path, client, reference):
    config = load_config(campaign_dir(tmp_path, TEXT))
    marker = tmp_path / "killed"
    before = set(client.scheduler_info()["workers"])
    Campaign(config, model=small_model(), relaxer=ExitOnceRelaxer(marker), progress=False, client=client).stages()
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) != os.getpid()
    assert set(client.scheduler_info()["workers"]) != before  # the nanny started a new worker
    assert_same_rows(config, reference)


def test_coordinator_killed_mid_run_resumes_with_every_structure_once(tmp_path, client, reference):
    config = load_config(campaign_dir(tmp_path, TEXT))
    merged = []

    def kill(stored):
        merged.append(stored.uid)
        if len(merged) == 3:  # inside the unconditional stage, one shard merged, one not
            raise Killed

    with pytest.raises(Killed):
        Campaign(config, model=small_model(), relaxer=Relaxer(max_steps=MAX_STEPS), on_result=kill,
                 progress=False, client=client).stages()
    assert 0 < len(stored_uids(config)) < len(reference)
    Campaign(config, model=small_model(), relaxer=Relaxer(max_steps=MAX_STEPS), progress=False,
             client=client).stages()
    assert_same_rows(config, reference)


def test_a_relaxation_that_raises_is_recorded_and_the_dask_campaign_goes_on(tmp_path, client):
    config = load_config(campaign_dir(tmp_path, TEXT))
    Campaign(config, model=small_model(), relaxer=CubicFails(max_steps=MAX_STEPS), progress=False,
             client=client).stages()
    rows = list(ResultStore(config.output / "results.db").results())
    failed = [r for r in rows if r.get("status") == "error"]
    assert {r.get("start_cell") for r in failed} == {"cubic-1"} and len(failed) == 2
    assert all(r.get("error") == "relaxation failed: RuntimeError: CHGNet exploded" for r in failed)
    assert any(r.get("method") == "inpainting" and r.get("status") in ("relaxed", "unconverged") for r in rows)


def test_cli_runs_the_campaign_on_a_running_scheduler_and_names_bad_flags(tmp_path, client, capsys):
    from chggen_plugins.cli import main

    path = campaign_dir(tmp_path, TEXT.replace("max_steps = 20", f"max_steps = {MAX_STEPS}"))
    address = client.scheduler.address
    assert main(["campaign", str(path), "--scheduler", address, "-q"]) == 0
    rows = list(ResultStore(tmp_path / "out" / "results.db").results())
    assert any(r.get("method") == "inpainting" for r in rows) and (tmp_path / "out" / "summary.csv").is_file()
    assert list((tmp_path / "out" / SHARDS_NAME).glob("*.db"))  # it went through the Dask path
    capsys.readouterr()
    for flags, message in ((["--workers", "0"], "--workers must be >= 1"),
                           (["--workers", "2", "--scheduler", address], "not both")):
        assert main(["campaign", str(path), *flags, "-q"]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and "\n" not in error
