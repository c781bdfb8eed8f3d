"""Every broken input a user can hand edgekit: exit 2, one sentence, no traceback, nothing written.

Each case is one row of the `## Bad inputs` table in tests/README.md. Models are
made in code (the `tiny_models` fixture, or ONNX graphs built with onnx.helper);
nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_user_error, run_cli

# ---- helpers ---------------------------------------------------------------------------


def _onnx_model(path: Path, dims: list[int], dtype: int | None = None) -> Path:
    """A one-op ONNX graph (Relu) whose input and output are declared as `dims`."""
    import onnx
    from onnx import TensorProto, helper

    dtype = TensorProto.FLOAT if dtype is None else dtype
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", dtype, dims)],
        [helper.make_tensor_value_info("y", dtype, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def _noise_body(src: Path, dst: Path, header: int = 16) -> Path:
    """Keep the first bytes (the magic), replace the rest with seeded noise of the same length."""
    data = src.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, len(data) - header, dtype=np.uint8)
    dst.write_bytes(data[:header] + noise.tobytes())
    return dst


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists(), sorted(out.iterdir()) if out.is_dir() else out
    stray = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not stray, stray


# ---- broken model files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def broken(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Damaged copies of every format, made once per module."""
    d = tmp_path_factory.mktemp("broken")
    tm = tiny_models
    for fmt in ("tflite", "onnx", "keras", "h5"):
        src = tm[fmt]
        _truncate(src, d / f"truncated{src.suffix}")
        _noise_body(src, d / f"corrupt{src.suffix}")
    (d / "empty.tflite").write_bytes(b"")
    # OpenVINO: the .xml cut in half; the .bin cut in half next to an intact .xml; a noise .bin.
    _truncate(tm["openvino"], d / "truncated.xml")
    shutil.copy(tm["openvino"].with_suffix(".bin"), d / "truncated.bin")
    shutil.copy(tm["openvino"], d / "shortbin.xml")
    _truncate(tm["openvino"].with_suffix(".bin"), d / "shortbin.bin", keep=0.3)
    shutil.copy(tm["openvino"], d / "nobin.xml")
    # SavedModel: saved_model.pb with a noise body; a SavedModel without variables/.
    shutil.copytree(tm["savedmodel"], d / "corrupt_savedmodel")
    _noise_body(tm["savedmodel"] / "saved_model.pb", d / "corrupt_savedmodel" / "saved_model.pb")
    shutil.copytree(tm["savedmodel"], d / "truncated_savedmodel")
    _truncate(
        tm["savedmodel"] / "saved_model.pb", d / "truncated_savedmodel" / "saved_model.pb", 0.3
    )
    (d / "empty_savedmodel").mkdir()
    return d


BROKEN_MODELS = [
    ("truncated.tflite", "damaged or truncated"),
    ("corrupt.tflite", "tflite"),
    ("empty.tflite", "empty"),
    ("truncated.onnx", "onnx"),
    ("corrupt.onnx", "onnx"),
    ("truncated.keras", "keras"),
    ("corrupt.keras", "keras"),
    ("truncated.h5", "h5"),
    ("corrupt.h5", "h5"),
    ("truncated.xml", "xml"),
    ("shortbin.xml", "shortbin"),
    ("nobin.xml", "nobin.bin"),
    ("corrupt_savedmodel", "corrupt_savedmodel"),
    ("truncated_savedmodel", "truncated_savedmodel"),
    ("empty_savedmodel", "empty_savedmodel"),
]


@pytest.mark.parametrize(("name", "fragment"), BROKEN_MODELS, ids=[b[0] for b in BROKEN_MODELS])
def test_broken_model_inspect(broken: Path, name: str, fragment: str) -> None:
    result = run_cli("inspect", str(broken / name))
    assert_user_error(result, str(broken / name).split("/")[-1])
    assert fragment.lower() in result.stderr.lower(), result.stderr


@pytest.mark.parametrize("name", ["truncated.onnx", "corrupt.tflite", "shortbin.xml"])
def test_broken_model_bench_writes_nothing(broken: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "r.json"
    assert_user_error(run_cli("bench", str(broken / name), "--out", str(out), "--quiet"), name)
    _assert_nothing_written(out)


@pytest.mark.parametrize("name", ["truncated.keras", "corrupt.onnx"])
def test_broken_model_deploy_writes_nothing(broken: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "bundle"
    result = run_cli(
        "deploy", str(broken / name), "--profile", "x86-avx2", "--out", str(out), "--no-measure"
    )
    assert_user_error(result, name)
    _assert_nothing_written(out)


# Format is detected from content, not the extension: a renamed file is read as what it is.
RENAMES = [("onnx", ".tflite"), ("tflite", ".onnx"), ("keras", ".h5"), ("h5", ".keras")]


@pytest.mark.parametrize(("fmt", "suffix"), RENAMES, ids=[f"{f}-as{s}" for f, s in RENAMES])
def test_renamed_model_is_read_by_content(
    tiny_models: dict[str, Path], tmp_path: Path, fmt: str, suffix: str
) -> None:
    renamed = tmp_path / f"model{suffix}"
    shutil.copy(tiny_models[fmt], renamed)
    result = run_cli("inspect", str(renamed), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["format"] == ("keras" if fmt == "h5" else fmt)


def test_renamed_openvino_xml_is_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """An IR .xml renamed to .onnx: its weights file is looked up next to it and not found."""
    renamed = tmp_path / "model.onnx"
    shutil.copy(tiny_models["openvino"], renamed)
    result = run_cli("inspect", str(renamed))
    assert_user_error(result, "model")


def test_text_file_as_model(tmp_path: Path) -> None:
    path = tmp_path / "notes.tflite"
    path.write_text("this is not a model\n")
    assert_user_error(run_cli("inspect", str(path)), "notes.tflite")


# ---- shapes ----------------------------------------------------------------------------


def test_absurd_declared_shape_bench(tmp_path: Path) -> None:
    """[1, 1e9, 1e9] float32 would be 4 EB: refused from the signature, before any allocation."""
    model = _onnx_model(tmp_path / "huge.onnx", [1, 10**9, 10**9])
    out = tmp_path / "r.json"
    result = run_cli("bench", str(model), "--out", str(out), "--quiet", timeout=60)
    assert_user_error(result, "beyond edgekit's limit")
    _assert_nothing_written(out)


def test_absurd_declared_shape_inspect(tmp_path: Path) -> None:
    """inspect still shows the signature (its job), and every runtime says why it will not run it."""
    model = _onnx_model(tmp_path / "huge.onnx", [1, 10**9, 10**9])
    result = run_cli("inspect", str(model), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["inputs"][0]["shape"] == [1, 10**9, 10**9]
    for name in ("onnxruntime", "openvino"):
        assert not info["runtimes"][name]["ok"]
        assert "beyond edgekit's limit" in info["runtimes"][name]["error"]


def test_absurd_shape_deploy(tmp_path: Path) -> None:
    model = _onnx_model(tmp_path / "huge.onnx", [1, 10**9, 10**9])
    out = tmp_path / "bundle"
    result = run_cli(
        "deploy", str(model), "--profile", "x86-avx2", "--out", str(out), "--no-measure"
    )
    assert_user_error(result, "beyond edgekit's limit")
    _assert_nothing_written(out)


def test_zero_size_input_dim(tmp_path: Path) -> None:
    model = _onnx_model(tmp_path / "zero.onnx", [1, 0, 4])
    out = tmp_path / "r.json"
    result = run_cli("bench", str(model), "--out", str(out), "--quiet")
    assert_user_error(result, "'x'", "dimension of 0")
    _assert_nothing_written(out)


def test_zero_size_input_shape_flag(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    result = run_cli("bench", str(tiny_models["onnx"]), "--input-shape", "image=0,8,8,1")
    assert_user_error(result, "positive")


# ---- calibration and evaluation data ---------------------------------------------------


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _calib_cases(d: Path) -> dict[str, tuple[Path, str]]:
    x = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
    y = np.arange(20) % 3
    nan = x.copy()
    nan[3, 2, 2, 0] = np.nan
    inf = x.copy()
    inf[0, 0, 0, 0] = np.inf
    return {
        "nan": (_npz(d / "nan.npz", x=nan, y=y), "NaN or Inf"),
        "inf": (_npz(d / "inf.npz", x=inf, y=y), "NaN or Inf"),
        # images of another size are resized, and 1 or 3 channels converted, by design;
        # a sample that is not an image at all, or has 5 channels, cannot be
        "wrong_rank": (_npz(d / "rank.npz", x=x.reshape(20, 64), y=y), "are not images"),
        "wrong_channels": (_npz(d / "ch.npz", x=np.repeat(x, 5, -1), y=y), "5 channels"),
        "wrong_dtype": (_npz(d / "dtype.npz", x=np.full((20, 8, 8, 1), "a"), y=y), "real numbers"),
        "complex": (_npz(d / "complex.npz", x=x.astype(np.complex64), y=y), "real numbers"),
        "empty": (_npz(d / "empty.npz", x=x[:0], y=y[:0]), "no samples"),
        "no_labels": (_npz(d / "nolabels.npz", x=x), "no array 'y'"),
        "label_count": (_npz(d / "labels.npz", x=x, y=y[:7]), "same length"),
        "not_npz": ((d / "junk.npz"), "npz"),
        "missing": ((d / "absent.npz"), "does not exist"),
    }


CALIB_CASES = [
    "nan",
    "inf",
    "wrong_rank",
    "wrong_channels",
    "wrong_dtype",
    "complex",
    "empty",
    "no_labels",
    "label_count",
    "not_npz",
    "missing",
]


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("calib")
    (d / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return d


@pytest.mark.parametrize("case", CALIB_CASES)
def test_bad_calibration_data(
    tiny_models: dict[str, Path], calib_dir: Path, tmp_path: Path, case: str
) -> None:
    path, fragment = _calib_cases(calib_dir)[case]
    out = tmp_path / "opt"
    result = run_cli(
        "optimize",
        str(tiny_models["onnx"]),
        "--profile",
        "x86-avx2",
        "--calib-data",
        f"npz:{path}",
        "--out",
        str(out),
    )
    assert_user_error(result, fragment)
    _assert_nothing_written(out)


@pytest.mark.parametrize("case", ["nan", "wrong_rank", "complex", "empty"])
def test_bad_eval_data(tiny_models: dict[str, Path], calib_dir: Path, case: str) -> None:
    path, fragment = _calib_cases(calib_dir)[case]
    assert_user_error(
        run_cli("eval", str(tiny_models["onnx"]), "--dataset", f"npz:{path}"), fragment
    )


def test_bench_input_npz_wrong_shape(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    feeds = _npz(tmp_path / "in.npz", image=np.zeros((1, 4, 4, 1), np.float32))
    out = tmp_path / "r.json"
    result = run_cli("bench", str(tiny_models["onnx"]), "--input", str(feeds), "--out", str(out))
    assert_user_error(result, "image")
    _assert_nothing_written(out)


# ---- profiles --------------------------------------------------------------------------

_GOOD_PROFILE = (Path(__file__).resolve().parents[1] / "profiles" / "x86-avx2.toml").read_text()

PROFILE_CASES = {
    "typo_key": (_GOOD_PROFILE.replace("runtime =", "runtmie ="), "runtmie"),
    "wrong_type": (
        _GOOD_PROFILE.replace("per_channel = true", 'per_channel = "yes"'),
        "per_channel",
    ),
    "missing_key": (_GOOD_PROFILE.replace('format = "onnx"\n', ""), "format"),
    "unknown_runtime": (
        _GOOD_PROFILE.replace('runtime = "onnxruntime"', 'runtime = "tensorrt"'),
        "tensorrt",
    ),
    "not_toml": (_GOOD_PROFILE.replace("[target]", "[target"), "toml"),
}


@pytest.mark.parametrize("case", sorted(PROFILE_CASES))
def test_bad_profile(tiny_models: dict[str, Path], tmp_path: Path, case: str) -> None:
    text, fragment = PROFILE_CASES[case]
    profile = tmp_path / "mine.toml"
    profile.write_text(text)
    assert_user_error(run_cli("profiles", "show", str(profile)), fragment)
    out = tmp_path / "bundle"
    result = run_cli(
        "deploy", str(tiny_models["onnx"]), "--profile", str(profile), "--out", str(out)
    )
    assert_user_error(result, fragment)
    _assert_nothing_written(out)


def test_unknown_profile_name(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "opt"
    result = run_cli(
        "optimize", str(tiny_models["onnx"]), "--profile", "x86-avx3", "--out", str(out)
    )
    assert_user_error(result, "x86-avx3")
    _assert_nothing_written(out)


# ---- reports ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_report(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("report") / "r.json"
    result = run_cli(
        "bench", str(tiny_models["onnx"]), "--min-runs", "20", "--min-time", "0.1",
        "--warmup", "5", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def _report_cases(good: dict) -> dict[str, tuple[str, str]]:
    older = dict(good, schema_version=0)
    newer = dict(good, schema_version=99)
    no_version = {k: v for k, v in good.items() if k != "schema_version"}
    nonsense = dict(good, samples_ns="fast")
    negative = dict(good, samples_ns=[5, -3, 7])
    bad_stats = dict(good, latency_ms=[1, 2, 3])
    return {
        "older": (json.dumps(older), "older"),
        "newer": (json.dumps(newer), "99"),
        "no_version": (json.dumps(no_version), "schema_version"),
        "samples_not_list": (json.dumps(nonsense), "samples_ns"),
        "negative_sample": (json.dumps(negative), "samples_ns"),
        "stats_not_object": (json.dumps(bad_stats), "latency_ms"),
        "list": ("[1, 2, 3]", "r2.json"),
        "not_json": ('{"schema_version": 1, ', "r2.json"),
        "empty": ("", "r2.json"),
    }


REPORT_CASES = [
    "older",
    "newer",
    "no_version",
    "samples_not_list",
    "negative_sample",
    "stats_not_object",
    "list",
    "not_json",
    "empty",
]


@pytest.mark.parametrize("case", REPORT_CASES)
def test_bad_report_compare(good_report: dict, tmp_path: Path, case: str) -> None:
    text, fragment = _report_cases(good_report)[case]
    r1, r2 = tmp_path / "r1.json", tmp_path / "r2.json"
    r1.write_text(json.dumps(good_report))
    r2.write_text(text)
    out = tmp_path / "cmp.md"
    result = run_cli("compare", str(r1), str(r2), "--format", "markdown", "--out", str(out))
    assert_user_error(result, fragment)
    _assert_nothing_written(out)


# ---- tampered bundles ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b"
    result = run_cli(
        "deploy", str(tiny_models["onnx"]), "--profile", "x86-avx2", "--out", str(out),
        "--no-measure", "--no-verify",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def _tampered(bundle: Path, tmp_path: Path, what: str) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    if what == "model_byte":
        model = copy / "model.onnx"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0x01
        model.write_bytes(bytes(data))
    elif what == "model_missing":
        (copy / "model.onnx").unlink()
    elif what == "manifest_nonsense":
        (copy / "manifest.json").write_text('{"schema_version": 1, "model": 7}')
    elif what == "manifest_missing":
        (copy / "manifest.json").unlink()
    elif what == "runtime_list":  # found by the fuzz campaign: a list where a name belongs
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["runtime"]["name"] = ["onnxruntime"]
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


TAMPER_CASES = [
    ("model_byte", "run", "does not match its sha256"),
    ("model_byte", "bench", "does not match its sha256"),
    ("model_missing", "run", "is missing"),
    ("manifest_nonsense", "run", "'model' is not an object"),
    ("manifest_missing", "run", "not an edgekit bundle"),
    ("runtime_list", "run", "runtime 'name' is not a name"),
]


@pytest.mark.parametrize(
    ("what", "command", "fragment"), TAMPER_CASES, ids=[f"{w}-{c}" for w, c, _ in TAMPER_CASES]
)
def test_tampered_bundle(
    bundle: Path, tmp_path: Path, what: str, command: str, fragment: str
) -> None:
    copy = _tampered(bundle, tmp_path, what)
    before = _snapshot(copy)
    out = tmp_path / ("y.npz" if command == "run" else "r.json")
    result = run_cli(command, str(copy), "--output" if command == "run" else "--out", str(out))
    assert_user_error(result, fragment)
    _assert_nothing_written(out)
    assert _snapshot(copy) == before
