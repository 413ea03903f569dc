"""Campaign shards on Dask: a local cluster on one machine, or any cluster behind a scheduler address.

Why the pieces are as they are:
- Worker *processes*, one thread each: CHGNet and torch are not thread-friendly, and a second thread
  in one process only fights the first for the GIL. Every worker runs with OPENBLAS_NUM_THREADS=1
  (the Dask nanny's default environment; checked here) and torch.set_num_threads(1).
- The score model and CHGNet are loaded once per worker process (`CampaignWorker`, a worker plugin
  that Dask also hands to workers which join or restart later), not once per shard.
- Results: SQLite (ase.db) takes one writer at a time, and its locks cannot be trusted across
  machines on a network file system. So each shard writes its own database under OUTPUT/shards/
  (resumable by uid: a retried shard redoes only the structures it had not stored), and only this
  process, the coordinator, copies finished shards into results.db (`ResultStore.merge`, each uid
  exactly once). OUTPUT must therefore be on a file system the workers share with the coordinator.
- Faults: a worker that dies mid-shard is replaced (by its nanny; a cancelled SLURM job by the cluster
  script, examples/slurm_cluster.py) and the scheduler reruns the shard
  elsewhere (up to `distributed.scheduler.allowed-failures` times); the rerun finds the rows the dead
  worker stored. A coordinator that dies leaves finished shard databases behind: the next run
  merges them before it submits anything, then submits only shards with rows still missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from distributed import Client, KilledWorker, LocalCluster, WorkerPlugin, as_completed, get_worker
from tqdm import tqdm

from chggen_plugins.contract.protocol import ScoreModel
from chggen_plugins.contract.registry import load_model
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import Relaxer
from chggen_plugins.runs.config import CampaignConfig, ModelConfig, RelaxConfig
from chggen_plugins.runs.shards import SHARDS_NAME, Shard, relaxer_for, run_shard
from chggen_plugins.runs.store import ResultStore, StoredResult

WORKER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_log = logging.getLogger(__name__)


class CampaignWorker(WorkerPlugin):
    """Lives in every worker process: one thread setting, one model, one CHGNet relaxer per process.

    `model` / `relaxer` are either the config's settings (loaded on the worker, where the plugins and
    checkpoint files must be installed too) or ready objects from the coordinator (tests, notebooks).
    """

    def __init__(self, model: ModelConfig | ScoreModel, relaxer: RelaxConfig | Relaxer) -> None:
        self.model, self.relaxer = model, relaxer
        self.loads = 0  # how often this process built its resources (1 once a shard ran)

    def setup(self, worker: Any) -> None:
        torch.set_num_threads(1)
        if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
            _log.warning("chggen worker %s runs without OPENBLAS_NUM_THREADS=1 (set it in the worker's "
                         "environment, e.g. the job script); relaxations will be slower", worker.address)
        self._lock = threading.Lock()
        self._loaded: tuple[ScoreModel, Relaxer] | None = None

    def resources(self) -> tuple[ScoreModel, Relaxer]:
        """The model and relaxer of this process, built on first use."""
        with self._lock:
            if self._loaded is None:
                model = self.model
                if isinstance(model, ModelConfig):
                    model = load_model(model.name, model.source, model.device)
                relaxer = self.relaxer
                if isinstance(relaxer, RelaxConfig):
                    relaxer = relaxer_for(relaxer)
                self._loaded = (model, relaxer)
                self.loads += 1
            return self._loaded


def shard_path(directory: Path, key: str) -> Path:
    """A file name per shard key: readable, and unique through a hash of the full key."""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", key)[-90:].strip("_")
    return directory / f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.db"


def _run_remote(shard: Shard, todo: list[str], path: str, plugin: str) -> str:
    """What a worker runs: the shard into its own database, with this process's model and relaxer."""
    model, relaxer = get_worker().plugins[plugin].resources()
    run_shard(shard, ResultStore(path), model, relaxer, todo=set(todo))
    return path


class ShardRunner:
    """Runs a campaign's shards on a Dask client and merges their databases into results.db."""

    def __init__(self, client: Client, config: CampaignConfig, model: ScoreModel | None = None,
                 relaxer: Relaxer | None = None) -> None:
        self.client = client
        self.directory = config.output / SHARDS_NAME
        identity = json.dumps([str(config.output), config.fingerprint()], sort_keys=True)
        self.plugin = f"chggen-campaign-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
        client.register_plugin(CampaignWorker(model if model is not None else config.model,
                                              relaxer if relaxer is not None else config.relax), name=self.plugin)

    def run(self, shards: Sequence[Shard], store: ResultStore,
            on_result: Callable[[StoredResult], None] | None = None, progress: bool = True) -> None:
        """Submit every shard with rows missing from `store`; merge each as it finishes."""
        self.directory.mkdir(parents=True, exist_ok=True)

        def merge(path: Path) -> int:
            copied = store.merge(path)
            for row in copied:
                if on_result is not None:
                    on_result(row)
            return len(copied)

        futures = {}
        for shard in shards:
            path = shard_path(self.directory, shard.key)
            if path.exists() and any(uid not in store for uid in shard.uids):
                merge(path)  # finished or partial work of an earlier, interrupted run
            todo = [uid for uid in shard.uids if uid not in store]
            if todo:
                future = self.client.submit(_run_remote, shard, todo, str(path), self.plugin, pure=False)
                futures[future] = (shard, len(todo))
        if not futures:
            return
        bar = tqdm(total=sum(n for _, n in futures.values()), desc=f"shards on {len(self.client.nthreads())} "
                   "worker(s)", disable=not progress, unit="structure")
        try:
            for future in as_completed(list(futures)):
                shard, _ = futures[future]
                try:
                    path = future.result()
                except KilledWorker as error:
                    raise ChggenError(f"shard {shard.key} killed its worker process every time it ran "
                                      f"({error}); rows stored so far are kept, rerun to resume") from None
                bar.update(merge(Path(path)))
        except BaseException:
            self.client.cancel(list(futures))
            raise
        finally:
            bar.close()


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Client | None]:
    """A client for `--workers N` (a local cluster of N single-threaded worker processes on
    loopback) or `--scheduler ADDRESS` (a running cluster); None when neither is asked for."""
    if workers is not None and scheduler is not None:
        raise ChggenError("give --workers (a local Dask cluster) or --scheduler (a running one), not both")
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as error:
            raise ChggenError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({error})") from None
        with client:
            yield client
        return
    if workers is None:
        yield None
        return
    if workers < 1:
        raise ChggenError(f"--workers must be >= 1, got {workers}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR,
                      env=WORKER_ENVIRONMENT) as cluster:
        with Client(cluster) as client:
            yield client
