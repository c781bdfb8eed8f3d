"""A sweep's results on disk: sweep.jsonl (one line per finished job) and sweep.json.

sweep.jsonl is appended, flushed and fsynced as each job finishes, so an
interrupted sweep keeps every job that had finished; a half-written last line
(the interrupt landed mid-write) is ignored on reading.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from edgekit.outputs import atomic_write_text

SCHEMA_VERSION = 1
JSONL = "sweep.jsonl"
SUMMARY = "sweep.json"
# Statuses a rerun keeps: a result, or a deterministic failure that would only recur.
FINISHED = ("ok", "failed")


def append_record(out: Path, record: dict[str, Any]) -> None:
    """Append one job's record to out/sweep.jsonl and make it durable before returning."""
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with open(out / JSONL, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_records(out: Path) -> list[dict[str, Any]]:
    """Every complete record in out/sweep.jsonl, in the order written (later wins per id)."""
    path = out / JSONL
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # the tail of an interrupted write
        if isinstance(rec, dict) and "id" in rec:
            records.append(rec)
    return records


def latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each job id."""
    return {r["id"]: r for r in records}


def finished_ids(out: Path) -> set[str]:
    """Ids a `--resume` skips: jobs whose last record is a result or a deterministic failure."""
    return {i for i, r in latest(read_records(out)).items() if r.get("status") in FINISHED}


def counts(records: list[dict[str, Any]]) -> dict[str, int]:
    out = {"ok": 0, "failed": 0, "error": 0, "lost": 0}
    for r in records:
        out[r.get("status", "error")] = out.get(r.get("status", "error"), 0) + 1
    return out


def write_summary(
    out: Path, sweep_file: str | None, jobs: list[Any], engine: dict[str, Any], started: float
) -> dict[str, Any]:
    """Write out/sweep.json: the grid's jobs in grid order with their last records, and the fronts."""
    from edgekit import __version__
    from edgekit.sweep.pareto import fronts

    last = latest(read_records(out))
    rows = [last.get(j.id, {"id": j.id, "label": j.label, "status": "pending"}) for j in jobs]
    summary = {
        "schema_version": SCHEMA_VERSION,
        "edgekit_version": __version__,
        "sweep_file": sweep_file,
        "started": started,
        "finished": time.time(),
        "engine": engine,
        "counts": {**counts(rows), "pending": sum(r["status"] == "pending" for r in rows)},
        "jobs": rows,
        "pareto": fronts(rows),
    }
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")
    return summary
