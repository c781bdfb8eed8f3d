"""Every ratio from one interleaved run: raw samples kept, intervals, identical models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tests.conftest import tiny_onnx


def test_ratio_verdict_says_slower_only_when_the_interval_excludes_one() -> None:
    from edgekit.bench.stats import ratio_verdict

    rng = np.random.default_rng(0)
    base = rng.normal(10.0, 0.5, 400)
    assert ratio_verdict(base, rng.normal(10.0, 0.5, 400))["verdict"] == "same"
    slow = ratio_verdict(base, rng.normal(12.0, 0.5, 400))
    assert slow["verdict"] == "slower" and slow["low"] > 1 and slow["speedup"] < 1
    fast = ratio_verdict(base, rng.normal(8.0, 0.5, 400))
    assert fast["verdict"] == "faster" and fast["high"] < 1
    assert fast["speedup_low"] <= fast["speedup"] <= fast["speedup_high"]


def test_a_copy_of_the_baseline_is_measured_once_and_is_exactly_one(tmp_path: Path) -> None:
    from edgekit.bench.interleaved import measure_interleaved, ratios

    base = tiny_onnx(tmp_path / "base.onnx", width=16)
    (tmp_path / "copy").mkdir()
    copy = Path(shutil.copy(base, tmp_path / "copy" / "base.onnx"))
    big = tiny_onnx(tmp_path / "big.onnx", width=16, layers=40)
    x = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    lats = measure_interleaved([base, copy, big], x, runtime="onnxruntime", threads=1,
                               min_time=0.2)  # fmt: skip
    assert lats[0]["samples_ns"] == lats[1]["samples_ns"]  # one measurement, not two
    assert len(lats[2]["samples_ns"]) == lats[2]["n"] >= 20  # raw samples kept
    same, copied, other = ratios(lats)
    assert same["speedup"] == copied["speedup"] == 1.0 and copied["verdict"] == "same"
    assert other["verdict"] == "slower", other  # 20x the layers
    assert other["low"] <= other["latency_ratio"] <= other["high"]


def test_openvino_models_are_compiled_min_loads_times(tmp_path: Path) -> None:
    """One OpenVINO compilation of a graph can run 19% slower than another of the same graph
    here (benchmarks/ov_same_graph.py): each model is spread over several."""
    import openvino as ov

    from edgekit.bench.interleaved import measure_interleaved
    from edgekit.runtimes import get_runtime

    onnx = tiny_onnx(tmp_path / "t.onnx", width=16)
    ir = tmp_path / "t.xml"
    ov.save_model(ov.convert_model(str(onnx)), str(ir))
    x = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    loads = get_runtime("openvino").min_loads
    assert loads > 2
    (lat,) = measure_interleaved([ir], x, runtime="openvino", threads=1, rounds=2, min_time=0.3)
    assert lat["runs"] == loads
    (lat,) = measure_interleaved([onnx], x, runtime="onnxruntime", threads=1, rounds=2,
                                 min_time=0.2)  # fmt: skip
    assert lat["runs"] == 2  # the others keep the rounds asked for


def test_an_identical_candidate_is_one_x_with_no_warning(tmp_path: Path) -> None:
    from edgekit.optimize import optimize

    model = tiny_onnx(tmp_path / "t.onnx")
    res = optimize(model, "x86-avx2", out=tmp_path / "o", quantize="fp32", graph_opt=False)
    rep = res.report
    fp32 = next(c for c in rep["candidates"] if c["precision"] == "fp32")
    assert fp32["latency_ms"]["sha256"] == rep["baseline"]["latency_ms"]["sha256"]
    assert fp32["vs_baseline"]["speedup"] == 1.0 and fp32["vs_baseline"]["verdict"] == "same"
    assert rep["speedup"] == 1.0 and rep["speedup_ci"]["verdict"] == "same"
    assert fp32["latency_ms"]["samples_ns"], "each candidate keeps its raw samples"
    assert not any("slower" in w.lower() for w in res.warnings)
    assert "1.00x (1.00-1.00) same" in res.markdown_path.read_text()


def test_auto_keeps_the_baseline_when_every_candidate_measured_slower() -> None:
    """An fp32 candidate re-saved through graph passes can measure slower than the baseline
    it came from; auto then keeps the baseline, and a tie still goes to the candidate."""
    from edgekit.optimize.candidates import Candidate, choose

    rng = np.random.default_rng(0)

    def cand(name: str, ms: float) -> Candidate:
        s = rng.normal(ms * 1e6, ms * 1e4, 200)  # 1% spread, in ns as the harness keeps
        lat = {"median": float(np.median(s)) / 1e6, "samples_ns": s.tolist()}
        return Candidate(name, "fp32", latency=lat, meets_budget=True, accuracy_drop=0.0)

    base = cand("baseline fp32", 10.0)
    slower = cand("fp32", 10.4)
    assert choose([slower], 1.0, None, base)[0] is base
    same = cand("fp32", 10.0)
    assert choose([same], 1.0, None, base)[0] is same
    faster = cand("int8", 6.0)
    assert choose([slower, faster], 1.0, None, base)[0] is faster
    # asked for one precision (--quantize fp32), the baseline does not compete
    assert choose([slower], 1.0, "fp32", base)[0] is slower
