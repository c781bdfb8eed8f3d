"""PyTorch models in: each way in (and each refusal), the torch runtime, every edge verified.

Models are built here (a small CNN with BatchNorm, an MLP), exported with torch's
own `torch.export.save` / `torch.jit.save`; nothing is downloaded. Refusals that
detection makes (pickles, state dicts, factories without --trust-model) run the
CLI without importing torch, so they are cheap.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_user_error, run_cli

torch = pytest.importorskip("torch", reason="the torch extra is not installed (edgekit[torch])")

FACTORY = """
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        return torch.softmax(self.fc(x), dim=-1)

def make_model():
    torch.manual_seed(0)
    return Net()
"""


class CNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(y.mean(dim=(2, 3)))


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class _Marker:
    """Unpickling this touches a file: the proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.path}",))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("torch")
    torch.manual_seed(0)
    cnn = CNN().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        cnn.bn.running_mean.uniform_(-0.5, 0.5)
        cnn.bn.running_var.uniform_(0.5, 2.0)
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(cnn, (torch.randn(2, 3, 8, 8),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, str(out / "cnn.pt2"))
    mlp = MLP().eval()
    torch.export.save(torch.export.export(mlp, (torch.randn(1, 10),)), str(out / "mlp.pt2"))
    torch.jit.save(torch.jit.trace(cnn, torch.randn(1, 3, 8, 8)), str(out / "cnn.ts"))
    torch.save(cnn, out / "whole.pth")
    torch.save(cnn.state_dict(), out / "weights.pth")
    (out / "net.py").write_text(FACTORY)
    return {"dir": out, "cnn": out / "cnn.pt2", "mlp": out / "mlp.pt2", "ts": out / "cnn.ts",
            "whole": out / "whole.pth", "state": out / "weights.pth", "factory": out / "net.py",
            "cnn_module": cnn, "mlp_module": mlp}  # fmt: skip


# --- ways in ------------------------------------------------------------------------


def test_pt2_signature_keeps_dynamic_batch(models: dict) -> None:
    from edgekit.model import Format, load

    m = load(models["cnn"])
    assert m.format == Format.TORCH
    (x,) = m.signature.inputs
    assert x.name == "x" and x.dtype == "float32"
    assert isinstance(x.shape[0], str) and x.shape[1:] == (3, 8, 8)  # the batch is a symbol
    assert [t.name for t in m.signature.outputs] == ["linear"]
    assert m.op_histogram["aten.conv2d"] == 1
    assert m.param_count == sum(p.numel() for p in models["cnn_module"].parameters())


def test_inspect_pt2_cli(models: dict) -> None:
    r = run_cli("inspect", str(models["mlp"]), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["format"] == "torch"
    assert info["inputs"][0]["name"] == "features" and info["inputs"][0]["shape"] == [1, 10]


def test_torchscript_runs_on_the_torch_runtime(models: dict) -> None:
    from edgekit.model import Format, load
    from edgekit.runtimes import open_session

    m = load(models["ts"])
    assert m.format == Format.TORCH and m.signature.inputs[0].name == "x"
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    with open_session(m, threads=1) as s:
        got = list(s.run({"x": x}).values())[0]
    want = models["cnn_module"](torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_factory_needs_trust_model(models: dict) -> None:
    spec = f"{models['factory']}:make_model"
    r = run_cli("inspect", spec, "--example-input", "1x6")
    assert_user_error(r, "runs your code", "--trust-model")


def test_factory_needs_an_example_input(models: dict) -> None:
    r = run_cli("inspect", f"{models['factory']}:make_model", "--trust-model")
    assert_user_error(r, "--example-input")


def test_factory_with_trust_model(models: dict) -> None:
    r = run_cli("inspect", f"{models['factory']}:make_model", "--trust-model",
                "--example-input", "2x6:float32", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["format"] == "torch" and info["inputs"][0]["shape"] == [2, 6]


def test_factory_from_python_api(models: dict, tmp_path: Path) -> None:
    import edgekit

    np.savez(tmp_path / "ex.npz", x=np.ones((1, 6), np.float32))
    m = edgekit.load(f"{models['factory']}:make_model", trust_model=True,
                     example_input=str(tmp_path / "ex.npz"))  # fmt: skip
    assert m.signature.inputs[0].shape == (1, 6)


def test_whole_module_pickle_is_refused(models: dict) -> None:
    r = run_cli("inspect", str(models["whole"]))
    assert_user_error(r, "pickled PyTorch object", "arbitrary code", "torch.export.save")


def test_state_dict_is_refused_naming_the_factory_route(models: dict) -> None:
    r = run_cli("inspect", str(models["state"]))
    assert_user_error(r, "state dict", "make_model", "--trust-model")


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_malicious_pickle_never_runs(tmp_path: Path, legacy: bool) -> None:
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    payload = {"w": torch.zeros(2), "x": _Marker(marker)}
    torch.save(payload, evil, _use_new_zipfile_serialization=not legacy)
    r = run_cli("inspect", str(evil))
    assert_user_error(r, "pickled PyTorch object", "system")  # posix.system on Linux
    r = run_cli("convert", str(evil), "--to", "onnx", "--out", str(tmp_path / "o.onnx"))
    assert r.returncode == 2
    assert not marker.exists()


def test_pt2_carrying_a_pickle_is_refused(models: dict, tmp_path: Path) -> None:
    """A .pt2 whose weight is stored `use_pickle`: torch.export.load would unpickle it."""
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(models["mlp"]) as zi, zipfile.ZipFile(evil, "w") as zo:
        for name in zi.namelist():
            data = zi.read(name)
            if name.endswith("model_weights_config.json"):
                config = json.loads(data)
                first = next(iter(config["config"].values()))
                first["use_pickle"] = True
                data = json.dumps(config).encode()
                zo.writestr(name.rsplit("/", 1)[0] + "/" + first["path_name"] + ".evil", b"")
            elif name.endswith("/weight_0"):
                data = pickle.dumps(_Marker(marker))
            zo.writestr(name, data)
    r = run_cli("inspect", str(evil))
    assert_user_error(r, "pickled Python objects", "--trust-model")
    assert not marker.exists()


def test_not_a_pytorch_archive(tmp_path: Path) -> None:
    junk = tmp_path / "model.pt2"
    junk.write_bytes(os.urandom(256))
    assert_user_error(run_cli("inspect", str(junk)), "PyTorch .pt2 or TorchScript")
    other = tmp_path / "other.pt2"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("a/readme.txt", "hello")
    assert_user_error(
        run_cli("inspect", str(other)), "neither a PyTorch .pt2 or TorchScript archive"
    )


# --- edges, each verified against PyTorch -------------------------------------------


@pytest.mark.parametrize("to", ["onnx", "openvino", "tflite"])
@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_every_edge_verified(models: dict, tmp_path: Path, name: str, to: str) -> None:
    from edgekit.convert import convert

    res = convert(models[name], to, tmp_path / "out")
    assert res.path == ["torch", to]
    assert res.parity is not None and res.parity.passed
    assert res.parity.max_abs_error < 1e-4
    if name == "cnn" and to in ("onnx", "openvino"):  # the dynamic batch survives
        assert not isinstance(res.model.signature.inputs[0].shape[0], int)
        assert list(res.model.signature.inputs[0].shape[1:]) == [3, 8, 8]


def test_input_shape_fixes_dynamic_dims(models: dict, tmp_path: Path) -> None:
    from edgekit.convert import convert

    res = convert(models["cnn"], "onnx", tmp_path / "fixed", input_shapes={"x": (4, 3, 8, 8)})
    assert res.parity.passed and res.model.signature.inputs[0].shape == (4, 3, 8, 8)


def test_channels_last_tflite(models: dict, tmp_path: Path) -> None:
    from edgekit.convert import convert

    res = convert(models["cnn"], "tflite", tmp_path / "nhwc", channels_last=True)
    assert res.model.signature.inputs[0].shape == (1, 8, 8, 3)
    assert res.parity.passed  # compared with PyTorch's NCHW outputs on the same images


def test_torchscript_onnx_falls_back_to_the_torchscript_exporter(
    models: dict, tmp_path: Path
) -> None:
    from edgekit.convert import convert

    res = convert(models["ts"], "onnx", tmp_path / "ts", input_shapes={"x": (2, 3, 8, 8)})
    assert res.parity.passed
    assert res.tools[-1] in ("torch.onnx (dynamo)", "torch.onnx (TorchScript)")
    if res.tools[-1] == "torch.onnx (TorchScript)":
        assert res.attempts[0].tools == ["torch.onnx (dynamo)"] and not res.attempts[0].ok


def test_wrong_dynamo_result_falls_back(models: dict, tmp_path: Path, monkeypatch) -> None:
    """A dynamo export that computes something else fails verification; the next edge wins."""
    import onnx

    import edgekit.convert.torch_onnx as torch_onnx
    from edgekit.convert import convert

    real = torch_onnx.run

    def wrong(src, out, opts):  # noqa: ANN001, ANN202 - a real export, then a real corruption
        real(src, out, opts)
        proto = onnx.load(str(out))
        for init in proto.graph.initializer:
            arr = onnx.numpy_helper.to_array(init)
            if arr.dtype == np.float32 and arr.ndim == 2:
                init.CopyFrom(onnx.numpy_helper.from_array(arr * 2.0, init.name))
        onnx.save(proto, str(out))
        return out

    monkeypatch.setattr(torch_onnx, "run", wrong)
    res = convert(models["mlp"], "onnx", tmp_path / "fb")
    assert res.tools == ["torch.onnx (TorchScript)"] and res.parity.passed
    assert res.attempts[0].stage == "verify"


# --- optimize, deploy, bench ----------------------------------------------------------


def test_optimize_pt2_for_an_onnx_profile(models: dict, tmp_path: Path) -> None:
    r = run_cli("optimize", str(models["cnn"]), "--profile", "x86-avx2", "--out",
                str(tmp_path / "opt"), "--quantize", "int8", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "opt" / "model.onnx").is_file()
    assert "torch -> onnx" in r.stderr + r.stdout


def test_optimize_pt2_for_a_tflite_profile(models: dict, tmp_path: Path) -> None:
    r = run_cli("optimize", str(models["mlp"]), "--profile", "rpi4", "--out",
                str(tmp_path / "opt"), "--quantize", "none")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "opt" / "model.tflite").is_file()


def test_deploy_pt2(models: dict, tmp_path: Path) -> None:
    r = run_cli("deploy", str(models["mlp"]), "--profile", "x86-avx2", "--out",
                str(tmp_path / "bundle"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["profile"]["name"] == "x86-avx2"
    assert manifest["conversion"]["path"][0] == "torch"


def test_bench_pt2_cli_on_torch(models: dict, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = run_cli("bench", str(models["mlp"]), "--warmup", "5", "--min-runs", "20", "--max-time", "2",
                "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert "torch" in json.dumps(report["runtime"]), report["runtime"]
