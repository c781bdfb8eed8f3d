"""Nothing lost: an interrupted or concurrent run leaves the input intact and nothing finished-looking.

Each test starts a real `edgekit` command in a subprocess, waits until it is inside
its work (its temp folder exists) or a fixed delay has passed, sends SIGINT or
SIGTERM, and then checks: the input model is byte-identical, --out holds no
finished artifact, no temp folder or lock is left behind, and a rerun succeeds.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_user_error, interruptible, run_cli

INTERRUPTED = (130, -signal.SIGINT)
ENV = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")


def _sha(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode() + p.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgekit", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=interruptible,
    )


def _temps(folder: Path) -> list[str]:
    """Hidden entries edgekit makes next to --out while it works (temp folders, locks)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _wait_for_temp(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> bool:
    """Poll until edgekit has made its temp folder next to --out; False if it ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if any(".tmp" in n or ".edgekit-" in n for n in _temps(folder)):
            return True
        time.sleep(0.02)
    return False


def _interrupt(proc: subprocess.Popen, sig: int, folder: Path, when: str | float) -> int:
    if when == "temp":
        _wait_for_temp(proc, folder)
    else:
        end = time.monotonic() + float(when)
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("edgekit did not stop within 120 s of the signal")
    assert "Traceback" not in err, err[-6000:]
    return proc.returncode


def _assert_clean(out: Path, finished: list[str], returncode: int) -> None:
    """An interrupted run left nothing finished-looking at `out`, and no temp or lock."""
    if returncode == 0:  # it finished before the signal: then the output must be whole
        for name in finished:
            assert (out / name).exists() if name else out.exists(), name
    else:
        # 130, or death by SIGINT (-2 here, also 130 in a shell): when the interrupt lands
        # in Python code that a framework runs through PyRun_String, CPython marks it
        # unhandled and re-raises SIGINT at exit even though edgekit handled it.
        assert returncode in INTERRUPTED, returncode
        if out.is_dir():
            assert not [n for n in finished if (out / n).exists()], sorted(os.listdir(out))
        else:
            assert not out.exists()
    assert _temps(out.parent) == [], _temps(out.parent)


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


# (command, input format, extra args, out name, files that mark a finished output)
COMMANDS = {
    "optimize": ("onnx", ["--profile", "x86-avx2"], "opt", ["model.onnx", "report.json"]),
    "convert": ("keras", ["--to", "tflite", "--no-verify"], "model.tflite", [""]),
    "deploy": ("keras", ["--profile", "x86-avx2", "--no-measure"], "bundle", ["manifest.json"]),
}

CASES = [
    ("optimize", signal.SIGINT, "temp"),
    ("optimize", signal.SIGTERM, 4.0),
    ("convert", signal.SIGTERM, "temp"),
    ("convert", signal.SIGINT, 2.0),
    ("deploy", signal.SIGINT, "temp"),
    ("deploy", signal.SIGTERM, 3.0),
]


@pytest.mark.parametrize(
    ("command", "sig", "when"),
    CASES,
    ids=[f"{c}-{signal.Signals(s).name}-{w}" for c, s, w in CASES],
)
def test_interrupted_run_leaves_nothing(
    tiny_models: dict[str, Path], work: Path, command: str, sig: int, when: str | float
) -> None:
    fmt, extra, out_name, finished = COMMANDS[command]
    model = tiny_models[fmt]
    before = _sha(model)
    out = work / out_name
    rc = _interrupt(_start(command, str(model), *extra, "--out", str(out)), sig, work, when)
    assert _sha(model) == before
    _assert_clean(out, finished, rc)


def test_ctrl_c_while_optimize_measures_latency_stops_the_run(
    tiny_models: dict[str, Path], work: Path
) -> None:
    """A Ctrl-C in a benchmark's steady state only ends `edgekit bench` early, keeping its
    samples; inside optimize it must stop the whole run (it used to finish and publish)."""
    fmt, extra, out_name, finished = COMMANDS["optimize"]
    out = work / out_name
    proc = _start("optimize", str(tiny_models[fmt]), *extra, "--out", str(out))
    assert proc.stderr is not None
    for line in proc.stderr:
        if "measuring latency" in line:
            break
    else:
        pytest.fail(f"optimize ended (rc {proc.wait()}) before its latency step")
    time.sleep(0.6)  # past the first run's load and 0.2 s warm-up: into steady state
    rc = _interrupt(proc, signal.SIGINT, work, 0)
    assert rc in INTERRUPTED, rc
    _assert_clean(out, finished, rc)


@pytest.mark.parametrize(
    "command", ["convert", "deploy", pytest.param("optimize", marks=pytest.mark.slow)]
)
def test_rerun_after_interrupt_succeeds(
    tiny_models: dict[str, Path], work: Path, command: str
) -> None:
    fmt, extra, out_name, finished = COMMANDS[command]
    model = tiny_models[fmt]
    before = _sha(model)
    out = work / out_name
    proc = _start(command, str(model), *extra, "--out", str(out))
    rc = _interrupt(proc, signal.SIGTERM, work, "temp")
    _assert_clean(out, finished, rc)
    result = run_cli(command, str(model), *extra, "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in finished:
        assert (out / name).exists() if name else out.exists(), name
    assert _temps(work) == []
    assert _sha(model) == before


def _wait_for_lock(proc: subprocess.Popen, lock: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not lock.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the first run never took its lock"
        time.sleep(0.02)


@pytest.mark.parametrize("command", ["optimize", "deploy", "convert"])
def test_second_run_on_same_out_fails_at_once(
    tiny_models: dict[str, Path], work: Path, command: str
) -> None:
    fmt, extra, out_name, _ = COMMANDS[command]
    model = tiny_models[fmt]
    out = work / out_name
    first = _start(command, str(model), *extra, "--out", str(out))
    try:
        _wait_for_lock(first, work / f".{out_name}.lock")
        started = time.monotonic()
        second = run_cli(command, str(model), *extra, "--out", str(out))
        assert_user_error(second, "another edgekit run is writing to", str(out))
        assert time.monotonic() - started < 60  # at once: it does not wait for the first
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert _temps(work) == []


def test_out_never_replaces_a_foreign_folder(tiny_models: dict[str, Path], work: Path) -> None:
    out = work / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file\n")
    for command in ("optimize", "deploy"):
        fmt, extra, _, _ = COMMANDS[command]
        result = run_cli(command, str(tiny_models[fmt]), *extra, "--out", str(out))
        assert_user_error(result, str(out), "did not write")
        assert sorted(os.listdir(out)) == ["notes.txt"]
        assert (out / "notes.txt").read_text() == "the user's own file\n"
    assert _temps(work) == []


def test_out_keeps_unrelated_files_next_to_it(tiny_models: dict[str, Path], work: Path) -> None:
    """convert writes one file: its neighbours in the folder are left alone."""
    (work / "notes.txt").write_text("keep me\n")
    result = run_cli(
        "convert", str(tiny_models["onnx"]), "--to", "openvino", "--out", str(work / "m.xml")
    )
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(work)) == ["m.bin", "m.xml", "notes.txt"]
    assert (work / "notes.txt").read_text() == "keep me\n"


def _slow_onnx(path: Path) -> Path:
    """A chain of 1024x1024 MatMuls: about a millisecond a run, so a bench is interruptible."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(6):
        w = (rng.standard_normal((1024, 1024)) / 32).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 1024])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_bench_max_time_stops_cleanly_with_samples_so_far(work: Path) -> None:
    from edgekit.bench.report import load_report

    model = _slow_onnx(work / "slow.onnx")
    out = work / "r.json"
    started = time.monotonic()
    result = run_cli(
        "bench", str(model), "--min-time", "60", "--max-time", "1.5", "--warmup", "3",
        "--out", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 45
    report = load_report(out)  # a whole, valid report
    assert report["protocol"]["stop_reason"] == "max_time"
    assert len(report["samples_ns"]) == report["latency_ms"]["n"] > 0
    assert any("--max-time" in w for w in report["warnings"])
    assert _temps(work) == []


def test_bench_interrupted_in_steady_state_keeps_the_samples(work: Path) -> None:
    """SIGTERM (like Ctrl-C) in the steady state ends the run; the report holds what was measured."""
    from edgekit.bench.report import load_report

    model = _slow_onnx(work / "slow.onnx")
    before = _sha(model)
    out = work / "r.json"
    proc = _start(
        "bench", str(model), "--min-time", "60", "--warmup", "1", "--out", str(out), "--quiet"
    )
    rc = _interrupt(proc, signal.SIGTERM, work, 5.0)
    assert _sha(model) == before
    assert rc == 0, rc
    report = load_report(out)
    assert report["protocol"]["stop_reason"] == "interrupted"
    assert len(report["samples_ns"]) > 0
    assert _temps(work) == []


# ----------------------------------------------------------------------------- every phase

# A signal must stop a run within a second or two, whatever it is doing; on two cores
# shared by a whole team the bound asserted here is looser than that target.
STOP_SECONDS = 5.0
# SIGTERM is turned into KeyboardInterrupt by the CLI (exit 130); before the CLI's
# handler is installed (the first instants of the interpreter) it kills as SIGTERM does.
STOPPED = {signal.SIGINT: INTERRUPTED, signal.SIGTERM: (130, -signal.SIGTERM, 143)}


class _Child:
    """`edgekit ARGS` in its own session, with its stderr lines collected as they come."""

    def __init__(self, *args: str) -> None:
        import threading

        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgekit", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            preexec_fn=interruptible,
            start_new_session=True,  # its worker processes share its group, to be counted
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while not any(text in ln for ln in self.lines):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.kill()
                pytest.fail(f"no {text!r} on stderr (rc {self.proc.returncode}): {self.lines}")
            time.sleep(0.01)

    def wait_until(self, seconds_after_start: float) -> None:
        time.sleep(max(0.0, self.started + seconds_after_start - time.monotonic()))

    def stop(self, sig: int) -> tuple[int, float]:
        """Send `sig`; return the exit status and the seconds it took to end."""
        assert self.proc.poll() is None, ("it ended before the signal", self.lines)
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=STOP_SECONDS + 60)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"edgekit did not stop within {STOP_SECONDS + 60} s of the signal")
        took = time.monotonic() - sent
        self._reader.join(timeout=10)
        # the run's worker processes (bench --processes) end with it
        end = time.monotonic() + STOP_SECONDS
        while self._group_alive() and time.monotonic() < end:
            time.sleep(0.05)
        assert not self._group_alive(), "a worker process outlived the run"
        err = "".join(self.lines)
        assert "Traceback" not in err, err[-6000:]
        return rc, took

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        if self._group_alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="module")
def bench_timing(tmp_path_factory: pytest.TempPathFactory, shared_models: Path) -> dict:
    """When each bench phase begins, measured once on this machine: a whole quick run's
    wall time and its report's phases_ms."""
    import json

    folder = tmp_path_factory.mktemp("bench-timing")
    model = _slow_onnx(folder / "slow.onnx")
    timing: dict = {"slow": model, "resnet": shared_models / "light_resnet50.onnx"}
    for key in ("slow", "resnet"):
        started = time.monotonic()
        result = run_cli("bench", str(timing[key]), "--warmup", "0", "--min-runs", "1",
                         "--min-time", "0", "--json")  # fmt: skip
        wall = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        ph = json.loads(result.stdout)["phases_ms"]
        # steady state starts about when the run ended minus its steady state and exit
        ready = wall - ph["steady"] / 1000 - 0.2
        timing[key, "ready"] = ready
        timing[key, "loading"] = (
            ready - (ph["first_inference"] + ph["bind"] + ph["load"] / 2) / 1000
        )
    return timing


# (phase, bench arguments, model, seconds after the run is ready (None: mid-load))
BENCH_PHASES = {
    "loading": ([], "resnet", None),
    "warm-up": (["--warmup", "60s", "--threads", str(4 * (os.cpu_count() or 1))], "slow", 1.5),
    "measuring": (["--warmup", "0", "--min-time", "60"], "slow", 1.5),
    "measuring-throughput": (
        ["--warmup", "0", "--min-time", "60", "--mode", "throughput", "--concurrency", "2"],
        "slow",
        1.5,
    ),
    "measuring-processes": (["--warmup", "0", "--min-time", "60", "--processes", "3"], "slow", 3.0),
}
BENCH_CASES = [(phase, sig) for phase in BENCH_PHASES for sig in (signal.SIGINT, signal.SIGTERM)]


@pytest.mark.parametrize(
    ("phase", "sig"), BENCH_CASES, ids=[f"{p}-{signal.Signals(s).name}" for p, s in BENCH_CASES]
)
def test_bench_stops_at_once_in_every_phase(
    bench_timing: dict, work: Path, phase: str, sig: int
) -> None:
    """Ctrl-C or SIGTERM in any phase of bench ends it within STOP_SECONDS. In a
    single-process steady state that is bench's documented early stop (exit 0, a whole
    report of the samples so far, stop reason "interrupted"); anywhere else, exit 130 and
    no report. Never a half-written report, a temp file, or a worker left running."""
    from edgekit.bench.report import load_report

    args, key, after = BENCH_PHASES[phase]
    out = work / "r.json"
    child = _Child("bench", str(bench_timing[key]), *args, "--out", str(out), "--quiet")
    child.wait_until(
        bench_timing[key, "loading"] if after is None else bench_timing[key, "ready"] + after
    )
    rc, took = child.stop(sig)
    print(f"{phase} {signal.Signals(sig).name}: exit {rc}, stopped in {took:.2f} s")
    assert took < STOP_SECONDS, (phase, took)
    if phase in ("measuring", "measuring-throughput"):
        assert rc == 0, rc
        report = load_report(out)
        assert report["protocol"]["stop_reason"] == "interrupted"
        assert len(report["samples_ns"]) > 0
    else:
        assert rc in STOPPED[sig], rc
        assert not out.exists()
    assert _temps(work) == []


# (phase, the stderr line that starts it, seconds to wait after it)
OPTIMIZE_PHASES = {
    "loading": (None, 2.0),
    "converting": ("converting the source to the profile's format", 0.0),
    "quantizing": ("making candidate: int8", 0.1),
    "measuring": ("measuring latency", 0.6),
}
# Both signals take one handler: SIGTERM in the two late phases (the longest cases, about
# 20 s each) adds no path that SIGINT there and SIGTERM in the early phases leave out.
OPTIMIZE_CASES = [
    pytest.param(p, sig, id=f"{p}-{signal.Signals(sig).name}",
                 marks=[pytest.mark.slow] if sig == signal.SIGTERM and i >= 2 else [])
    for i, p in enumerate(OPTIMIZE_PHASES) for sig in (signal.SIGINT, signal.SIGTERM)
]  # fmt: skip


@pytest.mark.parametrize(("phase", "sig"), OPTIMIZE_CASES)
def test_optimize_stops_at_once_in_every_phase(
    tiny_models: dict[str, Path], work: Path, phase: str, sig: int
) -> None:
    """optimize of a Keras model (loading TensorFlow, converting with tf2onnx, quantizing
    with ONNX Runtime, measuring with the harness) stops within STOP_SECONDS of a signal
    in each phase, exits 130, and leaves no --out, temp folder or lock."""
    model = tiny_models["keras"]
    before = _sha(model)
    out = work / "opt"
    child = _Child("optimize", str(model), "--profile", "x86-avx2", "--out", str(out))
    line, after = OPTIMIZE_PHASES[phase]
    if line is None:
        child.wait_until(after)
        assert not any(ln.startswith("... ") for ln in child.lines), child.lines  # still loading
    else:
        child.wait_for(line)
        time.sleep(after)
    rc, took = child.stop(sig)
    print(f"{phase} {signal.Signals(sig).name}: exit {rc}, stopped in {took:.2f} s")
    assert took < STOP_SECONDS, (phase, took)
    assert rc in STOPPED[sig], (rc, child.lines[-5:])
    assert not out.exists()
    assert _temps(work) == []
    assert _sha(model) == before
