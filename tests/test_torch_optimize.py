"""PyTorch sources through optimize: int8 TFLite with litert-torch's PT2E quantizer, and
magnitude / structured pruning with torch.nn.utils.prune, fine-tuned on digits.

The CNN is built and trained here (a few seconds on digits); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import fresh_venv, installed, run_cli

torch = pytest.importorskip("torch", reason="the torch extra is not installed (edgekit[torch])")
pytest.importorskip("litert_torch", reason="litert-torch is not installed (edgekit[torch])")


class DigitsCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.c2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.c1(x)))
        y = torch.nn.functional.max_pool2d(torch.relu(self.c2(y)), 2)
        return self.fc(y.flatten(1))


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)


def _save(module: torch.nn.Module, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1, max=2048)
    ep = torch.export.export(module, (torch.zeros(2, 1, 8, 8),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, str(path))
    return path


def _accuracy(module: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((module(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("torch_opt")
    x, y = _digits()
    torch.manual_seed(0)
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(4):
        for i in range(0, 1400, 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(torch.from_numpy(x[i : i + 64])),
                                              torch.from_numpy(y[i : i + 64])).backward()  # fmt: skip
            opt.step()
    model.eval()
    torch.manual_seed(1)
    return {"pt2": _save(model, out / "cnn.pt2"), "untrained": _save(DigitsCNN().eval(), out / "u.pt2"),
            "module": model, "x": x, "y": y, "acc": _accuracy(model, x[1400:], y[1400:])}  # fmt: skip


# --- int8 TFLite from a .pt2 -------------------------------------------------------------


def test_int8_tflite_from_pt2_is_full_int8_and_tracks_pytorch(digits: dict, tmp_path: Path) -> None:

    from edgekit.optimize import optimize

    res = optimize(digits["pt2"], "rpi4", out=tmp_path / "opt", quantize="int8",
                   calib_data="digits", calib_samples=100, measure=False)  # fmt: skip
    rep = res.report
    assert rep["optimized"]["precision"] == "int8", rep["optimized"]
    assert rep["accuracy_drop"] <= 1.0 and rep["meets_budget"], rep["accuracy_drop"]
    assert _full_int8(res.model_path)
    # Independently of edgekit's parity: top-1 on held-out digits within 1 point of PyTorch.
    x, y = digits["x"][1400:], digits["y"][1400:]
    assert float(np.mean(_int8_top1(res.model_path, x) == y)) >= digits["acc"] - 0.01


def _full_int8(path: Path) -> bool:
    """Whether the TFLite file's inputs, outputs and every tensor are integer."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    kinds = {t["dtype"] for t in it.get_tensor_details()}
    return inp["dtype"] == out["dtype"] == np.int8 and kinds <= {np.int8, np.int32}


def _quantized(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zp = detail["quantization"]
    return np.clip(np.round(x / scale + zp), -128, 127).astype(np.int8)


def _int8_top1(path: Path, x: np.ndarray) -> np.ndarray:
    """The int8 TFLite model's top-1 class of each sample (fed one at a time)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    pred = []
    for i in range(len(x)):
        it.set_tensor(inp["index"], _quantized(x[i : i + 1], inp))
        it.invoke()
        pred.append(it.get_tensor(out["index"]).astype(np.float32).argmax())
    return np.array(pred)


@pytest.mark.slow
def test_pt2e_result_is_checked_against_pytorch(digits: dict, tmp_path: Path) -> None:
    from edgekit.errors import VerificationError
    from edgekit.model import load
    from edgekit.optimize.quantize import Calibration
    from edgekit.optimize.quantize.tflite_torch import check_against_torch, quantize

    calib = Calibration(digits["x"][:64])
    made = quantize(digits["pt2"], "int8", calib, None, (), tmp_path / "q.tflite")
    check_against_torch(load(digits["pt2"]), made, calib)  # its own source: passes
    with pytest.raises(VerificationError, match="does not track PyTorch"):
        check_against_torch(load(digits["untrained"]), made, calib)  # another model: caught
    assert not made.exists()  # and the file that failed is not left behind


@pytest.fixture(scope="module")
def rpi4_bundle(digits: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pt2_rpi4") / "bundle"
    r = run_cli("deploy", str(digits["pt2"]), "--profile", "rpi4", "--calib-data", "digits",
                "--no-measure", "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def test_deploy_pt2_to_rpi4_int8(rpi4_bundle: Path, digits: dict) -> None:
    import json

    manifest = json.loads((rpi4_bundle / "manifest.json").read_text())
    assert manifest["conversion"]["path"] == ["torch", "tflite"]
    assert manifest["precision"] == "int8" and _full_int8(rpi4_bundle / "model.tflite")
    # the bundle's model, not only optimize's, keeps PyTorch's top-1 on held-out digits
    x, y = digits["x"][1400:], digits["y"][1400:]
    assert float(np.mean(_int8_top1(rpi4_bundle / "model.tflite", x) == y)) >= digits["acc"] - 0.01


@pytest.mark.slow
def test_pt2_bundle_runs_in_a_fresh_venv(rpi4_bundle: Path, digits: dict, tmp_path: Path) -> None:
    """Only the bundle's requirements.txt installed: no edgekit, torch or TensorFlow."""
    import subprocess

    from ai_edge_litert.interpreter import Interpreter

    py = fresh_venv(rpi4_bundle / "requirements.txt", tmp_path / "venv")
    freeze = installed(py)
    assert not any(p in freeze for p in ("edgekit", "torch", "tensorflow")), freeze
    it = Interpreter(str(rpi4_bundle / "model.tflite"))
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    x = _quantized(digits["x"][1400:1401], inp)
    np.savez(tmp_path / "in.npz", x)
    it.set_tensor(inp["index"], x)
    it.invoke()

    def run(npz: Path) -> subprocess.CompletedProcess:
        return subprocess.run([py, "run.py", "--input", str(npz), "--output", str(tmp_path / "o.npz")],
                              cwd=rpi4_bundle, capture_output=True, text=True, timeout=300)  # fmt: skip

    r = run(tmp_path / "in.npz")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "o.npz") as got:
        np.testing.assert_array_equal(next(iter(got.values())), it.get_tensor(out["index"]))
    # the program was exported at batch 1: a batch of 4 is one sentence, not a traceback
    np.savez(tmp_path / "batch.npz", np.repeat(x, 4, axis=0))
    r = run(tmp_path / "batch.npz")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("run.py: error:")]
    assert len(errors) == 1 and "cannot take input" in errors[0], r.stderr
    assert "[4, 1, 8, 8] (the model takes [1, 1, 8, 8])" in errors[0], r.stderr


@pytest.mark.slow
def test_pt2e_failure_falls_back_to_onnx2tf_savedmodel(
    digits: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx2tf_env: None
) -> None:
    """Only when PT2E fails (here made to) is the torch -> ONNX -> SavedModel route taken,
    its calibration data moved to the NHWC layout onnx2tf gives the model."""
    from edgekit.errors import UnsupportedModelError
    from edgekit.model import load
    from edgekit.optimize import optimize
    from edgekit.optimize.quantize import tflite_torch
    from edgekit.verify import compare_outputs, model_precision

    def fails(src: object, *args: object) -> None:
        raise UnsupportedModelError(f"{src}: litert-torch cannot quantize this model: forced")

    monkeypatch.setattr(tflite_torch, "_pt2e", fails)
    res = optimize(digits["pt2"], "rpi4", out=tmp_path / "opt", quantize="int8",
                   calib_data="digits", calib_samples=100, measure=False)  # fmt: skip
    assert res.report["optimized"]["precision"] == "int8" and res.report["accuracy_drop"] <= 1.0
    q = load(res.model_path)
    assert model_precision(q) == "int8" and list(q.signature.inputs[0].shape)[1:] == [8, 8, 1]
    feeds = [{"x": digits["x"][i : i + 1]} for i in range(1400, 1432)]
    parity = compare_outputs(load(digits["pt2"]), q, feeds, precision="int8")  # NCHW feeds
    assert parity.passed, parity.reason


def test_precisions_pt2e_cannot_make_are_refused(digits: dict, tmp_path: Path) -> None:
    from edgekit.errors import UnsupportedModelError
    from edgekit.optimize.quantize import quantize

    with pytest.raises(UnsupportedModelError, match="PT2E quantizer makes int8"):
        quantize(digits["pt2"], "tflite", "int16x8", tmp_path / "q.tflite", digits["x"][:8])
    assert not (tmp_path / "q.tflite").exists()


# --- pruning -----------------------------------------------------------------------------


def _prune(digits: dict, structured: bool, tmp_path: Path, epochs: int = 3) -> tuple:
    from edgekit.optimize.passes import get_pass
    from edgekit.optimize.prune_magnitude import FineTuneConfig

    name = "prune_torch_structured" if structured else "prune_torch_magnitude"
    x, y = digits["x"][:1400], digits["y"][:1400]
    res = get_pass(name).run(digits["pt2"], FineTuneConfig(0.5, x, y, None, epochs),
                             tmp_path / "pruned.pt2")  # fmt: skip
    return res, torch.export.load(str(res.path)).module()


def test_magnitude_pruning_reaches_sparsity_and_keeps_accuracy(
    digits: dict, tmp_path: Path
) -> None:
    from edgekit.convert import convert

    res, pruned = _prune(digits, False, tmp_path)
    sd = dict(pruned.named_parameters())
    for name in ("c1.weight", "c2.weight", "fc.weight"):
        assert float((sd[name] == 0).float().mean()) == pytest.approx(0.5, abs=0.01), name
    assert res.details["sparsity"] == pytest.approx(0.5, abs=0.01)
    x, y = digits["x"][1400:], digits["y"][1400:]
    assert _accuracy(pruned, x, y) >= digits["acc"] - 0.02  # fine-tuned back within budget
    # the re-exported program keeps the dynamic batch and converts, verified against itself
    conv = convert(res.path, "onnx", tmp_path / "pruned.onnx")
    assert conv.parity.passed
    assert digits["module"].c1.weight.abs().min() > 0  # the source is untouched


def test_structured_pruning_zeroes_output_channels(digits: dict, tmp_path: Path) -> None:
    res, pruned = _prune(digits, True, tmp_path, epochs=1)
    sd = dict(pruned.named_parameters())
    for conv in ("c1", "c2"):
        w, b = sd[f"{conv}.weight"], sd[f"{conv}.bias"]
        dead = (w.flatten(1) == 0).all(1)
        assert int(dead.sum()) == w.shape[0] // 2, conv
        assert bool((b[dead] == 0).all())  # a zeroed channel's bias goes too
    assert float((sd["fc.weight"] == 0).float().mean()) < 0.01  # classifier outputs kept
    assert pruned(torch.from_numpy(digits["x"][:3])).shape == (3, 10)


@pytest.mark.slow
def test_optimize_prunes_a_pt2_then_quantizes_it_for_onnx(digits: dict, tmp_path: Path) -> None:
    from edgekit.optimize import optimize

    res = optimize(digits["pt2"], "x86-avx2", out=tmp_path / "opt", prune=0.5, quantize="int8",
                   calib_data="digits", finetune_epochs=2, measure=False)  # fmt: skip
    rep = res.report
    assert rep["pruning"]["method"] == "prune_torch_magnitude"
    assert rep["pruning"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert rep["optimized"]["format"] == "onnx" and rep["accuracy_drop"] <= 1.5


def test_pruning_refusals_are_one_sentence(digits: dict, tmp_path: Path) -> None:
    from edgekit.errors import InputError, UnsupportedModelError
    from edgekit.optimize.passes import get_pass
    from edgekit.optimize.prune_magnitude import FineTuneConfig

    with pytest.raises(InputError, match="needs labelled data"):
        get_pass("prune_torch_magnitude").run(digits["pt2"], FineTuneConfig(0.5),
                                              tmp_path / "p.pt2")  # fmt: skip
    ts = tmp_path / "m.ts"
    torch.jit.save(torch.jit.trace(digits["module"], torch.zeros(1, 1, 8, 8)), str(ts))
    with pytest.raises(UnsupportedModelError, match="export the model to a .pt2"):
        get_pass("prune_torch_magnitude").run(ts, FineTuneConfig(0.5, digits["x"][:8],
                                              digits["y"][:8]), tmp_path / "p.pt2")  # fmt: skip
    assert not (tmp_path / "p.pt2").exists()


def test_torch_routes_come_from_the_pass_table() -> None:
    from edgekit.optimize.passes import passes_for
    from edgekit.optimize.pipeline import first_conversion, quantizable

    assert quantizable("torch", "tflite") and first_conversion("torch", "tflite") is None
    assert first_conversion("torch", "onnx") == "onnx"  # converted first, then quantized
    assert first_conversion("torch", "onnx", prune=True) is None  # pruned as torch first
    assert {p.name for p in passes_for("torch", "prune")} == {
        "prune_torch_magnitude", "prune_torch_structured"
    }  # fmt: skip
