"""ExecuTorch as a format and runtime: `.pte` programs made here from a small PyTorch model
with ExecuTorch's own exporter, run by ExecuTorch's runtime and checked against PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_user_error, run_cli

torch = pytest.importorskip("torch", reason="the torch extra is not installed (edgekit[torch])")
pytest.importorskip("executorch", reason="executorch is not installed (edgekit[executorch])")


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("et") / "cnn.pt2"
    torch.export.save(torch.export.export(SmallCNN().eval(), (torch.randn(1, 3, 12, 12),)), path)
    return path


@pytest.fixture(scope="module")
def pte(pt2: Path) -> Path:
    from edgekit.convert import convert

    res = convert(pt2, "executorch", pt2.with_name("cnn.pte"))
    assert res.path == ["torch", "executorch"]
    assert res.parity is not None and res.parity.passed and res.parity.max_abs_error < 1e-4
    return res.model.path


def test_pte_is_told_by_content_and_runs_like_torch(pte: Path, tmp_path: Path) -> None:
    from edgekit.model import Format, load
    from edgekit.runtimes import open_session

    renamed = tmp_path / "program.bin"  # the file identifier, not the suffix, says what it is
    renamed.write_bytes(pte.read_bytes())
    model = load(renamed)
    assert model.format == Format.EXECUTORCH
    (inp,), (out,) = model.signature.inputs, model.signature.outputs
    assert (inp.shape, inp.dtype, out.shape, out.dtype) == (
        (1, 3, 12, 12),
        "float32",
        (1, 5),
        "float32",
    )
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    with open_session(model) as s:
        assert s.runtime == "executorch"
        got = s.run({inp.name: x})[out.name]
    torch.manual_seed(0)
    want = torch.export.load(pte.with_name("cnn.pt2")).module()(torch.from_numpy(x))
    np.testing.assert_allclose(got, want.detach().numpy(), atol=1e-5)


def test_int8_pte_verifies_against_torch(pt2: Path, tmp_path: Path) -> None:
    from edgekit.model import load
    from edgekit.optimize.quantize import quantize
    from edgekit.verify import compare_outputs

    calib = np.random.default_rng(2).standard_normal((32, 3, 12, 12)).astype(np.float32)
    out = quantize(pt2, "executorch", "int8", tmp_path / "int8.pte", calib=calib)
    feeds = [{"x": calib[i : i + 1]} for i in range(8)]
    parity = compare_outputs(pt2, load(out), feeds, precision="int8")
    assert parity.passed, parity.reason
    assert parity.max_abs_error > 0  # really quantized: int8 kernels do not reproduce fp32 bits


def test_damaged_pte_is_one_sentence_and_exit_2(pte: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pte"
    cut.write_bytes(pte.read_bytes()[: pte.stat().st_size // 2])
    # told from the header, before ExecuTorch loads: the CLI imports no framework for it
    assert_user_error(run_cli("inspect", str(cut)), str(cut), "damaged or truncated ExecuTorch")
    from edgekit.errors import ModelError
    from edgekit.model import load

    data = bytearray(pte.read_bytes())
    data[200:600] = b"\xff" * 400  # whole, but its flatbuffer is garbage: ExecuTorch refuses it
    bad = tmp_path / "bad.pte"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged or truncated ExecuTorch program"):
        load(bad).signature  # noqa: B018


@pytest.mark.slow  # deploy (convert, verify) and the runner's own process: ~35 s
def test_bundle_runner_runs_the_pte_on_executorch(pt2: Path, tmp_path: Path) -> None:
    from edgekit.deploy import deploy

    out = tmp_path / "bundle"
    deploy(pt2, "android-arm64-executorch", out, precision="fp32", measure=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "executorch" and manifest["model"]["entry"] == "model.pte"
    assert "executorch" in (out / "requirements.txt").read_text()
    assert "## ExecuTorch in an app" in (out / "README.md").read_text()
    run = subprocess.run([sys.executable, "run.py", "--bench", "--runs", "5", "--warmup", "1",
                          "--json"], cwd=out, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["runtime"]["name"] == "executorch" and report["runtime"]["version"]
    assert "method.execute" in json.dumps(report)  # the timed call is ExecuTorch's own
    assert report["latency_ms"]["n"] >= 5
