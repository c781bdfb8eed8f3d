"""Sweeps: a grid of models x profiles x configurations, each an optimize (and deploy) job,
run on an engine (Dask: a local cluster by default), resumable by job id.

Example::

    from edgekit.sweep import load_sweep, run_sweep
    result = run_sweep(load_sweep("sweep.toml"), "runs/", workers=2)
    print(result.summary["counts"], result.html_path)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import InputError
from edgekit.sweep.engine import DaskEngine, Engine, WorkerLost, make_engine
from edgekit.sweep.results import append_record, finished_ids, read_records, write_summary
from edgekit.sweep.spec import Job, Sweep, job_id, load_sweep

__all__ = [
    "DaskEngine",
    "Engine",
    "Job",
    "Sweep",
    "SweepResult",
    "job_id",
    "load_sweep",
    "make_engine",
    "run_sweep",
]

HTML = "sweep.html"


@dataclass
class SweepResult:
    """What a sweep wrote: its folder, sweep.json's content, and the Pareto page."""

    out: Path
    summary: dict[str, Any]
    html_path: Path
    ran: list[str]  # ids run by this call (a resumed sweep skips the others)


@dataclass
class _State:
    total: int
    skipped: int
    started: float
    done: int = 0
    failed: int = 0
    running: int = 0

    def snapshot(self) -> dict[str, Any]:
        finished = self.done + self.failed
        elapsed = time.monotonic() - self.started
        left = self.total - self.skipped - finished
        eta = elapsed / finished * left if finished else None
        return {"total": self.total, "skipped": self.skipped, "done": self.done,
                "failed": self.failed, "running": self.running, "eta_s": eta}  # fmt: skip


def _lost_record(job: Job, attempt: int, why: str) -> dict[str, Any]:
    return {"id": job.id, "label": job.label, "model": job.model, "profile": job.profile,
            "config": job.config, "attempt": attempt, "status": "lost", "metrics": None,
            "error": f"the worker running this job was lost {attempt} time(s): {why}",
            "finished": time.time()}  # fmt: skip


def run_sweep(
    sweep: Sweep,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    engine: Engine | None = None,
    engine_kind: str = "local",
    address: str | None = None,
    workers: int = 2,
    retries: int = 2,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run every job of `sweep` not yet finished in `out` and summarize them all.

    Each job's record is appended to out/sweep.jsonl the moment it finishes, so an
    interrupt loses none of them; `resume=True` skips the ids recorded there as
    finished (a result, or a deterministic failure), and a sweep into a folder that
    holds one without `resume` is refused. A job whose worker dies is submitted
    again, up to `retries` more times. `engine` overrides `engine_kind`/`address`/
    `workers` (a test or a caller that keeps a cluster across sweeps). Writes
    out/sweep.json and out/sweep.html when it ends, interrupted or not.
    """
    from edgekit.outputs import atomic_write_text, output_lock
    from edgekit.sweep.job import run_job
    from edgekit.sweep.pareto import to_html

    if retries < 0:
        raise InputError(f"--retries {retries} must be at least 0")
    out = Path(out)
    if (out / "sweep.jsonl").exists() and not resume:
        raise InputError(
            f"{out} already holds a sweep; add --resume to finish it, or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        done = finished_ids(out) if resume else set()
        todo = [j for j in sweep.jobs if j.id not in done]
        state = _State(len(sweep.jobs), len(sweep.jobs) - len(todo), time.monotonic())
        tell = progress or (lambda _s: None)
        started = time.time()
        own = engine is None
        eng = make_engine(engine_kind, address, workers) if own else engine
        assert eng is not None
        ran: list[str] = []
        try:
            n_workers = max(1, len(getattr(eng, "workers", lambda: [1])()))
            by_key: dict[str, tuple[Job, int]] = {}
            handles = []
            for job in todo:
                key = f"{job.id}-1"
                by_key[key] = (job, 1)
                handles.append(eng.submit(run_job, job.to_dict(), str(out), 1, key=key))
            state.running = min(n_workers, len(todo))
            tell(state.snapshot())
            pending = list(handles)
            while pending:
                again = []
                for handle, result in eng.gather(pending):
                    job, attempt = by_key[handle.key]
                    if isinstance(result, WorkerLost):
                        if attempt <= retries:
                            key = f"{job.id}-{attempt + 1}"
                            by_key[key] = (job, attempt + 1)
                            again.append(eng.submit(run_job, job.to_dict(), str(out), attempt + 1, key=key))  # fmt: skip
                            continue
                        result = _lost_record(job, attempt, str(result))
                    append_record(out, result)
                    atomic_write_text(out / "jobs" / job.id / "result.json",
                                      json.dumps(result, indent=2, default=str) + "\n")  # fmt: skip
                    ran.append(job.id)
                    if result["status"] == "ok":
                        state.done += 1
                    else:
                        state.failed += 1
                    left = state.total - state.skipped - state.done - state.failed
                    state.running = min(n_workers, left)
                    tell(state.snapshot())
                pending = again
        finally:
            summary = write_summary(out, str(sweep.path) if sweep.path else None, sweep.jobs,
                                    eng.describe(), started)  # fmt: skip
            html_path = atomic_write_text(out / HTML, to_html(summary))
            if own:
                eng.close()
    return SweepResult(out, summary, html_path, ran)


def records(out: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record in out/sweep.jsonl, in the order the jobs finished."""
    return read_records(Path(out))
