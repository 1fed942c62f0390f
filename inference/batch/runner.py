"""Run a cohort on Ray: actors holding the model, fed slides; resumable; failures recorded.

:func:`run_cohort` is what ``lobule batch`` calls. Ray is local by default (an instance sized to
this machine, started and stopped here) or a running cluster (``address``); when Ray is already
initialised in this process it is used as it is and left running.
"""
from __future__ import annotations

import collections
import functools
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lobule.inference.batch import provenance
from lobule.inference.batch.manifest import CohortSlide, read_cohort
from lobule.inference.batch.table import failure_row, rows_from_summary, write_cohort_csv
from lobule.inference.batch.worker import SlideWorker, check_paths, first_line
from lobule.inference.errors import InputError
from lobule.core.errors import LobuleError

OBJECT_STORE_BYTES = 200 * 2**20  # small: only rows and summaries travel through it


@dataclass
class CohortRun:
    """What :func:`run_cohort` did.

    Attributes
    ----------
    out : the output folder; rows : cohort.csv rows in input order;
    analysed, skipped, failed : cases run now (ok), reused from an earlier run, failed now or before;
    interrupted : stopped by ``cancel`` or Ctrl-C before the end; workers : actors used;
    seconds : wall time of the whole run; nodes : ids of the Ray nodes that analysed slides.
    """

    out: Path
    rows: list = field(default_factory=list)
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: bool = False
    workers: int = 0
    seconds: float = 0.0
    nodes: set = field(default_factory=set)


def run_cohort(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    model: str | None = None,
    device: str = "auto",
    runtime: str = "auto",
    load: Callable | None = None,
    settings=None,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    gpus_per_worker: float = 0.0,
    retries: int = 1,
    retry_failed: bool = False,
    batch_size: int | None = None,
    readers: int = 2,
    progress: bool = False,
    cancel: threading.Event | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> CohortRun:
    """Analyse every slide of a folder or CSV manifest into ``out``/<case>/ and write
    ``out``/cohort.csv and ``out``/cohort.html.

    Parameters
    ----------
    source : folder of slides or CSV manifest (see :mod:`~lobule.inference.batch.manifest`).
    out : output folder (created).
    model, device, runtime : the ``--model``, ``--device`` and ``--runtime`` of ``lobule analyze``; or ``load``, a
        picklable zero-argument callable returning a predictor (called once per worker).
    settings : QuantSettings (defaults when None).
    address : Ray cluster address; None: a local Ray instance sized to this machine.
    workers : number of actors (default: as many as the nodes' CPUs/GPUs fit).
    cpus_per_worker, gpus_per_worker : resources each actor declares (default CPUs: 2, or the
        CPUs divided by ``workers``; at most one node's).
    retries : times Ray restarts a dead worker and retries its slide.
    retry_failed : rerun cases that failed before with the same provenance.
    batch_size, readers : as ``lobule analyze``.
    progress : show a progress bar with ETA on stderr.
    cancel : set it to stop (like Ctrl-C): slides in progress are cancelled, leaving no output.
    on_result : called in the driver with each finished case's record (status, error, rows).

    Returns
    -------
    CohortRun.

    Raises
    ------
    InputError
        Bad input folder or manifest, unwritable output, a path a node cannot see, no node with
        the resources of one worker.
    LobuleError
        If the model cannot be loaded on a worker.
    KeyboardInterrupt
        After Ctrl-C, once cohort.csv and cohort.html say what was done.
    """
    import ray

    from lobule.inference.engine import load_predictor
    from lobule.inference.export import prepare_output_dir
    from lobule.inference.liver.quantify import QuantSettings

    t0 = time.perf_counter()
    items = read_cohort(source)
    out = prepare_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings if settings is not None else QuantSettings()
    if retries < 0:
        raise InputError("--retries must be 0 or more")
    load = load or functools.partial(load_predictor, model, device, runtime)
    analysis = {"settings": settings, "batch_size": batch_size, "readers": readers}
    owned, temp_dir = _start_ray(address)
    actors: list = []
    try:
        _check_visibility(items, out)
        cpus, count = _worker_size(workers, cpus_per_worker, gpus_per_worker)
        options = {"num_cpus": cpus, "num_gpus": gpus_per_worker, "max_restarts": retries,
                   "max_task_retries": retries, "max_concurrency": 2}
        actor_class = ray.remote(SlideWorker).options(**options)
        actors.append(actor_class.remote(load, analysis))
        described = ray.get(actors[0].describe.remote())
        if "error" in described:
            raise LobuleError(f"cannot load the model on a worker: {described['error']}")
        run = CohortRun(out)
        keys = {item.case: provenance.provenance_key(item, described, settings.as_dict()) for item in items}
        done: dict[str, list[dict]] = {}
        todo = []
        for item in items:
            record = provenance.read_record(out, item.case)
            if provenance.reusable(record, keys[item.case], out / item.case, retry_failed):
                done[item.case] = [dict(row, reused="yes") for row in record["rows"]]
                run.skipped += 1
                run.failed += record["status"] != "ok"
            else:
                todo.append(item)
        count = max(1, min(count, len(todo)))
        actors += [actor_class.remote(load, analysis) for _ in range(count - 1)]
        run.workers = count if todo else 0
        feeder = _Feeder(run, items, todo, keys, done, described, out, actors, actor_class, load, analysis,
                         retries, progress, cancel, on_result)
        try:
            feeder.loop()
        except KeyboardInterrupt:
            feeder.stop(wait_s=60.0)
            run.interrupted = True
            feeder.publish()
            raise
        run.interrupted = feeder.stopping
        feeder.publish()
        run.seconds = time.perf_counter() - t0
        return run
    finally:
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # already dead
                pass
        if owned:
            ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _start_ray(address: str | None) -> tuple[bool, str | None]:
    """Start (or join) Ray unless this process already did; returns (owned, private temp dir)."""
    import ray

    if ray.is_initialized():
        return False, None
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot join the Ray cluster at {address}: {first_line(exc)}") from None
        return True, None
    temp_dir = tempfile.mkdtemp(prefix="lobule-ray-")
    try:
        init_local_ray(os.cpu_count() or 1, temp_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return True, temp_dir


def init_local_ray(cpus: int, temp_dir: str, object_store_bytes: int = OBJECT_STORE_BYTES) -> None:
    """Start a private local Ray instance: ``cpus`` CPUs, no dashboard, a small object store,
    workers' logs not forwarded, its files under ``temp_dir``.

    Raises
    ------
    LobuleError
        If Ray does not start (Ray gives its node 30 s to register, which a machine under very
        heavy load can miss).
    """
    import ray

    try:
        ray.init(address="local", num_cpus=cpus, object_store_memory=object_store_bytes, include_dashboard=False,
                 _temp_dir=temp_dir, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:
        raise LobuleError(f"Ray did not start on this machine: {first_line(exc)}") from exc


def _nodes() -> list[dict]:
    import ray

    return [node for node in ray.nodes() if node.get("Alive") and node["Resources"].get("CPU", 0) > 0]


def _check_visibility(items: list[CohortSlide], out: Path) -> None:
    """Ask every node with CPUs whether it sees each slide and region file and can write ``out``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    paths = sorted({str(item.slide) for item in items} | {str(item.roi) for item in items if item.roi})
    task = ray.remote(num_cpus=0)(check_paths)
    nodes = _nodes()
    refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote(paths, str(out)) for node in nodes]
    for node, problems in zip(nodes, ray.get(refs)):
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InputError(f"Ray node {node.get('NodeManagerAddress')}: {problems[0]}{more}; slides, region files "
                             "and the output folder must be at the same path on every node (shared storage)")


def _worker_size(workers: int | None, cpus: float | None, gpus: float) -> tuple[float, int]:
    """CPUs per worker and the number of workers that fit on the live nodes."""
    nodes = [node["Resources"] for node in _nodes()]
    if workers is not None and workers < 1:
        raise InputError("--workers must be at least 1")
    if gpus < 0 or (cpus is not None and cpus <= 0):
        raise InputError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
    biggest = max(node.get("CPU", 0) for node in nodes)
    if cpus is None:
        total = sum(node.get("CPU", 0) for node in nodes)
        cpus = max(1, int(total // workers)) if workers else 2
        cpus = min(cpus, biggest)

    def fits(node: dict) -> int:
        n = int(node.get("CPU", 0) // cpus + 1e-9)
        if gpus > 0:
            n = min(n, int(node.get("GPU", 0) / gpus + 1e-9))
        return n

    room = sum(fits(node) for node in nodes)
    if room == 0:
        raise InputError(f"no Ray node has {cpus:g} CPUs and {gpus:g} GPUs free for one worker")
    return cpus, min(workers or room, room)


class _Feeder:
    """Feeds slides to idle actors, records each outcome, replaces dead actors."""

    def __init__(self, run, items, todo, keys, done, model, out, actors, actor_class, load, analysis,
                 retries, progress, cancel, on_result):
        self.run, self.items, self.keys, self.done, self.model, self.out = run, items, keys, done, model, out
        self.queue = collections.deque(todo)
        self.actors, self.actor_class, self.load, self.analysis = actors, actor_class, load, analysis
        self.retries, self.cancel, self.on_result = retries, cancel, on_result
        self.idle = list(actors)
        self.inflight: dict = {}
        self.stopping = False
        self.replacements = 0
        self.bar = _Progress(len(todo)) if progress and todo else None

    def loop(self) -> None:
        import ray

        try:
            while self.queue or self.inflight:
                if self.cancel is not None and self.cancel.is_set() and not self.stopping:
                    self.stop(wait_s=None)
                while self.idle and self.queue and not self.stopping:
                    actor = self.idle.pop()
                    item = self.queue.popleft()
                    self.inflight[actor.analyze.remote(item, str(self.out))] = (actor, item)
                if not self.inflight:
                    break
                ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=0.5)
                for ref in ready:
                    self._finish(ref)
        finally:
            if self.bar:
                self.bar.close()

    def stop(self, wait_s: float | None) -> None:
        """Cancel the slides in progress; with ``wait_s`` wait that long for them to clean up."""
        import ray

        self.stopping = True
        for actor, _ in self.inflight.values():
            actor.cancel.remote()
        if wait_s is not None and self.inflight:
            ready, _ = ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=wait_s)
            for ref in ready:
                self._finish(ref)

    def _finish(self, ref) -> None:
        import ray

        actor, item = self.inflight.pop(ref)
        try:
            result = ray.get(ref)
            self.run.nodes.add(result["node"])
        except ray.exceptions.RayError as exc:  # the worker died more often than Ray retries
            result = {"status": "failed", "summary": None, "seconds": 0.0,
                      "error": f"worker process died ({self.retries} retries): {first_line(exc)}"}
            actor = self._replace(actor)
        if actor is not None:
            self.idle.append(actor)
        self._record(item, result)

    def _replace(self, actor):
        import ray

        try:
            ray.kill(actor)
        except Exception:
            pass
        if self.replacements >= 3 * len(self.actors) or not self.queue:
            return None
        self.replacements += 1
        fresh = self.actor_class.remote(self.load, self.analysis)
        self.actors.append(fresh)
        return fresh

    def _record(self, item: CohortSlide, result: dict) -> None:
        key = self.keys[item.case]
        notes = item.notes
        if result["status"] == "ok":
            rows = rows_from_summary(result["summary"], case=item.case, slide=str(item.slide),
                                     seconds=result["seconds"], notes=notes)
            self.run.analysed += 1
        else:
            rows = [failure_row(case=item.case, slide=str(item.slide), sha=key["slide_sha256_first_mib"],
                                model=self.model, seconds=result["seconds"], status=result["status"],
                                error=result["error"], notes=notes, mpp=item.mpp)]
            self.run.failed += result["status"] == "failed"
        record = {"status": result["status"], "error": result["error"], "seconds": result["seconds"], "rows": rows}
        if result["status"] != "cancelled":
            provenance.write_record(self.out, item.case, key, record)
        self.done[item.case] = [dict(row, reused="no") for row in rows]
        if self.bar:
            self.bar.advance(item.case, result)
        if self.on_result is not None:
            self.on_result(dict(record, case=item.case))
        self.publish(report=False)

    def publish(self, report: bool = True) -> None:
        """Write cohort.csv (and cohort.html) from what is known now, in input order."""
        from lobule.inference.batch.report import write_cohort_html

        rows = []
        for item in self.items:
            rows += self.done.get(item.case) or [failure_row(
                case=item.case, slide=str(item.slide), sha=self.keys[item.case]["slide_sha256_first_mib"],
                model=self.model, seconds=0.0, status="not run", error="stopped before this slide",
                notes=item.notes, mpp=item.mpp)]
        self.run.rows = rows
        write_cohort_csv(self.out / "cohort.csv", rows)
        if report:
            write_cohort_html(self.out / "cohort.html", rows, title=f"Lobule cohort: {self.out.name}")


class _Progress:
    """Slides done / total with elapsed time and ETA (rich), on stderr; failures printed above."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("slides"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                                 console=Console(stderr=True))
        self.task = self.progress.add_task("", total=total)
        self.progress.start()

    def advance(self, case: str, result: dict) -> None:
        if result["status"] != "ok":
            self.progress.console.print(f"{case}: {result['status']}: {result['error']}", soft_wrap=True,
                                        markup=False, highlight=False)
        self.progress.update(self.task, advance=1, description=case)

    def close(self) -> None:
        self.progress.stop()
