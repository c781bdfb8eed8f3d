"""`edgekit sweep`."""

from __future__ import annotations

import sys
from typing import Any

import click

from edgekit.cli._common import console
from edgekit.cli.params import RETRIES, THREADS, allow_oversubscribe_option


def _table(summary: dict[str, Any]) -> None:
    from rich.table import Table

    fronts = {i for fr in summary["pareto"].values() for ids in fr.values() for i in ids}
    table = Table(title=f"sweep: {summary['counts']}")
    for col in ("model", "profile", "config", "status", "precision", "latency ms", "accuracy",
                "size", "where", "id"):  # fmt: skip
        table.add_column(col)
    for r in summary["jobs"]:
        m = r.get("metrics") or {}
        w = r.get("where") or {}
        model, prof, cfg = (r.get("label") or "? / ? / ?").split(" / ")
        status = r["status"] if r["status"] == "ok" else f"[red]{r['status']}[/red]"
        lat = m.get("latency_ms")
        if m.get("latency_on"):  # timed on an SSH device: say where the figure comes from
            prof = f"{prof} @ {m['latency_on']}"
        table.add_row(
            model, prof, cfg, status, m.get("precision") or "",
            "" if lat is None else f"{lat:.4g}" + (" *" if r["id"] in fronts else ""),
            "" if m.get("accuracy") is None else f"{m['accuracy']:.4g}",
            "" if m.get("size_bytes") is None else f"{m['size_bytes']:,}",
            f"{w.get('worker_name', '')}@{(w.get('host') or {}).get('hostname', '')} try {r.get('attempt', '')}"
            if w else "",
            r["id"],
        )  # fmt: skip
    out = console()
    out.print(table)
    out.print("* on a Pareto front of its profile (latency against accuracy or size)")
    for r in summary["jobs"]:
        if r["status"] not in ("ok", "pending"):
            out.print(f"[red]{r['label']}[/red]: {r.get('error')}")


class _Progress:
    """Jobs done, running and failed, and the ETA, on stderr while the sweep runs."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("sweep"), BarColumn(),
            TextColumn("{task.completed}/{task.total} · {task.fields[state]}"),
            TimeElapsedColumn(), console=console(stderr=True), transient=True,
        )  # fmt: skip
        self._task = self._bar.add_task("sweep", total=1, state="starting")
        self._bar.start()

    def __call__(self, s: dict[str, Any]) -> None:
        eta = "?" if s["eta_s"] is None else f"{s['eta_s']:.0f} s"
        state = f"done {s['done']}, running {s['running']}, failed {s['failed']}, ETA {eta}"
        if s["skipped"]:
            state += f" ({s['skipped']} already finished)"
        self._bar.update(self._task, total=s["total"],
                         completed=s["skipped"] + s["done"] + s["failed"], state=state)  # fmt: skip

    def close(self) -> None:
        self._bar.stop()


@click.command("sweep")
@click.argument("sweep_file", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(), help="Folder for the results.")
@click.option("--resume", is_flag=True, help="Skip the jobs already finished in OUT/sweep.jsonl.")
@click.option(
    "--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
    help="local: a Dask LocalCluster on 127.0.0.1; dask: the scheduler at --address.",
)  # fmt: skip
@click.option("--address", help="Dask scheduler of --engine dask (tcp://HOST:8786).")
@click.option(
    "--workers", type=THREADS, default=2, show_default=True,
    help="Local workers (one thread and one core each).",
)  # fmt: skip
@click.option(
    "--retries", type=RETRIES, default=2, show_default=True,
    help="Times a job is resubmitted when its worker is lost.",
)  # fmt: skip
@allow_oversubscribe_option
@click.option("--json", "as_json", is_flag=True, help="Print sweep.json instead of a table.")
@click.option("--quiet", is_flag=True, help="No progress and no table.")
def sweep_command(
    sweep_file: str,
    out: str,
    resume: bool,
    engine: str,
    address: str | None,
    workers: int,
    retries: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Optimize (and deploy) every model x profile x configuration of a sweep file.

    Jobs run on Dask; OUT/sweep.jsonl gets each job's record as it finishes, OUT/jobs/ID/
    its report and bundle, and OUT/sweep.json and OUT/sweep.html (Pareto fronts of
    latency against accuracy and size) sum up the grid. Exit code 1 when a job failed.
    A configuration (or the file) with device = NAME times its bundle on that SSH device
    of devices.toml, as `bench --device NAME` does.

    Example: edgekit sweep sweep.toml --out runs/ --workers 2
    """
    from edgekit.sweep import load_sweep, run_sweep

    spec = load_sweep(sweep_file)
    bar = _Progress() if (not quiet and not as_json and sys.stderr.isatty()) else None
    try:
        result = run_sweep(spec, out, resume=resume, engine_kind=engine, address=address,
                           workers=workers, retries=retries, progress=bar)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        from edgekit.cli._common import echo_json

        echo_json(result.summary)
    elif not quiet:
        _table(result.summary)
        console().print(f"wrote {result.out / 'sweep.json'} and {result.html_path}")
    counts = result.summary["counts"]
    return 1 if counts["failed"] or counts["error"] or counts["lost"] else 0
