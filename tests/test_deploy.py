"""deploy -> bundle -> run: limits before writing, checksums, safe archives, the standalone runner."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, fresh_venv, installed, run_cli

from edgekit.deploy import (
    check_limits,
    deploy,
    estimate_arena_bytes,
    extract_bundle,
    load_bundle,
    run_bundle,
)
from edgekit.deploy.host import host_placement
from edgekit.deploy.readme import bundle_readme
from edgekit.errors import BundleError, LimitError
from edgekit.model import load
from edgekit.profiles import Profile, list_profiles, load_profile
from edgekit.runtimes import get_runtime


def runtime_requirement(prof: Profile) -> dict[str, object]:
    """What a bundle for `prof` pins, asked of the runtime that serves it."""
    return get_runtime(host_placement(prof)[0]).bundle_requirement(prof.providers)


def _save(model: object, path: Path) -> Path:
    model.save(path)  # type: ignore[attr-defined]
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import keras

    from edgekit.convert import convert

    root = tmp_path_factory.mktemp("deploy")
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    tiny = keras.Model(inp, keras.layers.Dense(5, activation="softmax", name="probs")(x))
    seq_in = keras.Input((None, 4), name="seq")
    seq = keras.Model(seq_in, keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(3)(seq_in)))
    big_in = keras.Input((640,), name="x")
    big = keras.Model(big_in, keras.layers.Dense(640)(big_in))  # 1.6 MB of float weights
    wide_in = keras.Input((96, 96, 8), name="img")
    wide = keras.Model(wide_in, keras.layers.Conv2D(8, 1)(wide_in))  # 295 KB activations
    out = {
        "tiny": _save(tiny, root / "tiny.keras"),
        "seq": _save(seq, root / "seq.keras"),
        "big": _save(big, root / "big.keras"),
        "wide": _save(wide, root / "wide.keras"),
    }
    (root / "preprocess.json").write_text(json.dumps({"kind": "image", "scale": 1 / 255}))
    fixed = {"x": (1, 640), "img": (1, 96, 96, 8), "image": (1, 8, 8, 3)}
    for name in ("big", "wide", "tiny"):
        shape = {
            k: v
            for k, v in fixed.items()
            if k in {"big": "x", "wide": "img", "tiny": "image"}[name]
        }
        out[f"{name}_tflite"] = convert(out[name], "tflite", root / f"{name}.tflite",
                                        input_shapes=shape).model.path  # fmt: skip
    return out


def _runnable() -> list[str]:
    names = []
    for p in list_profiles():
        if p.runnable_here() and host_placement(p)[3] is None:
            names.append(p.name)
    return names + ["rpi4"]  # an aarch64 LiteRT target: bundle checked on this host's LiteRT


# --- limits, each before anything is written ---------------------------------------------


def test_cortex_m_model_size_limit(models: dict[str, Path]) -> None:
    with pytest.raises(LimitError, match=r"over cortex-m's max_model_bytes of 1 MiB"):
        check_limits(load(models["big_tflite"]), load_profile("cortex-m"))


def test_cortex_m_ram_limit(models: dict[str, Path]) -> None:
    m = load(models["wide_tflite"])
    assert estimate_arena_bytes(m) >= 2 * 96 * 96 * 8 * 4
    with pytest.raises(LimitError, match=r"over cortex-m's max_arena_bytes of 256 KiB"):
        check_limits(m, load_profile("cortex-m"))


def test_int8_only_refuses_float_ops(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(LimitError, match=r"runs int8 only \(limits.int8_only\)") as err:
        check_limits(load(models["tiny_tflite"]), load_profile("cortex-m"))
    assert "CONV_2D" in str(err.value)
    # Through deploy, with an optimizer that leaves the model in float: refused, nothing written.
    out = tmp_path / "b"
    with pytest.raises(LimitError, match="int8_only"):
        deploy(models["tiny"], "cortex-m", out, input_shapes={"image": (1, 8, 8, 3)},
               optimizer=lambda m, p, prec, work: load(models["tiny_tflite"]),
               measure=False)  # fmt: skip
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_static_shapes_on_intel_npu(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "npu"
    with pytest.raises(LimitError) as err:
        deploy(models["seq"], "intel-npu", out, precision="fp16", measure=False)
    msg = str(err.value)
    assert "static shapes (limits.static_shapes)" in msg and "--input-shape seq=" in msg
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # With the shape given, it deploys.
    b = deploy(models["seq"], "intel-npu", out, precision="fp16", measure=False,
               input_shapes={"seq": (1, 5, 4)})  # fmt: skip
    assert b.manifest["signature"]["inputs"][0]["shape"] == [1, 5, 4]


def test_cli_limit_error_is_one_sentence(models: dict[str, Path], tmp_path: Path) -> None:
    r = run_cli("deploy", str(models["seq"]), "--profile", "intel-npu", "--precision", "fp16",
                "--out", str(tmp_path / "b"))  # fmt: skip
    assert_user_error(r, "limits.static_shapes")
    assert not (tmp_path / "b").exists()


# --- deploy -> run round trips -------------------------------------------------------------


@pytest.mark.parametrize("profile", _runnable())
def test_deploy_run_round_trip(models: dict[str, Path], tmp_path: Path, profile: str) -> None:
    import keras

    prof = load_profile(profile)
    precision = next(p for p in prof.precision if p in ("fp32", "fp16"))
    b = deploy(models["tiny"], prof, tmp_path / "bundle", precision=precision)
    m = b.manifest
    assert m["schema_version"] == 1 and m["profile"]["name"] == profile
    assert m["format"] == prof.format and m["precision"] == precision
    assert m["measurements"]["parity"]["passed"]
    assert m["measurements"]["parity"]["inputs"] == {"source": "generated", "count": 4, "seed": 0}
    assert m["measurements"]["latency"]["latency_ms"]["median"] > 0
    assert m["preprocessing"] == {"kind": "image", "scale": 1 / 255}
    assert set(m["files"]) >= {"run.py", "requirements.txt", "README.md", m["model"]["entry"]}
    if prof.arch != "x86_64":
        assert m["measurements"]["measured_on"] == "host"
    req = (b.path / "requirements.txt").read_text()
    assert runtime_requirement(prof)["requirement"] in req and "numpy" in req

    x = np.random.default_rng(1).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    expected = keras.saving.load_model(models["tiny"])(x).numpy()
    np.savez(tmp_path / "in.npz", x)
    res = run_bundle(b.path, tmp_path / "in.npz", tmp_path / "out.npz")
    got = next(iter(res["outputs"].values()))
    atol = 1e-2 if precision == "fp16" else 1e-5
    np.testing.assert_allclose(got, expected, atol=atol)
    with np.load(tmp_path / "out.npz") as saved:
        np.testing.assert_allclose(next(iter(saved.values())), got)

    # The standalone runner, with edgekit nowhere on its path.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-I", "run.py", "--input", str(tmp_path / "in.npz"),
                        "--output", str(tmp_path / "run.npz")], cwd=b.path, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "run.npz") as ran:
        np.testing.assert_allclose(next(iter(ran.values())), expected, atol=atol)


@pytest.mark.skipif(
    not __import__("edgekit.devices").devices.cpu()["bf16"],
    reason="this CPU has no AVX-512 BF16 or AMX",
)
def test_a_bf16_bundle_records_and_applies_its_inference_precision(
    models: dict[str, Path], tmp_path: Path
) -> None:
    b = deploy(models["tiny"], "x86-avx512", tmp_path / "bundle", precision="bf16")
    m = b.manifest
    assert m["precision"] == "bf16" and m["runtime"]["inference_precision"] == "bf16"
    assert m["runtime"]["options"] == {"INFERENCE_PRECISION_HINT": "bf16"}
    assert (
        m["measurements"]["parity"]["passed"] and m["measurements"]["parity"]["precision"] == "bf16"
    )
    assert m["measurements"]["latency"]["inference_precision"]["ran"] == "bf16"
    # the weights ship fp32: OpenVINO computes in bf16 because run.py compiles it so
    import openvino as ov

    xml = b.path / m["model"]["entry"]
    assert {op.get_element_type().get_type_name() for op in ov.Core().read_model(str(xml))
            .get_ops() if op.get_type_name() == "Constant"} <= {"f32", "i64", "i32"}  # fmt: skip
    x = np.random.default_rng(1).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-I", "run.py", "--input", str(tmp_path / "in.npz"),
                        "--output", str(tmp_path / "run.npz")], cwd=b.path, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    f32 = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    with np.load(tmp_path / "run.npz") as ran:
        got = next(iter(ran.values()))
    np.testing.assert_allclose(got, f32, atol=5e-2)
    assert not np.array_equal(got, f32), "run.py must compile the model to compute in bf16"


def test_cli_deploy_and_run(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "b"
    r = run_cli("deploy", str(models["tiny"]), "--profile", "x86-avx2", "--precision", "fp32",
                "--out", str(out), "--archive", "--no-measure")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "converted via keras -> onnx" in r.stdout and "parity: max |err|" in r.stdout
    assert (tmp_path / "b.tar.gz").is_file()
    r = run_cli("run", str(out), "--output", str(tmp_path / "o.npz"))
    assert r.returncode == 0, r.stderr
    assert "onnxruntime" in r.stdout and (tmp_path / "o.npz").is_file()
    # The archive runs too, extracted inside a folder of its own.
    r = run_cli("run", str(tmp_path / "b.tar.gz"))
    assert r.returncode == 0, r.stderr


# --- tampering, archives, and the output folder ---------------------------------------------


@pytest.fixture(scope="module")
def bundle(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    return deploy(models["tiny"], "x86-avx2", root / "b", precision="fp32", measure=False,
                  archive=True).path  # fmt: skip


def test_a_changed_byte_is_refused(bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="file 'model.onnx' does not match its sha256"):
        load_bundle(copy)
    assert_user_error(run_cli("run", str(copy)), "model.onnx", "sha256")
    r = subprocess.run([sys.executable, "run.py"], cwd=copy, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 2 and "model.onnx does not match its sha256" in r.stderr


def test_bench_reads_the_bundle(bundle: Path) -> None:
    b = load_bundle(bundle)
    assert b.model_path == bundle / "model.onnx" and b.runtime == "onnxruntime"
    assert b.device == "CPU" and b.provider == "CPUExecutionProvider"


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            data = b"x" if m.isfile() else None
            if data is not None:
                m.size = 1
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../evil.txt", "points outside"),
        ("b/../../evil.txt", "points outside"),
        ("/tmp/evil.txt", "points outside"),
        ("link", "is a link"),
        ("dev", "device or special file"),
    ],
)
def test_archive_extraction_refuses_unsafe_members(tmp_path: Path, member: str, why: str) -> None:
    info = tarfile.TarInfo(member)
    if member == "link":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif member == "dev":
        info.type = tarfile.CHRTYPE
    arc = _tar(tmp_path / "evil.tar.gz", [tarfile.TarInfo("b/manifest.json"), info])
    dest = tmp_path / "dest"
    with pytest.raises(BundleError, match=why):
        extract_bundle(arc, dest)
    assert not (tmp_path / "evil.txt").exists() and not dest.exists()


def test_archive_round_trip(bundle: Path, tmp_path: Path) -> None:
    b = load_bundle(bundle.parent / "b.tar.gz", extract_to=tmp_path / "x")
    assert b.path == tmp_path / "x" / "b" and b.model_path.is_file()


def test_out_folder_with_foreign_files_is_left_alone(
    models: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="notes.txt"):
        deploy(models["tiny"], "x86-avx2", out, precision="fp32", measure=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folders left


def test_redeploy_replaces_its_own_bundle(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "b"
    first = deploy(models["tiny"], "x86-avx2", out, precision="fp32", measure=False)
    second = deploy(models["tiny"], "x86-avx512", out, precision="fp32", measure=False)
    assert first.manifest["format"] == "onnx" and second.manifest["format"] == "openvino"
    assert not (out / "model.onnx").exists() and (out / "model.xml").is_file()
    load_bundle(out)


def test_int8_precision_goes_through_the_optimizer_hook(
    models: dict[str, Path], tmp_path: Path
) -> None:
    calls = []

    def fake(model, profile, precision, work):  # noqa: ANN001, ANN202
        calls.append((model.path.name, profile.name, precision))
        raise LimitError("fake optimizer was called")

    with pytest.raises(LimitError, match="fake optimizer"):
        deploy(models["tiny"], "x86-avx2", tmp_path / "b", optimizer=fake, measure=False)
    assert calls == [("tiny.keras", "x86-avx2", "int8")]


def test_coral_readme_names_the_compiler_command() -> None:
    prof = load_profile("coral-edgetpu")
    text = bundle_readme(prof, "model.tflite", runtime_requirement(prof), "int8")
    assert "edgetpu_compiler --show_operations --out_dir . model.tflite" in text


@pytest.mark.slow
def test_runner_installs_into_a_fresh_venv(bundle: Path, tmp_path: Path) -> None:
    """Only requirements.txt in a new venv: run.py must work without edgekit or TensorFlow."""
    py = fresh_venv(bundle / "requirements.txt", tmp_path / "venv")
    r = subprocess.run([py, "run.py", "--output", str(tmp_path / "o.npz")], cwd=bundle,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.npz").is_file()
    freeze = installed(py)
    assert "edgekit" not in freeze and "tensorflow" not in freeze


def test_profile_auto_picks_the_fastest_runnable_profile(
    models: dict[str, Path], tmp_path: Path
) -> None:
    lines: list[str] = []
    b = deploy(models["tiny"], "auto", tmp_path / "b", precision="fp32", measure=False,
               log=lines.append)  # fmt: skip
    auto = b.manifest["auto_profile"]
    times = [c["median_ms"] for c in auto["candidates"]]
    assert auto["chosen"] == b.manifest["profile"]["name"] == auto["candidates"][0]["profile"]
    assert times == sorted(times) and len({c["profile"] for c in auto["candidates"]}) >= 2
    assert auto["threads"] == auto["candidates"][0]["threads"]
    assert b.manifest["runtime"]["threads"] == auto["threads"]
    assert any(
        ln.startswith(f"auto: chose {auto['chosen']}") and "runners-up" in ln for ln in lines
    )


def test_quantized_tflite_to_cortex_m_ships_as_it_is(shared_models: Path, tmp_path: Path) -> None:
    src = shared_models / "micro_speech_quantized.tflite"
    b = deploy(src, "cortex-m", tmp_path / "b", measure=False)
    m = b.manifest
    assert (
        m["precision"] == "int8"
        and m["optimization"]["reason"] == "the source is already quantized"
    )
    assert m["limits_checked"]["model_bytes"] == src.stat().st_size
    assert 0 < m["limits_checked"]["arena_bytes_estimate"] <= 256 * 1024
    assert m["limits_checked"]["float_ops"] == 0
    assert (b.path / "model.tflite").read_bytes() == src.read_bytes()
    assert "xxd -i model.tflite" in (b.path / "README.md").read_text()
    x = np.random.default_rng(0).integers(-128, 127, (1, 1960)).astype(np.int8)
    np.savez(tmp_path / "in.npz", x)
    out = run_bundle(b.path, tmp_path / "in.npz")["outputs"]
    from edgekit.runtimes import open_session

    with open_session(src) as s:
        (ref,) = s.run({s.signature.inputs[0].name: x}).values()
    np.testing.assert_array_equal(next(iter(out.values())), ref)


# --- the bundle's run.py, as a module ----------------------------------------------------


def test_run_py_is_the_runner_module(bundle: Path) -> None:
    from edgekit.deploy import runner

    assert (bundle / "run.py").read_bytes() == Path(runner.__file__).read_bytes()


def test_runner_imports_only_numpy_and_runtimes() -> None:
    """run.py runs where edgekit is not installed: stdlib, numpy and the target's runtime."""
    import ast

    from edgekit.deploy import runner

    tree = ast.parse(Path(runner.__file__).read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}  # fmt: skip
    roots |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module}  # fmt: skip
    # ExecuTorch's Python runtime takes torch tensors: torch comes with the executorch wheel
    runtimes = {"ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime", "openvino",
                "executorch", "torch"}  # fmt: skip
    assert roots - runtimes - {"numpy", "__future__"} <= set(sys.stdlib_module_names), roots
    assert "edgekit" not in roots


def test_runner_functions_on_a_real_bundle(bundle: Path, tmp_path: Path) -> None:
    import shutil

    from edgekit.deploy import runner

    x = np.random.default_rng(3).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    np.savez(tmp_path / "in.npz", image=x)
    outs = runner.run(str(bundle), str(tmp_path / "in.npz"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [n for n, _ in outs] == [o["name"] for o in manifest["signature"]["outputs"]]
    expected = run_bundle(bundle, tmp_path / "in.npz")["outputs"]
    np.testing.assert_allclose(outs[0][1], next(iter(expected.values())), rtol=1e-6)
    # Generated inputs follow the signature; a wrong .npz and a changed file exit with 2.
    (feed,) = runner.make_inputs(manifest["signature"], None)
    assert feed.shape == (1, 8, 8, 3) and feed.dtype == np.float32
    np.savez(tmp_path / "bad.npz", a=x, b=x)
    with pytest.raises(SystemExit) as bad:
        runner.make_inputs(manifest["signature"], str(tmp_path / "bad.npz"))
    assert bad.value.code == 2
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / "README.md").write_text("changed")
    with pytest.raises(SystemExit) as changed:
        runner.load_manifest(str(copy))
    assert changed.value.code == 2


def test_reading_a_bundle_loads_neither_bench_nor_optimize() -> None:
    """`edgekit bench` reads bundles through edgekit.deploy.bundle: it must not pull the deploy
    flow's dependencies (bench, optimize, convert) or any framework back in."""
    code = ("import sys, edgekit.deploy.bundle; print(sorted(m for m in sys.modules if m.split('.')"
            "[:2] in (['edgekit', 'bench'], ['edgekit', 'optimize'], ['edgekit', 'convert']) or "
            "m in ('tensorflow', 'onnxruntime', 'openvino', 'nncf')))")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_redeploy_replaces_a_bundle_without_the_output_marker(
    bundle: Path, tmp_path: Path, models: dict[str, Path]
) -> None:
    """A bundle from before bundles carried the marker: all its files are in its manifest."""
    import shutil

    from edgekit.outputs import MARKER

    out = tmp_path / "b"
    shutil.copytree(bundle, out)
    (out / MARKER).unlink(missing_ok=True)
    deploy(models["tiny"], "x86-avx512", out, precision="fp32", measure=False)
    assert (out / "model.xml").is_file() and not (out / "model.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


# --- what the runtimes tell a bundle ---------------------------------------------------------


def test_bundle_requirement_follows_the_providers() -> None:
    ort = get_runtime("onnxruntime")
    assert ort.bundle_requirement(["CUDAExecutionProvider"])["package"] == "onnxruntime-gpu"
    assert ort.bundle_requirement(["CUDAExecutionProvider"])["requirement"].startswith(
        "onnxruntime-gpu>="
    )
    qnn = ort.bundle_requirement(["QNNExecutionProvider", "CPUExecutionProvider"])
    assert qnn["package"] == "onnxruntime" and qnn["alternatives"] == ["onnxruntime-qnn"]
    lite = get_runtime("litert").bundle_requirement()
    assert lite["module"] == "ai_edge_litert" and "tflite-runtime" in lite["alternatives"]
    assert get_runtime("openvino").bundle_requirement()["requirement"].startswith("openvino>=")


def test_host_placement_says_when_the_host_is_not_the_target() -> None:
    lite = get_runtime("litert")
    assert lite.host_placement("CPU", (), "xnnpack") == ("CPU", None, None)
    device, _, note = lite.host_placement("GPU", (), "gpu")
    assert device == "CPU" and note is not None and "gpu delegate" in note
    ort = get_runtime("onnxruntime")
    absent = "MIGraphXExecutionProvider"
    assert absent not in ort.devices()
    device, provider, note = ort.host_placement("GPU", (absent, "CPUExecutionProvider"))
    assert (device, provider) == ("CPU", "CPUExecutionProvider") and absent in str(note)
    ov = get_runtime("openvino")
    assert ov.host_placement("AUTO") == ("AUTO", None, None)
    if "NPU" not in ov.devices():
        assert ov.host_placement("NPU")[0::2] == ("CPU", "NPU is not present here; measured on CPU")
    assert get_runtime("litert").serves("tflite-micro") and not ort.serves("tflite-micro")
