"""Executors: run a study's steps in dependency order, here or on a Dask cluster.

Every executor has one method, ``run(steps, show_progress, out) -> list[StepResult]``, skips
complete steps, starts a step only when the steps it depends on are done, and calls
``runner.execute_step`` for each step (which itself skips a complete step), so a resumed run
redoes only what is missing wherever it runs.

- ``LocalExecutor(workers=1)``: one step after another in this process; ``workers`` > 1 runs
  independent steps side by side in a process pool.
- ``DaskExecutor(cluster=..., scheduler=...)``: a future per step that depends on its parents'
  futures, on a ``distributed.LocalCluster`` (``local:N``), an existing scheduler, or a SLURM
  cluster started with dask-jobqueue (``slurm`` and a YAML config). A step that needs a GPU asks
  for the worker resource ``{"GPU": 1}``.

Each step's kernel runs with ``step.threads`` CPU threads whatever the executor (``execute_step``
sets them), so results do not depend on how many steps run at once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from synthmix.errors import InputError
from synthmix.run.graph import Step
from synthmix.run.markers import is_complete
from synthmix.run.runner import StepResult, execute_step

CLUSTER_CONFIG_KEYS = {"jobs", "cluster"}


class Executor(Protocol):
    """Runs steps in dependency order and returns what ran."""

    def run(self, steps: list[Step], show_progress: bool = True, out=sys.stdout) -> list[StepResult]:
        """Run the steps that are not complete; raise the first step failure."""


def _split(steps: list[Step]) -> tuple[list[Step], set[str]]:
    """The steps still to run (in the given order) and the ids of the complete ones."""
    todo = [s for s in steps if not is_complete(s)]
    return todo, {s.id for s in steps} - {s.id for s in todo}


# ------------------------------------------------------------------------------ local
@dataclass
class LocalExecutor:
    """Steps in this process one after another, or ``workers`` at a time in a process pool."""

    workers: int = 1

    def run(self, steps: list[Step], show_progress: bool = True, out=sys.stdout) -> list[StepResult]:
        """Run in dependency order; stop at the first failure (after letting running steps finish)."""
        todo, finished = _split(steps)
        if self.workers <= 1:
            return self._run_sequentially(steps, todo, len(finished), show_progress, out)
        return self._run_in_pool(steps, todo, finished, show_progress, out)

    @staticmethod
    def _run_sequentially(steps, todo, counter, show_progress, out) -> list[StepResult]:
        results = []
        for step in todo:
            counter += 1
            print(f"[{counter}/{len(steps)}] {step.kind} {step.condition} …", file=out, flush=True)
            result = execute_step(step, show_progress=show_progress)
            results.append(result)
            print(f"      done in {result.seconds:.1f} s → {step.output_dir}", file=out, flush=True)
        return results

    def _run_in_pool(self, steps, todo, finished, show_progress, out) -> list[StepResult]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        from synthmix.core.lifetime import die_with_parent

        workers, counter = self.workers, len(finished)
        results: list[StepResult] = []
        pending = list(todo)
        running: dict = {}
        failure: BaseException | None = None
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=die_with_parent) as pool:  # workers and their kernels follow the driver
            while (pending and failure is None) or running:
                ready = [s for s in pending if all(d in finished for d in s.depends_on)] if failure is None else []
                for step in ready[: workers - len(running)]:
                    pending.remove(step)
                    position = min(set(range(workers)) - {slot for _, slot in running.values()})
                    future = pool.submit(execute_step, step, show_progress, position)
                    running[future] = (step, position)
                    print(f"  start {step.kind} {step.condition}", file=out, flush=True)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    step, _ = running.pop(future)
                    try:
                        result = future.result()
                    except BaseException as exc:  # noqa: BLE001 - raised after running steps finish
                        failure = failure or exc
                        continue
                    finished.add(step.id)
                    results.append(result)
                    counter += 1
                    print(f"[{counter}/{len(steps)}] {step.kind} {step.condition} done in {result.seconds:.1f} s",
                          file=out, flush=True)
        if failure is not None:
            raise failure
        return results


# ------------------------------------------------------------------------------- dask
def _run_on_worker(step: Step, *parents: StepResult) -> StepResult:
    """The task a Dask worker runs: ``parents`` are the finished parents' results (they order it)."""
    return execute_step(step, show_progress=False)


def load_cluster_config(path: str | Path) -> tuple[dict, int]:
    """The SLURMCluster keyword arguments and the number of jobs to scale to, from a YAML file.

    The file holds ``jobs: N`` and ``cluster: {...}`` (keyword arguments of
    ``dask_jobqueue.SLURMCluster``); see ``params/cluster-slurm.example.yaml``.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"--cluster-config {path}: file not found")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"--cluster-config {path}: not valid YAML ({exc})") from None
    problems = []
    if not isinstance(config, dict):
        raise InputError(f"--cluster-config {path}: expected a mapping with keys 'jobs' and 'cluster'")
    unknown = sorted(set(config) - CLUSTER_CONFIG_KEYS)
    if unknown:
        problems.append(f"--cluster-config {path}: unknown key {', '.join(unknown)}; expected 'jobs' and 'cluster'")
    jobs = config.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        problems.append(f"--cluster-config {path}: 'jobs' is {jobs!r}; expected a whole number >= 1")
    cluster = config.get("cluster", {})
    if not isinstance(cluster, dict):
        problems.append(f"--cluster-config {path}: 'cluster' must be a mapping of SLURMCluster keyword arguments")
    if problems:
        raise InputError(problems)
    return cluster, jobs


def parse_local_cluster(spec: str) -> int:
    """The number of worker processes of ``local:N`` (an InputError for anything else)."""
    prefix, _, count = spec.partition(":")
    if prefix != "local" or not count.isdigit() or int(count) < 1:
        raise InputError(f"--cluster {spec!r}: expected local:N (N worker processes) or slurm")
    return int(count)


def _gpu_resources() -> dict:
    """{'GPU': 1} when this machine has a CUDA device: each worker of a local cluster then runs at
    most one GPU step at a time (on the one GPU, so ``local:N`` shares it among N steps)."""
    try:
        import torch

        return {"GPU": 1} if torch.cuda.is_available() else {}
    except ImportError:
        return {}


@dataclass
class DaskExecutor:
    """Steps as Dask futures on a cluster: ``cluster`` 'local:N' or 'slurm', or a ``scheduler`` address."""

    cluster: str | None = None
    scheduler: str | None = None
    cluster_config: str | None = None

    def __post_init__(self) -> None:
        if (self.cluster is None) == (self.scheduler is None):
            raise InputError("--executor dask needs either --cluster local:N|slurm or --scheduler ADDRESS")
        if self.cluster == "slurm":
            if self.cluster_config is None:
                raise InputError("--cluster slurm needs --cluster-config FILE (SLURMCluster keyword arguments and jobs)")
            load_cluster_config(self.cluster_config)
        elif self.cluster is not None:
            parse_local_cluster(self.cluster)
            if self.cluster_config is not None:
                raise InputError("--cluster-config applies to --cluster slurm only")

    def _connect(self, stack):
        """A client of the cluster asked for; clusters started here stop when ``stack`` closes."""
        import logging

        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            return stack.enter_context(Client(self.scheduler))
        if self.cluster == "slurm":
            from dask_jobqueue import SLURMCluster

            arguments, jobs = load_cluster_config(self.cluster_config)
            try:
                cluster = stack.enter_context(SLURMCluster(**arguments))
            except TypeError as exc:
                raise InputError(f"--cluster-config {self.cluster_config}: 'cluster' has an argument "
                                 f"SLURMCluster does not take ({exc})") from None
            cluster.scale(jobs=jobs)
        else:
            cluster = stack.enter_context(LocalCluster(
                n_workers=parse_local_cluster(self.cluster), threads_per_worker=1, processes=True,
                resources=_gpu_resources(), dashboard_address=None, silence_logs=logging.ERROR))
        return stack.enter_context(Client(cluster))

    def run(self, steps: list[Step], show_progress: bool = True, out=sys.stdout) -> list[StepResult]:
        """Submit every step not complete with its parents' futures; return what ran.

        Steps that do not depend on a failed step still run (so a rerun has less to do); the
        first failure is raised once the rest have finished. Kernels draw no progress bars here:
        the workers' output is not the driver's terminal.
        """
        from contextlib import ExitStack

        from distributed import as_completed

        todo, finished = _split(steps)
        if not todo:
            return []
        with ExitStack() as stack:
            client = self._connect(stack)
            self._check_gpu_workers(client, todo)
            print(f"  dask scheduler {client.scheduler.address}: {len(todo)} steps submitted", file=out, flush=True)
            futures, by_key = {}, {}
            for step in todo:
                parents = [futures[d] for d in step.depends_on if d in futures]
                resources = {"GPU": 1} if getattr(step, "needs_gpu", False) else None
                future = client.submit(_run_on_worker, step, *parents, key=f"{step.kind}-{step.condition}-{step.digest}",
                                       resources=resources, pure=False, retries=0)
                futures[step.id] = future
                by_key[future.key] = step
            return self._collect(as_completed(list(futures.values())), by_key, steps, len(finished), out)

    @staticmethod
    def _collect(completed, by_key, steps, counter, out) -> list[StepResult]:
        results: list[StepResult] = []
        failure: BaseException | None = None
        failed_steps = 0
        for future in completed:
            step = by_key[future.key]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - the first one is raised at the end
                failed_steps += 1
                failure = failure or exc
                continue
            results.append(result)
            counter += 1
            print(f"[{counter}/{len(steps)}] {step.kind} {step.condition} {result.status} in {result.seconds:.1f} s",
                  file=out, flush=True)
        if failure is not None:
            if failed_steps > 1:
                print(f"  {failed_steps} steps did not finish (a failed step and the steps that need it)",
                      file=out, flush=True)
            raise failure
        return results

    def _check_gpu_workers(self, client, todo: list[Step]) -> None:
        """On a local cluster, a step that needs a GPU would wait forever without one: say so instead."""
        if self.cluster is None or self.cluster == "slurm" or not any(getattr(s, "needs_gpu", False) for s in todo):
            return
        workers = client.scheduler_info().get("workers", {}).values()
        if not any(w.get("resources", {}).get("GPU") for w in workers):
            raise InputError("compute.device is cuda, but this machine has no CUDA device for the "
                             "local Dask workers")


# ------------------------------------------------------------------------- entry points
def make_executor(kind: str = "local", workers: int = 1, cluster: str | None = None, scheduler: str | None = None,
                  cluster_config: str | None = None) -> Executor:
    """The executor the command line asks for (``--executor``, ``--workers``, ``--cluster``, …).

    Raises ``InputError`` for a combination that does not fit (e.g. ``--cluster`` without dask).
    """
    if kind == "local":
        if cluster or scheduler or cluster_config:
            raise InputError("--cluster, --scheduler and --cluster-config need --executor dask")
        return LocalExecutor(workers=workers)
    if kind == "dask":
        if workers != 1:
            raise InputError("--workers is for --executor local; with dask, size the cluster (--cluster local:N)")
        return DaskExecutor(cluster=cluster, scheduler=scheduler, cluster_config=cluster_config)
    raise InputError(f"--executor {kind!r}: expected local or dask")


def run_steps(steps: list[Step], show_progress: bool = True, out=sys.stdout, workers: int = 1,
              executor: Executor | None = None) -> list[StepResult]:
    """Run steps in dependency order with ``executor`` (default: local, ``workers`` at a time)."""
    return (executor or LocalExecutor(workers=workers)).run(steps, show_progress=show_progress, out=out)
