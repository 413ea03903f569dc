"""A campaign on a real single-node SLURM (issue 27): the recipe of docs/guides/slurm.md, run as written.

`.ci/slurm-up` starts SLURM on this machine (root; it installs slurm-wlm and munge if missing), the
user's cluster script `examples/slurm_cluster.py` submits two worker jobs through dask-jobqueue's
SLURMCluster, and `chggen campaign CONFIG --scheduler ADDRESS` runs a small analytic campaign on them.
While every busy worker's shard is half stored, one worker's job is cancelled with `scancel`. The
campaign must still finish with every structure stored exactly once, and the script must have
submitted a job in place of the cancelled one.

Marked `slurm` (CI: `bash .ci/slurm-up && python -m pytest -m slurm`); skipped where SLURM is not
installed, so the plain suite stays green without it.
"""

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import ase.db
import pytest
from distributed import Client
from test_workflow import CONFIG, EXAMPLES, campaign_dir

from chggen_plugins.applications.campaign import Campaign
from chggen_plugins.runs.config import CampaignConfig, load_config
from chggen_plugins.runs.methods import HOST
from chggen_plugins.runs.shards import SHARDS_NAME

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(shutil.which("slurmctld") is None,
                                 reason="SLURM is not installed (slurmctld missing): `bash .ci/slurm-up` as root "
                                        "installs and starts a single-node SLURM, then `python -m pytest -m slurm`")]

SLURM_UP = Path(__file__).resolve().parents[1] / ".ci" / "slurm-up"
SHARD_SIZE = 4  # structures per shard: a shard is half stored for three of its four relaxations
TEXT = (CONFIG.replace('host_files = ["si_host.cif", "p1_host.cif"]', 'host_files = ["si_host.cif"]')
        .replace("batch_size = 2", f"batch_size = {SHARD_SIZE}").replace("samples = 2", f"samples = {SHARD_SIZE}")
        .replace("[cells]", f"[cells]\nsamples_per_cell = {SHARD_SIZE}").replace("max_steps = 80", "max_steps = 20"))


def wait_for(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.25) -> object:
    """Poll `condition` until it returns something true; fail naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def slurm() -> Iterator[None]:
    """SLURM up for this module (the script CI and users run), its daemons stopped afterwards."""
    up = subprocess.run(["bash", str(SLURM_UP)], capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, f".ci/slurm-up failed:\n{up.stdout}\n{up.stderr}"
    yield
    subprocess.run(["bash", str(SLURM_UP), "stop"], check=True, timeout=60)


def job_ids(name: str) -> set[str]:
    """Queued or running SLURM jobs named `name`."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.fixture
def cluster(slurm: None, tmp_path: Path) -> Iterator[tuple[Client, str, str]]:
    """examples/slurm_cluster.py with two worker jobs: (client, scheduler address, job name); on the way
    out the script gets SIGTERM (it cancels its jobs) and any job left over is cancelled by its id."""
    name = f"chggen-test-{os.getpid()}"
    address_file, logs, output = tmp_path / "scheduler.txt", tmp_path / "logs", tmp_path / "cluster.log"
    with output.open("w") as stream:
        script = subprocess.Popen([sys.executable, str(EXAMPLES / "slurm_cluster.py"), "--jobs", "2",
                                   "--memory", "2GB", "--walltime", "00:20:00", "--job-name", name, "--logs", str(logs),
                                   "--check", "2", "--address-file", str(address_file)],
                                  cwd=tmp_path, stdout=stream, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: address_file.exists() or script.poll() is not None, 120, "the scheduler's address")
        assert script.poll() is None, f"slurm_cluster.py ended:\n{output.read_text()}"
        address = address_file.read_text().strip()
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=180)
            yield client, address, name
    except BaseException:
        for log in [output, *sorted(logs.glob("*"))]:  # the script's and the jobs' output say what went wrong
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    finally:
        script.send_signal(signal.SIGTERM)
        try:
            script.wait(timeout=60)
        finally:
            left = job_ids(name)
            if left:
                subprocess.run(["scancel", *sorted(left)], check=False)


def slurm_job_of_workers(client: Client) -> dict[str, str]:
    """Worker address -> the SLURM job it runs in (from the worker's own environment)."""
    return client.run(lambda: os.environ.get("SLURM_JOB_ID"), on_error="ignore")


def shard_rows(path: Path) -> dict[str, float]:
    """uid -> creation time of the rows in one shard database, read only: a worker may be creating
    or writing it, and ase.db.connect would set up the tables of a new file itself (a second writer)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        return dict(db.execute("SELECT t.value, s.ctime FROM systems AS s JOIN text_key_values AS t "
                               "ON t.id = s.id WHERE t.key = 'uid'"))


def half_stored_shards(output: Path) -> dict[str, dict[str, float]]:
    """Shard databases holding some but not all of their structures (shards being run right now):
    file name -> its rows."""
    partial = {}
    for path in (output / SHARDS_NAME).glob("*.db"):
        try:
            rows = shard_rows(path)
        except sqlite3.OperationalError:  # tables not made yet, or locked past the timeout
            continue
        if 0 < len(rows) < SHARD_SIZE:
            partial[path.name] = rows
    return partial


def expected_uids(config: CampaignConfig) -> set[str]:
    """Every generated structure the config asks for, from its shards (inpainting shards come from
    the hosts in the finished store)."""
    campaign = Campaign(config, progress=False)
    spec = config.compositions[0]
    shards = campaign.unconditional_shards(spec, 0) + campaign.inpainting_shards(spec)
    return {uid for shard in shards for uid in shard.uids}


def test_campaign_on_slurm_jobs_survives_a_cancelled_worker_job(tmp_path: Path,
                                                               cluster: tuple[Client, str, str]) -> None:
    client, address, name = cluster
    path = campaign_dir(tmp_path / "campaign", TEXT)
    config = load_config(path)
    started = job_ids(name)
    assert len(started) == 2
    log = tmp_path / "campaign.log"
    with log.open("w") as stream:
        campaign = subprocess.Popen([sys.executable, "-m", "chggen_plugins.cli", "campaign", str(path),
                                     "--scheduler", address, "-q"], stdout=stream, stderr=subprocess.STDOUT)
    try:
        def every_busy_worker_half_way() -> tuple[str, dict[str, dict[str, float]]] | None:
            busy = [worker for worker, keys in client.processing().items() if keys]
            partial = half_stored_shards(config.output)
            if campaign.poll() is not None:
                pytest.fail(f"the campaign ended before a shard was caught half stored:\n{log.read_text()}")
            return (busy[0], partial) if busy and len(partial) >= len(busy) else None

        victim, partial = wait_for(every_busy_worker_half_way, 300, "a worker in the middle of a shard", poll=0.1)
        job = slurm_job_of_workers(client)[victim]
        subprocess.run(["scancel", job], check=True)
        wait_for(lambda: job not in job_ids(name), 60, f"job {job} to leave the queue")
        assert campaign.wait(timeout=400) == 0, log.read_text()
    finally:
        if campaign.poll() is None:
            campaign.kill()
            campaign.wait()

    rows = list(ase.db.connect(config.output / "results.db").select())
    twice = [uid for uid, n in Counter(row.uid for row in rows).items() if n > 1]
    assert not twice, f"stored more than once: {twice}"
    generated = expected_uids(config)
    # 2 cells x 4 unconditional, and 4 inpainted into si_host.cif (at least: the relaxed structures
    # give a host too if one converged in its 20 FIRE steps)
    assert len(generated) >= 3 * SHARD_SIZE
    assert {row.uid for row in rows if row.method != HOST} == generated
    assert any(row.uid == f"LiSi2/{HOST}/file:si_host.cif" and row.status == HOST for row in rows)
    assert all(row.status in ("relaxed", "unconverged") for row in rows if row.method != HOST)
    # the shards half stored when the job was cancelled are complete, and their rerun kept the rows
    # stored before the cancel (same creation times) instead of redoing them
    assert partial
    for shard, before in partial.items():
        after = shard_rows(config.output / SHARDS_NAME / shard)
        assert len(after) == SHARD_SIZE and {uid: after[uid] for uid in before} == before

    # the cluster script submitted a job in place of the cancelled one (after the lost-worker timeout)
    wait_for(lambda: len(set(slurm_job_of_workers(client).values()) - started) >= 1
             and job not in slurm_job_of_workers(client).values(), 90, "a job replacing the cancelled one")
