"""Inference precision as a setting: asked for, read back from the compiled model, reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_user_error, run_cli

pytest.importorskip("openvino")


def _has_bf16() -> bool:
    from edgekit.devices import cpu

    return cpu()["bf16"]


needs_bf16 = pytest.mark.skipif(
    not _has_bf16(), reason="this CPU has no AVX-512 BF16, AMX or Arm BF16"
)


def _bench(model: Path, options: dict | None) -> dict:
    from edgekit.bench import benchmark

    rep = benchmark(model, runtime="openvino", threads=1, min_runs=10, min_time=0.1,
                    max_time=1.0, options=options)  # fmt: skip
    return rep.to_dict()


def test_the_pinned_f32_is_read_back_and_recorded(tiny_models) -> None:
    rt = _bench(tiny_models["openvino"], None)["runtime"]
    assert rt["inference_precision"]["hint"] == "f32"
    assert rt["inference_precision"]["ran"] == "f32"
    assert set(rt["inference_precision"]["nodes"]) == {"f32"}


@needs_bf16
def test_bf16_is_read_back_from_the_exec_graph(tiny_models) -> None:
    from edgekit.runtimes import get_runtime

    opts = get_runtime("openvino").precision_options("bf16")
    ran = _bench(tiny_models["openvino"], opts)["runtime"]["inference_precision"]
    assert ran["hint"] == "bf16" and ran["ran"] == "bf16" and ran["nodes"]["bf16"] >= 1


@needs_bf16
def test_bf16_parity_at_its_stated_tolerance(tiny_models) -> None:
    """bf16 keeps 8 mantissa bits: the tiny CNN's probabilities stay within cosine 0.999 and
    a max abs error of 2% of the largest f32 output, with the same top-1."""
    from edgekit.runtimes import get_runtime, open_session

    model = tiny_models["openvino"]
    bf16 = get_runtime("openvino").precision_options("bf16")
    rng = np.random.default_rng(0)
    with open_session(model, "openvino", threads=1) as a, \
            open_session(model, "openvino", threads=1, options=bf16) as b:  # fmt: skip
        assert b.inference_precision()["ran"] == "bf16"
        assert a.inference_precision()["ran"] == "f32"
        for _ in range(8):
            feed = {"image": rng.normal(size=(1, 8, 8, 1)).astype(np.float32)}
            f32 = next(iter(a.run(feed).values())).ravel().astype(np.float64)
            low = next(iter(b.run(feed).values())).ravel().astype(np.float64)
            cos = f32 @ low / (np.linalg.norm(f32) * np.linalg.norm(low))
            assert cos > 0.999 and np.abs(f32 - low).max() < 0.02 * np.abs(f32).max()
            assert f32.argmax() == low.argmax()
            assert not np.array_equal(f32, low), "bf16 must actually have run"


def test_cli_inference_precision_is_for_openvino(tiny_models) -> None:
    assert_user_error(
        run_cli("bench", str(tiny_models["onnx"]), "--inference-precision", "bf16"),
        "no inference precision setting",
    )


def test_devices_says_whether_the_cpu_has_bf16() -> None:
    res = run_cli("devices")
    assert res.returncode == 0 and "bf16 in hardware: " in res.stdout
