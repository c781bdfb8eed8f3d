"""Ethos-U profiles through Vela, and the Edge TPU compiler's honest absence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_user_error, run_cli

from edgekit.compilers import find_tool
from edgekit.compilers.vela import placement
from edgekit.deploy import deploy
from edgekit.errors import LimitError
from edgekit.profiles import load_profile

ETHOS = ("ethos-u55-128", "ethos-u65-256", "ethos-u85-256")
needs_vela = pytest.mark.skipif(
    find_tool("vela") is None, reason="Vela is not installed (pip install ethos-u-vela)"
)


def _small_sram_profile(tmp_path: Path, sram: str) -> Path:
    text = (Path(load_profile("ethos-u55-128").path or "").read_text()
            .replace('name = "ethos-u55-128"', 'name = "tiny-u55"')
            .replace('max_arena_bytes = "2 MiB"', f'max_arena_bytes = "{sram}"'))  # fmt: skip
    path = tmp_path / "tiny-u55.toml"
    path.write_text(text)
    return path


def test_placement_reads_cpu_ops_by_name() -> None:
    out = ("CPU operators = 1 (33.3%)\n   CPU: Passthrough = dense/out (outputs [1, 1, 1, 16])\n"
           "NPU operators = 2 (66.7%)\n   NPU: Conv2D = conv (outputs [1, 4, 4, 8])\n")  # fmt: skip
    assert placement(out) == {"vela_npu_ops": 2, "vela_cpu_ops": 1,
                              "cpu_operators": [{"op": "Passthrough", "tensor": "dense/out"}]}  # fmt: skip


@needs_vela
@pytest.mark.parametrize("name", ETHOS)
def test_vela_figures_reach_the_manifest(name: str, int8_model: Path, tmp_path: Path) -> None:
    b = deploy(int8_model, name, tmp_path / "b", measure=False)
    comp = b.manifest["compiler"]
    fig = comp["figures"]
    assert comp["ran"] and "model_vela.tflite" in comp["outputs"]
    assert (b.path / "model_vela.tflite").is_file() and "model_vela.tflite" in b.manifest["files"]
    assert fig["kind"].startswith("compiler estimate")
    assert fig["npu_ops"] > 0 and fig["cpu_ops"] == 0 and fig["cpu_operators"] == []
    assert fig["sram_bytes"] > 0 and fig["storage_bytes"] > 0 and fig["macs"] > 0
    assert fig["inference_ms"] > 0 and fig["cycles_total"] > 0
    assert fig["accelerator"].lower().replace("_", "-") == name
    assert "Compiled with vela" in (b.path / "README.md").read_text()
    # bench of the bundle (no NPU here): this host's time, labelled, beside Vela's estimates
    from edgekit.bench import benchmark

    rep = benchmark(b.path, min_runs=20, min_time=0, warmup=5).to_dict()
    assert {k: v for k, v in rep["compiler_figures"].items() if k != "source"} == fig
    assert "not a measurement" in rep["compiler_figures"]["source"]
    assert rep["protocol"]["timing_source"].endswith(f"standing in for {name}")
    assert any("measured on CPU" in w for w in rep["warnings"])


@needs_vela
def test_float_ops_are_left_on_the_cpu_and_named(shared_models: Path, tmp_path: Path) -> None:
    import shutil

    from edgekit.compilers import run_compiler

    shutil.copyfile(shared_models / "hello_world_float.tflite", tmp_path / "model.tflite")
    info = run_compiler(load_profile("ethos-u55-128"), tmp_path, "model.tflite", [])
    fig = info["figures"]
    assert fig["npu_ops"] == 0 and fig["cpu_ops"] == 3 and fig["tflite_ops"] == 3
    assert fig["cpu_op_types"] == {"FULLY_CONNECTED": 3}
    assert fig["cpu_operators"][-1]["tensor"] == "StatefulPartitionedCall:0"


@needs_vela
def test_over_the_sram_limit_is_refused(int8_model: Path, tmp_path: Path) -> None:
    prof = _small_sram_profile(tmp_path, "64 B")
    with pytest.raises(LimitError, match="in SRAM, over tiny-u55's max_arena_bytes of 64 B"):
        deploy(int8_model, str(prof), tmp_path / "b", measure=False)
    assert not (tmp_path / "b").exists()
    result = run_cli("deploy", str(int8_model), "--profile", str(prof), "--out",
                     str(tmp_path / "c"), "--no-measure")  # fmt: skip
    assert_user_error(result, "max_arena_bytes of 64 B")


def test_coral_bundle_says_the_model_is_ready_for_the_compiler(
    int8_model: Path, tmp_path: Path
) -> None:
    if find_tool("edgetpu_compiler") is not None:
        pytest.skip("edgetpu_compiler is installed here: the bundle is compiled")
    b = deploy(int8_model, "coral-edgetpu", tmp_path / "b", measure=False, verify=False)
    comp = json.loads((b.path / "manifest.json").read_text())["compiler"]
    cmd = "edgetpu_compiler --show_operations --out_dir . model.tflite"
    assert comp["ran"] is False and "ready for the compiler" in comp["note"] and cmd in comp["note"]
    readme = (b.path / "README.md").read_text()
    assert "ready for edgetpu_compiler but was not compiled" in readme and cmd in readme


def test_auto_prefers_the_fewest_cpu_fallback_ops_within_the_budget() -> None:
    from edgekit.optimize.candidates import Candidate, choose

    def cand(name: str, ms: float, cpu: int | None, ok: bool = True) -> Candidate:
        return Candidate(name, "int8", latency={"median": ms}, cpu_ops=cpu, meets_budget=ok,
                         accuracy_drop=0.0 if ok else 9.0)  # fmt: skip

    fast_fallback, slow_npu, npu_over = (
        cand("a", 1.0, 2),
        cand("b", 3.0, 0),
        cand("c", 0.5, 0, False),
    )
    chosen, met, _ = choose([fast_fallback, slow_npu, npu_over], 1.0, None)
    assert chosen is slow_npu and met
    # without the compiler's counts, the fastest within the budget wins as before
    fast_fallback.cpu_ops = slow_npu.cpu_ops = None
    assert choose([fast_fallback, slow_npu], 1.0, None)[0] is fast_fallback


@needs_vela
def test_compiler_figures_count_cpu_ops_of_a_candidate(shared_models: Path) -> None:
    from edgekit.compilers import compiler_figures

    prof = load_profile("ethos-u55-128")
    assert compiler_figures(prof, shared_models / "hello_world_float.tflite")["cpu_ops"] == 3
    assert compiler_figures(prof, shared_models / "micro_speech_quantized.tflite")["cpu_ops"] == 0
    assert (
        compiler_figures(load_profile("x86-avx2"), shared_models / "hello_world_float.tflite")
        is None
    )


@needs_vela
def test_person_detect_all_on_the_npu_and_lstm_refused(shared_models: Path, tmp_path: Path) -> None:
    import shutil

    from edgekit.compilers import run_compiler
    from edgekit.errors import UnsupportedModelError

    prof = load_profile("ethos-u55-128")
    shutil.copyfile(shared_models / "person_detect.tflite", tmp_path / "model.tflite")
    fig = run_compiler(prof, tmp_path, "model.tflite", [])["figures"]
    assert (fig["tflite_ops"], fig["npu_ops"], fig["cpu_ops"]) == (31, 31, 0)
    assert fig["sram_bytes"] == round(72.734375 * 1024)
    shutil.copyfile(shared_models / "trained_lstm.tflite", tmp_path / "lstm.tflite")
    with pytest.raises(
        UnsupportedModelError, match=r"lstm.tflite: UNIDIRECTIONAL_SEQUENCE_LSTM 'tfl.* IFM must be"
    ):
        run_compiler(prof, tmp_path, "lstm.tflite", [])
