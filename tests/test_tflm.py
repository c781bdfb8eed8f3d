"""The tflite-micro runtime: TFLM's own interpreter, its exact arena, and ops it lacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_user_error, run_cli

from edgekit.deploy import check_limits, estimate_arena_bytes
from edgekit.errors import LimitError, UnsupportedModelError
from edgekit.model import load
from edgekit.profiles import load_profile, validate
from edgekit.runtimes import get_runtime, open_session, target_runtimes

pytestmark = pytest.mark.skipif(
    not get_runtime("tflite-micro").available(),
    reason="tflite-micro is not installed (pip install 'edgekit[tflite-micro]')",
)


@pytest.fixture(scope="module")
def topk_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float model whose TOPK_V2 op has no TFLM kernel (LiteRT runs it)."""
    import tensorflow as tf

    fn = tf.function(lambda x: tf.math.top_k(tf.nn.relu(x), 2).values,
                     input_signature=[tf.TensorSpec([1, 8], tf.float32, name="x")])  # fmt: skip
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    path = tmp_path_factory.mktemp("topk") / "topk.tflite"
    path.write_bytes(conv.convert())
    return path


def test_tflite_micro_is_a_target_runtime() -> None:
    assert "tflite-micro" in target_runtimes()


def test_int8_model_runs_and_matches_litert(int8_model: Path) -> None:
    x = np.random.default_rng(1).integers(-128, 127, (1, 8, 8, 1)).astype(np.int8)
    with open_session(int8_model, "tflite-micro") as micro, open_session(int8_model) as lite:
        feeds = {micro.signature.inputs[0].name: x}
        (got,) = micro.run(feeds).values()
        (want,) = lite.run(feeds).values()
    assert got.dtype == np.int8 and got.shape == (1, 3)
    # the same int8 kernels' arithmetic, to within one quantization step
    assert np.max(np.abs(got.astype(int) - want.astype(int))) <= 1


def test_arena_is_the_planners_exact_figure(int8_model: Path) -> None:
    model = load(int8_model)
    rt = get_runtime("tflite-micro")
    with open_session(model, "tflite-micro") as s:
        arena, used = s.arena_bytes, s.arena_used_bytes
    # exact: TFLM plans the model in `arena` bytes and refuses it 16 bytes short
    with rt.open(model, options={"arena_size": arena}) as s:
        assert s.arena_used_bytes == used
    with pytest.raises(UnsupportedModelError, match="TFLite Micro refuses"):
        rt.open(model, options={"arena_size": arena - 16})
    assert arena % 16 == 0 and arena >= used >= estimate_arena_bytes(model)


def test_shared_models_arena(shared_models: Path) -> None:
    # person_detect is a model LiteRT refuses; TFLM runs it, in 85 264 bytes of arena
    with open_session(shared_models / "person_detect.tflite", "tflite-micro") as s:
        out = s.run({s.signature.inputs[0].name: np.zeros((1, 96, 96, 1), np.int8)})
        assert s.arena_bytes == 85264
    assert next(iter(out.values())).shape == (1, 2)


def test_missing_kernel_names_the_op_and_node(topk_model: Path) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        open_session(topk_model, "tflite-micro")
    msg = str(err.value)
    assert "no kernel for op TOPK_V2" in msg and "operator 1 (output tensor" in msg, msg


def test_missing_kernel_is_exit_2_at_the_cli(topk_model: Path) -> None:
    result = run_cli("bench", str(topk_model), "--runtime", "tflite-micro")
    assert_user_error(result, "TOPK_V2", "operator 1")


def test_cortex_m_limits_use_tflm_arena(shared_models: Path) -> None:
    model = load(shared_models / "micro_speech_quantized.tflite")
    checked = check_limits(model, load_profile("cortex-m"))
    assert checked["arena_bytes_tflm"] == 7584
    assert checked["arena_bytes_estimate"] < checked["arena_bytes_tflm"]
    small = load_profile("cortex-m").to_dict()
    small["limits"]["max_arena_bytes"] = 7000
    with pytest.raises(LimitError, match="TFLite Micro's planner allocates 7.4 KiB"):
        check_limits(model, validate(small, "small.toml"))


def test_bench_reports_the_planners_arena_and_compare_shows_it(
    int8_model: Path, tmp_path: Path
) -> None:
    import json

    from conftest import int8_tflite

    from edgekit.bench import benchmark

    with open_session(int8_model, "tflite-micro") as s:
        arena, used = s.arena_bytes, s.arena_used_bytes
    quick = ("--min-runs", "20", "--min-time", "0", "--warmup", "5")
    res = run_cli("bench", str(int8_model), "--runtime", "tflite-micro", *quick,
                  "--out", str(tmp_path / "a.json"), env={"COLUMNS": "200"}, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    # the printed table labels the device's figures apart from this host's timings
    assert f"{arena:,} B" in res.stdout and "tensor arena" in res.stdout, res.stdout
    assert "not the microcontroller's" in res.stdout
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["target_figures"]["arena_bytes"] == arena
    assert a["target_figures"]["arena_used_bytes"] == used
    assert a["target_figures"]["flash_bytes"] == int8_model.stat().st_size
    assert "reference kernels" in a["protocol"]["timing_source"]

    bigger = int8_tflite(tmp_path / "cnn16.tflite", size=16)
    with open_session(bigger, "tflite-micro") as s:
        arena_b = s.arena_bytes
    assert arena_b > arena
    benchmark(bigger, runtime="tflite-micro", min_runs=20, min_time=0, warmup=5).save(
        tmp_path / "b.json"
    )
    reports = (str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--allow-mismatch")
    res = run_cli("compare", *reports, "--format", "json")
    assert res.returncode == 0, res.stderr
    (pair,) = json.loads(res.stdout)["pairs"]
    assert (pair["arena_base_bytes"], pair["arena_new_bytes"]) == (arena, arena_b)
    res = run_cli("compare", *reports, "--format", "markdown")
    assert f"{arena:,} → {arena_b:,} ({arena_b - arena:+,} B)" in res.stdout, res.stdout
    assert "Timings: this host's time on TFLM's reference kernels" in res.stdout


def test_desktop_runtime_reports_no_target_figures(int8_model: Path) -> None:
    from edgekit.bench import benchmark

    report = benchmark(int8_model, runtime="litert", min_runs=20, min_time=0, warmup=5)
    assert "target_figures" not in report.to_dict()
    assert report["protocol"]["timing_source"] == "this host's time"


def test_cortex_m_bundle_benches_on_tflm(int8_model: Path, tmp_path: Path) -> None:
    from edgekit.bench import benchmark
    from edgekit.deploy import deploy

    bundle = deploy(int8_model, "cortex-m", tmp_path / "b", measure=False).path
    rep = benchmark(bundle, min_runs=20, min_time=0, warmup=5).to_dict()
    with open_session(int8_model, "tflite-micro") as s:
        assert rep["runtime"]["name"] == "tflite-micro"
        assert rep["target_figures"]["arena_bytes"] == s.arena_bytes
