"""Sweeps on a real local Dask cluster (two single-thread workers on 127.0.0.1).

Models are tiny ONNX graphs built here; every job runs the real optimize (and deploy).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgekit.errors import InputError
from tests.conftest import ROOT, interruptible, run_cli, tiny_onnx

pytest.importorskip("distributed", reason="dask distributed not installed (edgekit[sweep])")

GRID = """
models = ["a.onnx", "b.onnx"]
profiles = ["x86-avx2", "x86-avx512"]
[[configs]]
name = "fp32"
quantize = "none"
[[configs]]
name = "int8"
quantize = "int8"
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sweep_models")
    tiny_onnx(folder / "a.onnx", width=16, layers=2)
    tiny_onnx(folder / "b.onnx", width=32, layers=3)
    return folder


@pytest.fixture(scope="module")
def engine():
    from edgekit.sweep import DaskEngine

    eng = DaskEngine(workers=2)
    yield eng
    eng.close()


def _sweep_file(models: Path, name: str, text: str) -> Path:
    path = models / name
    path.write_text(text)
    return path


def test_sweep_file_errors_are_one_sentence(models):
    from edgekit.sweep import load_sweep

    cases = {
        'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\nthreads = 2\n': "unknown key 'threads'",
        'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nprune = 1.5\n': "between 0 and 1",
        'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nthreads = 99999999999999999999\n': "out of range",
        'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nseed = -1\n': "seed = -1 is out of range",
        'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nmax_accuracy_drop = nan\n': "out of range",
        'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nquant = "int8"\n': "unknown key 'quant'",
        'models = ["nope.onnx"]\nprofiles = ["x86-avx2"]\n': "does not exist",
        'models = ["a.onnx"]\nprofiles = ["no-such-profile"]\n': "no-such-profile",
        'models = []\nprofiles = ["x86-avx2"]\n': "non-empty list",
        'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nname = "x"\n[[configs]]\nname = "x"\n': "two configs",
    }  # fmt: skip
    for text, fragment in cases.items():
        with pytest.raises(Exception, match=fragment) as info:
            load_sweep(_sweep_file(models, "bad.toml", text))
        assert isinstance(info.value, Exception) and "\n" not in str(info.value)
        assert isinstance(info.value, InputError) or type(info.value).__name__ == "ProfileError"


def test_job_ids_hash_model_profile_config_and_version(models):
    from edgekit import __version__
    from edgekit.sweep import job_id, load_sweep

    jobs = load_sweep(_sweep_file(models, "grid.toml", GRID)).jobs
    assert len(jobs) == 8 and len({j.id for j in jobs}) == 8
    again = load_sweep(_sweep_file(models, "grid.toml", GRID)).jobs
    assert [j.id for j in jobs] == [j.id for j in again]
    j = jobs[0]
    base = {**j.config, "bundle": True}
    assert job_id(j.model_sha256, j.profile, base, __version__) == j.id
    assert job_id(j.model_sha256, j.profile, base, __version__ + "x") != j.id
    assert job_id(j.model_sha256, j.profile, {**base, "threads": 2}, __version__) != j.id


def test_grid_on_two_workers(models, engine, tmp_path):
    from edgekit.sweep import load_sweep, run_sweep

    sweep = load_sweep(_sweep_file(models, "grid.toml", GRID))
    states = []
    result = run_sweep(sweep, tmp_path / "out", engine=engine, progress=states.append)
    s = result.summary
    assert s["counts"]["ok"] == 8, [(r["label"], r["status"], r.get("error"), r.get("traceback"))
                                    for r in s["jobs"] if r["status"] != "ok"]  # fmt: skip
    lines = (tmp_path / "out" / "sweep.jsonl").read_text().splitlines()
    assert len(lines) == 8 and {json.loads(x)["id"] for x in lines} == {j.id for j in sweep.jobs}
    workers = {r["where"]["worker"] for r in s["jobs"]}
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    cpus = {r["where"]["worker"]: tuple(r["where"]["cpus"]) for r in s["jobs"]}
    if (os.cpu_count() or 1) >= 2:  # two workers, one core each, never the same one
        assert all(len(c) == 1 for c in cpus.values()) and len(set(cpus.values())) == 2
    for r in s["jobs"]:
        assert r["attempt"] == 1 and r["where"]["host"]["hostname"]
        assert r["metrics"]["latency_ms"] > 0 and r["metrics"]["size_bytes"] > 0
        assert Path(r["report"]).is_file() and (Path(r["bundle"]) / "manifest.json").is_file()
        assert (tmp_path / "out" / "jobs" / r["id"] / "result.json").is_file()
    assert set(s["pareto"]) == {"x86-avx2", "x86-avx512"}
    assert all(fr["size"] for fr in s["pareto"].values())
    assert states[-1]["done"] == 8 and states[-1]["running"] == 0
    page = result.html_path.read_text()
    assert page.count("data:image/png;base64,") >= 2 and "http" not in page.replace(
        "http-equiv", ""
    )
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["counts"]["ok"] == 8
    with pytest.raises(InputError, match="already holds a sweep; add --resume"):
        run_sweep(sweep, tmp_path / "out", engine=engine)
    again = run_sweep(sweep, tmp_path / "out", engine=engine, resume=True)
    assert again.ran == [] and again.summary["counts"]["ok"] == 8


def test_deterministic_failure_is_recorded_not_retried(models, engine, tmp_path):
    # an op no runtime has a kernel for: ONNX Runtime refuses the model, every time
    import onnx
    from onnx import TensorProto, helper

    from edgekit.sweep import load_sweep, run_sweep

    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="edgekit.test")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("edgekit.test", 1)]),
              models / "bad.onnx")  # fmt: skip
    text = 'models = ["bad.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nname = "bad"\nquantize = "none"\n'

    result = run_sweep(load_sweep(_sweep_file(models, "fail.toml", text)), tmp_path / "out",
                       engine=engine, retries=3)  # fmt: skip
    (rec,) = result.summary["jobs"]
    assert rec["status"] == "failed" and rec["attempt"] == 1
    assert rec["error"] and "\n" not in rec["error"] and "NoSuchOp" in rec["error"]
    assert len(list((tmp_path / "out" / "jobs" / rec["id"]).glob("attempt-*.pid"))) == 1
    again = run_sweep(
        load_sweep(models / "fail.toml"), tmp_path / "out", engine=engine, resume=True
    )
    assert again.ran == []  # a deterministic failure is finished: --resume does not rerun it


def test_killed_worker_job_is_retried(models, engine, tmp_path):
    from edgekit.sweep import load_sweep, run_sweep

    text = 'models = ["b.onnx"]\nprofiles = ["x86-avx2"]\n[[configs]]\nname = "kill"\nquantize = "int8"\n'
    sweep = load_sweep(_sweep_file(models, "kill.toml", text))
    marker = tmp_path / "out" / "jobs" / sweep.jobs[0].id / "attempt-1.pid"
    killed: list[int] = []

    def kill_first_attempt() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            if marker.is_file() and marker.read_text().strip():
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    t = threading.Thread(target=kill_first_attempt)
    t.start()
    result = run_sweep(sweep, tmp_path / "out", engine=engine, retries=2)
    t.join()
    (rec,) = result.summary["jobs"]
    assert killed, "the first attempt never started"
    assert rec["status"] == "ok" and rec["attempt"] == 2, rec
    assert rec["where"]["pid"] != killed[0]


@pytest.mark.slow
def test_cli_resume_after_interrupt_runs_only_what_was_missing(models, tmp_path):
    text = ('models = ["a.onnx"]\nprofiles = ["x86-avx2"]\n'
            + "".join(f'[[configs]]\nname = "t{i}"\nquantize = "none"\nthreads = 1\nseed = {i}\n'
                      for i in range(3)))  # fmt: skip
    sweep_file = _sweep_file(models, "resume.toml", text)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "EDGEKIT_PROFILE_PATH"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "sweep", str(sweep_file), "--out", str(out),
                             "--workers", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)  # fmt: skip
    jsonl = out / "sweep.jsonl"
    deadline = time.monotonic() + 120
    while not (jsonl.is_file() and jsonl.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first = [json.loads(x)["id"] for x in jsonl.read_text().splitlines()]
    assert 1 <= len(first) < 3
    r = run_cli("sweep", str(sweep_file), "--out", str(out), "--resume", "--workers", "1")
    assert r.returncode == 0, r.stderr
    ids = [json.loads(x)["id"] for x in jsonl.read_text().splitlines()]
    assert len(ids) == 3 and len(set(ids)) == 3 and ids[: len(first)] == first
    assert "t0" in r.stdout and "wrote" in r.stdout


def test_engine_choice_errors():
    from edgekit.sweep import make_engine

    with pytest.raises(InputError, match="--engine dask needs --address"):
        make_engine("dask", None)
    with pytest.raises(InputError, match="--address is for --engine dask"):
        make_engine("local", "tcp://127.0.0.1:8786")


# --- device = NAME: the job's bundle is timed on an SSH device (tests/sshd.py's loopback server)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    from tests.sshd import SSHDUnavailable, loopback_sshd

    pytest.importorskip("asyncssh", reason="asyncssh not installed (edgekit[remote])")
    try:
        with loopback_sshd(tmp_path_factory.mktemp("sshd")) as facts:
            yield facts
    except SSHDUnavailable as exc:
        pytest.skip(str(exc))


DEVICE_SWEEP = """models = ["a.onnx"]
profiles = ["x86-avx2"]
device = "loop"
devices_file = "{devices}"
[[configs]]
name = "fp32"
quantize = "none"
"""


def test_sweep_times_its_bundle_on_an_ssh_device(models, engine, sshd, tmp_path):
    from edgekit.bench import load_report
    from edgekit.sweep import load_sweep, run_sweep
    from tests.sshd import devices_toml

    devices = devices_toml(tmp_path / "devices.toml", sshd, sshd["host_key"])
    sweep = load_sweep(_sweep_file(models, "device.toml", DEVICE_SWEEP.format(devices=devices)))
    assert sweep.jobs[0].config["device"] == "loop"  # part of the job id, like any config key
    summary = run_sweep(sweep, tmp_path / "out", engine=engine).summary
    (rec,) = summary["jobs"]
    assert rec["status"] == "ok", (rec.get("error"), rec.get("traceback"))
    assert set(summary["pareto"]) == {"x86-avx2 @ loop"}  # never one front with host figures
    rep = load_report(rec["device"]["report"])
    assert rep["remote"]["device"] == "loop" and rep["environment"]["hostname"]
    m = rec["metrics"]
    assert m["latency_on"] == "loop" and m["latency_ms"] == rep["latency_ms"]["median"]
    assert m["host_latency_ms"] > 0  # the host's figure is kept apart


@pytest.mark.slow  # ~26 s here: the job is built twice (the run and its --resume)
def test_unreachable_device_is_a_job_error_that_resume_reruns(models, engine, tmp_path):
    pytest.importorskip("asyncssh", reason="asyncssh not installed (edgekit[remote])")
    from edgekit.sweep import load_sweep, run_sweep
    from tests.sshd import devices_toml, free_port, keygen

    facts = {"port": free_port(), "user": "nobody", "key": str(tmp_path / "k"),
             "python": "python3", "workdir": "w"}  # fmt: skip
    devices = devices_toml(tmp_path / "devices.toml", facts, keygen(tmp_path / "k"))
    path = _sweep_file(models, "down.toml", DEVICE_SWEEP.format(devices=devices))
    out = tmp_path / "out"
    (rec,) = run_sweep(load_sweep(path), out, engine=engine, retries=3).summary["jobs"]
    assert rec["status"] == "error" and rec["attempt"] == 1, rec  # recorded, not retried
    assert "cannot be reached" in rec["error"] and "\n" not in rec["error"]
    again = run_sweep(load_sweep(path), out, engine=engine, resume=True)
    assert again.ran == [rec["id"]]  # the device may be back: --resume runs the job again


def test_unknown_device_is_refused_when_the_sweep_file_is_read(models, tmp_path):
    from tests.conftest import assert_user_error, invoke_cli

    devices = tmp_path / "devices.toml"
    devices.write_text('[devices.lab]\nhost = "h"\nuser = "u"\nkey = "k"\nprofile = "rpi4"\n')
    text = DEVICE_SWEEP.format(devices=devices).replace('device = "loop"', 'device = "nope"')
    r = invoke_cli(
        "sweep", str(_sweep_file(models, "nope.toml", text)), "--out", str(tmp_path / "o")
    )
    assert_user_error(r, "device = 'nope' is not a device of", "it names: lab")
    text += '[[configs]]\nname = "int8"\nquantize = "int8"\ndevice = "other"\n'
    text = text.replace('device = "nope"', 'device = "lab"')
    r = invoke_cli(
        "sweep", str(_sweep_file(models, "nope.toml", text)), "--out", str(tmp_path / "o")
    )
    assert_user_error(r, "configs[1].device = 'other' is not a device of")
    r = invoke_cli("sweep", str(_sweep_file(models, "nope.toml", "bundle = false\n" + text)),
                   "--out", str(tmp_path / "o"))  # fmt: skip
    assert_user_error(r, "a device times the job's bundle; set bundle = true")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # ~36 s here: two Dask processes and a CLI sweep start cold
def test_sweep_on_an_external_dask_scheduler(models, tmp_path):
    """`--engine dask --address`: a scheduler and one worker the user runs (`dask scheduler`,
    `dask worker --resources bench=1 --nthreads 1`) on 127.0.0.1; the sweep leaves them up."""
    import psutil

    from edgekit.sweep.engine import BENCH_RESOURCE, WORKER_ENV
    from tests.sshd import free_port

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, **WORKER_ENV, "PYTHONPATH": str(ROOT)}
    resources = ",".join(f"{k}={v}" for k, v in BENCH_RESOURCE.items())
    dask = [sys.executable, "-m", "dask"]
    commands = {
        "scheduler": [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                      "--no-dashboard"],
        "worker": [*dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                   "--resources", resources, "--name", "ext-0", "--no-dashboard"],
    }  # fmt: skip
    procs: list[subprocess.Popen] = []
    family: list[psutil.Process] = []
    try:
        for name, argv in commands.items():
            with open(tmp_path / f"{name}.log", "w") as log:
                procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log))
        text = 'models = ["a.onnx"]\nprofiles = ["x86-avx2"]\nbundle = false\n[[configs]]\nname = "fp32"\nquantize = "none"\n'
        r = run_cli("sweep", str(_sweep_file(models, "ext.toml", text)), "--out",
                    str(tmp_path / "out"), "--engine", "dask", "--address", address, "--json")  # fmt: skip
        assert r.returncode == 0, (r.stderr, (tmp_path / "worker.log").read_text()[-2000:])
        s = json.loads(r.stdout)
        assert s["engine"]["engine"] == "dask" and s["engine"]["address"] == address
        (rec,) = s["jobs"]
        assert rec["status"] == "ok" and rec["where"]["worker_name"] == "ext-0"
        assert rec["where"]["worker"].startswith("tcp://127.0.0.1:")
        assert rec["metrics"]["latency_ms"] > 0
        assert all(p.poll() is None for p in procs)  # a user's cluster is left running
        family = [psutil.Process(p.pid) for p in procs]
        family += [c for p in family for c in p.children(recursive=True)]  # the nanny's worker
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(30)
    _, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, alive  # nothing of the cluster outlives the test
