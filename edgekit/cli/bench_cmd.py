"""`edgekit bench`."""

from __future__ import annotations

import sys
from typing import Any

import click

from edgekit.cli._common import console, factory_options, feed_options, resolve_model
from edgekit.cli._complete import complete_bench_device, complete_runtime
from edgekit.cli.params import (
    BATCH,
    POSITIVE_SECONDS,
    PROCESSES,
    RUNS,
    SECONDS,
    SEED,
    THREADS,
    WARMUP,
    allow_oversubscribe_option,
)


def _summary(report: Any) -> None:
    from rich.table import Table

    d = report.to_dict()
    lat, rt, proto = d["latency_ms"], d["runtime"], d["protocol"]
    out = console()
    threads = rt["threads"] if rt["threads"] is not None else "default"
    out.print(
        f"[bold]{d['model']['path']}[/bold]  {rt['name']} {rt['version']}  device={rt['device']}"
        + (f"  provider={rt['provider']}" if rt["provider"] else "")
        + f"  threads={threads}  mode={proto['mode']}"
    )
    table = Table(title=None, show_header=True)
    for col in ("", "value"):
        table.add_column(col)
    ci = lat["median_ci"]
    ci_txt = f"[{ci['low']:.4g}, {ci['high']:.4g}]" if ci["low"] is not None else "n/a"
    table.add_row("median (ms)", f"[bold]{lat['median']:.4g}[/bold]  95% CI {ci_txt}")
    table.add_row(
        "p90 / p99 / p99.9 (ms)", f"{lat['p90']:.4g} / {lat['p99']:.4g} / {lat['p999']:.4g}"
    )
    table.add_row("min / max (ms)", f"{lat['min']:.4g} / {lat['max']:.4g}")
    table.add_row(
        "mean ± std (ms)", f"{lat['mean']:.4g} ± {lat['std']:.3g}  (cv {lat['cv'] or 0:.3f})"
    )
    drift = lat["drift"]
    table.add_row("drift first→last third", "n/a" if drift is None else f"{drift:+.2%}")
    tp = d["throughput"]
    table.add_row(
        "throughput",
        f"{tp['inferences_per_s']:.1f} inferences/s at concurrency {tp['concurrency']}",
    )
    ph = d["phases_ms"]
    table.add_row(
        "phases (ms)",
        f"load {ph['load']:.1f}  first {ph['first_inference']:.2f}  warm-up {ph['warmup']:.0f}"
        f" ({proto['warmup']['runs']} runs, {'stable' if proto['warmup']['stable'] else 'NOT stable'})",
    )
    table.add_row(
        "runs", f"{lat['n']} in {proto['processes']} process(es); stopped: {proto['stop_reason']}"
    )
    mem = d["memory_mb"]
    if mem["peak_rss"] is not None:
        table.add_row(
            "memory (MB)",
            f"rss {mem['rss_before_load']} → {mem['rss_after_load']} after load, peak {mem['peak_rss']}",
        )
    ran = rt.get("inference_precision")
    if ran:
        table.add_row("inference precision", f"{ran['ran']} (hint {ran['hint']}, read back)")
    table.add_row("timed region", proto["timed_region"])
    if proto.get("timing_source"):
        table.add_row("timings are", proto["timing_source"])
    figures = d.get("target_figures")
    if figures:
        _target_rows(table, figures)
    if d.get("compiler_figures"):
        _compiler_rows(table, d["compiler_figures"])
    out.print(table)
    for w in d["warnings"]:
        out.print(f"[yellow]warning:[/yellow] {w}")


def _target_rows(table: Any, figures: dict[str, Any]) -> None:
    """The figures that transfer to the device, apart from this host's timings above."""
    from edgekit.profile_schema import format_bytes

    def size(n: int) -> str:
        return f"{n:,} B ({format_bytes(n)})"

    table.add_section()
    table.add_row("[bold]on the device[/bold]", figures["source"])
    if "arena_bytes" in figures:
        table.add_row(
            "tensor arena",
            f"[bold]{size(figures['arena_bytes'])}[/bold] to reserve "
            f"({figures['arena_used_bytes']:,} B allocated once planned)",
        )
    if "flash_bytes" in figures:
        table.add_row("flash (model)", size(figures["flash_bytes"]))


def _compiler_rows(table: Any, fig: dict[str, Any]) -> None:
    """A compiler's estimates (Vela's), apart from this host's measurement above."""
    from edgekit.profile_schema import format_bytes

    table.add_section()
    table.add_row("[bold]compiler's estimates[/bold]", fig["source"])
    if "npu_ops" in fig:
        cpu = ", ".join(fig.get("cpu_operators") or []) or "none"
        table.add_row(
            "ops on NPU / CPU", f"{fig['npu_ops']} / {fig['cpu_ops']} (on the CPU: {cpu})"
        )
    if "sram_bytes" in fig:
        table.add_row("SRAM / flash", f"{format_bytes(fig['sram_bytes'])} / "
                      f"{format_bytes(fig.get('flash_bytes') or 0)}")  # fmt: skip
    if fig.get("inference_ms") is not None:
        clock = f" at {fig['clock_hz'] / 1e6:g} MHz" if fig.get("clock_hz") else ""
        table.add_row("inference (estimated)", f"{fig['inference_ms']:.4g} ms{clock}")


class _Bar:
    """A rich progress bar on stderr, shown only on a terminal and only after one second."""

    def __init__(self) -> None:
        import time

        self._time = time.monotonic
        self._start = self._time()
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, phase: str, fraction: float) -> None:
        if self._progress is None:
            if self._time() - self._start < 1.0:
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:>14}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=console(stderr=True),
                transient=True,
                # no refresh thread: it would take the GIL in the middle of timed calls;
                # the harness calls back between calls, every 0.1 s, and we redraw then
                auto_refresh=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(phase, total=1.0)
        self._progress.update(self._task, description=phase, completed=fraction)
        self._progress.refresh()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _warmup_runs(warmup: str | None) -> int:
    """--warmup for a remote bench: a number of runs (the device script runs a fixed count)."""
    from edgekit.errors import InputError

    if warmup is None:
        return 20
    if not warmup.isdigit():
        raise InputError(f"--warmup {warmup} on an SSH device must be a number of runs, such as 20")
    return int(warmup)


@click.command("bench")
@click.argument("model", type=click.Path())
@factory_options(trust=True)
@click.option("--runtime", help="litert, onnxruntime or openvino (default: the format's own).",
              shell_complete=complete_runtime)  # fmt: skip
@click.option("--device", shell_complete=complete_bench_device,
              help="CPU, GPU, NPU, AUTO (OpenVINO), cuda (ONNX Runtime), or a device of "
                   "devices.toml: the bundle is then timed there over SSH.")  # fmt: skip
@click.option("--provider", help="ONNX Runtime execution provider (cpu, cuda, tensorrt, ...).")
@click.option("--threads", type=THREADS, help="Inference threads (default: the runtime's).")
@click.option(
    "--batch", type=BATCH, default=1, show_default=True, help="Batch size for dynamic batch dims."
)
@click.option(
    "--input",
    "input_file",
    type=click.Path(),
    help="Inputs from a .npz: one array per input name, or a dataset (x, y) fed as eval feeds it.",
)
@click.option(
    "--input-shape", "input_shapes", multiple=True, help="NAME=D1,D2,... for dynamic inputs."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of generated inputs.")
@click.option(
    "--warmup",
    type=WARMUP,
    help="Minimum warm-up: runs (20) or seconds (1.5s); extended until stable.",
)
@click.option("--min-runs", type=RUNS, help="Steady state lasts at least this many runs.")
@click.option("--min-time", type=SECONDS, help="...and at least this many seconds.")
@click.option(
    "--max-time",
    type=POSITIVE_SECONDS,
    help="Stop cleanly after this many seconds of steady state.",
)
@click.option("--certify", is_flag=True, help="Long preset: 60 s steady state, longer warm-up.")
@click.option(
    "--processes", type=PROCESSES, default=1, show_default=True, help="Repeat in K fresh processes."
)
@click.option(
    "--mode", type=click.Choice(["latency", "throughput"]), default="latency", show_default=True
)
@click.option(
    "--concurrency", type=THREADS, help="Requests in flight in throughput mode (default 2)."
)
@click.option("--out", "out", type=click.Path(), help="Write the report JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON instead of a table.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary.")
# --- remote devices (edgekit.remote): the bundle is timed on the device over SSH
@click.option("--remote", "remote", metavar="NAME",
              help="Bench the bundle on this SSH device (as --device NAME, for a name that "
                   "is also a runtime device's).")  # fmt: skip
@click.option(
    "--devices",
    "devices_file",
    type=click.Path(),
    help="devices.toml (default ./devices.toml, then ~/.config/edgekit/devices.toml).",
)
@click.option(
    "--accept-new-host-key",
    is_flag=True,
    help="Trust a device's new or changed host key and pin it in the devices file.",
)
# --- inference precision (issue 12): what the runtime computes in, set and read back
@click.option(
    "--inference-precision",
    type=click.Choice(["f32", "bf16", "f16"]),
    help="Compute precision the runtime runs an fp32 model in (OpenVINO; default f32).",
)
@feed_options(scored=False)
@allow_oversubscribe_option
def bench_command(
    model: str,
    runtime: str | None,
    device: str | None,
    provider: str | None,
    threads: int | None,
    batch: int,
    input_file: str | None,
    input_shapes: tuple[str, ...],
    seed: int,
    warmup: int | float | None,
    min_runs: int | None,
    min_time: float | None,
    max_time: float | None,
    certify: bool,
    processes: int,
    mode: str,
    concurrency: int | None,
    out: str | None,
    as_json: bool,
    quiet: bool,
    remote: str | None = None,
    devices_file: str | None = None,
    accept_new_host_key: bool = False,
    inference_precision: str | None = None,
    feed: Any = None,
    example_input: tuple[str, ...] = (),
    trust_model: bool = False,
) -> None:
    """Measure a model's latency (or throughput) with a stated, repeatable protocol.

    MODEL is a model file or a deploy bundle folder. Phases are timed apart
    (load, first inference, warm-up until stable, steady state); steady state
    ends when --min-runs AND --min-time are both met, or at --max-time.

    With --device NAME of a device in devices.toml (or --remote NAME), MODEL is a bundle
    timed on that device over SSH (--min-runs runs after --warmup runs); only on-device
    timings are samples.

    Example: edgekit bench light_resnet50.onnx --runtime openvino --threads 1 --out r.json

    Example: edgekit bench bundle/ --device pi-lab-3 --devices devices.toml --out pi.json
    """
    model = resolve_model(model, trust_model, example_input)
    from edgekit.bench.harness import benchmark
    from edgekit.inputs import parse_shapes

    target: Any = remote
    if remote is None and device is not None:
        from edgekit.remote import bench_device

        target = bench_device(device, devices_file)  # a Device, or None for a runtime device
        if target is not None:
            device = None
    if target is not None:
        from edgekit.errors import InputError
        from edgekit.remote import remote_benchmark

        local_only = {"--runtime": runtime, "--device": device, "--provider": provider,
                      "--input": input_file, "--input-shape": input_shapes,
                      "--preprocess/--scale/...": feed.given() or feed.preprocess is not None,
                      "--processes": processes != 1, "--mode": mode != "latency",
                      "--concurrency": concurrency, "--certify": certify}  # fmt: skip
        given = [flag for flag, value in local_only.items() if value]
        if given:
            raise InputError(
                f"{given[0]} does not apply on an SSH device, which times the bundle as shipped"
            )

        report = remote_benchmark(
            model, target, devices_file=devices_file, accept_new_host_key=accept_new_host_key,
            runs=min_runs or 200, warmup=_warmup_runs(warmup), threads=threads,
        )  # fmt: skip
        _emit(report, out, as_json, quiet)
        return
    options = _precision_options(model, runtime, inference_precision)
    bar = _Bar() if (not quiet and not as_json and sys.stderr.isatty()) else None
    try:
        report = benchmark(
            model,
            runtime=runtime,
            device=device,
            provider=provider,
            threads=threads,
            batch=batch,
            inputs=input_file,
            input_shapes=parse_shapes(input_shapes) or None,
            seed=seed,
            warmup=warmup,
            min_runs=min_runs,
            min_time=min_time,
            max_time=max_time,
            certify=certify,
            processes=processes,
            mode=mode,
            concurrency=concurrency,
            options=options,
            progress=bar,
            feed=feed,
        )
    finally:
        if bar is not None:
            bar.close()
    _emit(report, out, as_json, quiet)


def _precision_options(model: str, runtime: str | None, precision: str | None) -> dict | None:
    """The runtime options for --inference-precision (the runtime's own knowledge)."""
    if precision is None:
        return None
    from edgekit.runtimes import DEFAULT_RUNTIME, get_runtime

    if runtime is None:
        from edgekit.model import load

        runtime = DEFAULT_RUNTIME.get(str(load(model).format), "")
    return get_runtime(runtime).precision_options(precision)


def _emit(report: Any, out: str | None, as_json: bool, quiet: bool) -> None:
    if out:
        report.save(out)
    if as_json:
        import json

        click.echo(json.dumps(report.to_dict()))
    elif not quiet:
        _summary(report)
        if out:
            console().print(f"report written to {out}")
