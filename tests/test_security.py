"""Untrusted models: no code from a file runs, and no file outside the model's folder is read."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import edgekit
from edgekit.errors import ModelError, UnsupportedModelError
from tests.conftest import assert_user_error, run_cli

ROOT = Path(__file__).resolve().parents[1]

# --- Keras: Lambda layers run code when the model is rebuilt -------------------------------


MARKER_ENV = "EDGEKIT_TEST_LAMBDA_MARKER"


@pytest.fixture(scope="module")
def lambda_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A .keras and an .h5 whose Lambda writes a marker file whenever Keras rebuilds it."""
    import keras

    folder = tmp_path_factory.mktemp("lambda")
    marker = folder / "MARKER"
    # Keras saves a lambda's bytecode but not its globals, defaults or closure, so the marker's
    # path reaches it through the environment (which `run_cli`'s subprocess inherits).
    os.environ[MARKER_ENV] = str(marker)
    plant = lambda x: (  # noqa: E731
        __import__("pathlib")
        .Path(__import__("os").environ["EDGEKIT_TEST_LAMBDA_MARKER"])
        .write_text("ran"),
        x,
    )[1]
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Lambda(plant)(inp))
    paths = {"keras": folder / "evil.keras", "h5": folder / "evil.h5"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    marker.unlink(missing_ok=True)  # building the model above ran it once, here
    yield {**paths, "marker": marker}
    del os.environ[MARKER_ENV]


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_inspect_refuses_a_lambda_without_trust(lambda_models: dict[str, Path], kind: str) -> None:
    result = run_cli("inspect", str(lambda_models[kind]), "--json")
    assert_user_error(result, str(lambda_models[kind]), "Lambda", "--trust-model")
    assert not lambda_models["marker"].exists(), "the Lambda ran without --trust-model"


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_keras_safe_mode_refuses_too(
    lambda_models: dict[str, Path], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second line of defence: with edgekit's own config check switched off, safe_mode holds."""
    from edgekit.formats import keras as keras_reader

    monkeypatch.setattr(keras_reader, "check_no_code", lambda model, config: None)
    with pytest.raises(UnsupportedModelError, match="--trust-model"):
        _ = edgekit.load(lambda_models[kind]).signature
    assert not lambda_models["marker"].exists()


def test_trust_model_loads_the_keras_archive(lambda_models: dict[str, Path]) -> None:
    try:
        sig = edgekit.load(lambda_models["keras"], trust_model=True).signature
        assert [t.shape for t in sig.inputs] == [(None, 4)]
        assert lambda_models["marker"].exists()  # it really is the code that was refused
    finally:
        lambda_models["marker"].unlink(missing_ok=True)


def test_trust_model_loads_the_h5_through_inspect(lambda_models: dict[str, Path]) -> None:
    try:
        result = run_cli(
            "inspect", str(lambda_models["h5"]), "--trust-model", "--json", "--runtime", "litert"
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["inputs"][0]["shape"] == [None, 4]
        assert lambda_models["marker"].exists()
    finally:
        lambda_models["marker"].unlink(missing_ok=True)


def _rewrite_h5_config(src: Path, dst: Path, edit) -> None:
    import shutil

    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as fh:
        config = json.loads(fh.attrs["model_config"])
        edit(config)
        fh.attrs["model_config"] = json.dumps(config)


def _layers(config: dict) -> list[dict]:
    return config["config"]["layers"]


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        # A Keras 2 .h5 stores a lambda as [marshal'd code, defaults, closure].
        (
            lambda c: _layers(c)[1]["config"].update(
                function=["4wEAAAAAAAAA", None, None], function_type="lambda"
            ),
            "Lambda",
        ),
        # An object from an arbitrary module: Keras before 3.9 imported it (CVE-2025-1550).
        (
            lambda c: _layers(c)[1].update(
                class_name="Dense", module="os", config={"name": "d", "units": 1}
            ),
            "'os'",
        ),
    ],
    ids=["keras2-lambda", "foreign-module"],
)
def test_config_check_runs_before_keras(
    lambda_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit, fragment
) -> None:
    import keras

    def must_not_load(*args, **kwargs):
        raise AssertionError("Keras was asked to load an untrusted model with code in it")

    monkeypatch.setattr(keras.saving, "load_model", must_not_load)
    path = tmp_path / "edited.h5"
    _rewrite_h5_config(lambda_models["h5"], path, edit)
    with pytest.raises(UnsupportedModelError, match=fragment) as err:
        _ = edgekit.load(path).signature
    assert "--trust-model" in str(err.value)


def test_a_model_without_code_needs_no_trust(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((3,), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, activation="relu", name="y")(inp))
    for name in ("plain.keras", "plain.h5"):
        model.save(tmp_path / name)
        assert edgekit.load(tmp_path / name).param_count == 8


# --- ONNX external data stays inside the model's folder ------------------------------------


def _external_model(folder: Path, location: str) -> Path:
    """Y = X + W, with W (4 floats) stored in an external file named by `location`."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    weights = numpy_helper.from_array(np.arange(4, dtype=np.float32), name="W")
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save_model(model, folder / "model.onnx", save_as_external_data=True,
                    location="w.bin", size_threshold=0)  # fmt: skip
    proto = onnx.load(folder / "model.onnx", load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    (folder / "model.onnx").write_bytes(proto.SerializeToString())
    return folder / "model.onnx"


def test_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    path = _external_model(tmp_path / "m", "w.bin")
    model = edgekit.load(path)
    assert model.param_count == 4
    assert [p.name for p in model.files] == ["model.onnx", "w.bin"]
    assert len(model.sha256) == 64


def test_external_data_in_a_subfolder_and_through_an_inner_symlink_loads(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    path = _external_model(folder, "data/../w.bin")
    assert edgekit.load(path).param_count == 4
    (folder / "link.bin").symlink_to(folder / "w.bin")
    path = _external_model(folder, "link.bin")
    assert edgekit.load(path).param_count == 4


@pytest.mark.parametrize(
    "location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin", "link-out.bin", "."]
)
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 16)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "link-out.bin").symlink_to(secret)
    path = _external_model(folder, location)
    with pytest.raises(ModelError) as err:
        edgekit.load(path)
    assert "'W'" in str(err.value) and location in str(err.value)
    # The reader refuses it too when handed a Model that skipped detection.
    from edgekit.formats.onnx import load_proto
    from edgekit.model import Format, Model

    with pytest.raises(ModelError, match="outside the model's folder"):
        load_proto(Model(path, Format.ONNX, [path]), load_external_data=True)


def test_inspect_names_the_tensor_and_the_path(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = _external_model(tmp_path / "m", "../secret.bin")
    result = run_cli("inspect", str(path), "--json")
    assert_user_error(result, str(path), "'W'", "'../secret.bin'", "outside the model's folder")


# --- no pickle, eval or exec on anything read from a file ------------------------------------

FORBIDDEN = {
    r"\bpickle\.loads?\(": "pickle runs code from the data it loads",
    r"\bcPickle\b|\bdill\b|\bshelve\b|\bjoblib\.load\(": "pickle-based loaders run code",
    r"\bmarshal\.loads?\(": "marshal loads code objects",
    r"(?<![\w.])eval\(": "eval runs code",
    r"(?<![\w.])exec\(": "exec runs code",
    r"allow_pickle\s*=\s*True": "np.load must use allow_pickle=False",
    r"\byaml\.load\(": "use yaml.safe_load",
    r"\bweights_only\s*=\s*False": "torch.load must use weights_only=True",
}


def _package_sources() -> list[Path]:
    return sorted((ROOT / "edgekit").rglob("*.py"))


def _calls(text: str, name: str) -> list[str]:
    """The full text of every call `name(...)`, parentheses matched."""
    calls = []
    for match in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 0, match.end() - 1
        while i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        calls.append(text[match.start() : i + 1])
    return calls


def test_no_code_runs_from_data_anywhere_in_edgekit() -> None:
    offenders = []
    for path in _package_sources():
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, why in FORBIDDEN.items():
                if re.search(pattern, code):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {why}: {line.strip()}")
        for call in _calls(text, "np.load") + _calls(text, "numpy.load"):
            if not re.search(r"allow_pickle\s*=\s*False", call):
                offenders.append(f"{path.relative_to(ROOT)}: {call!r} lacks allow_pickle=False")
        for call in _calls(text, "torch.load"):
            if not re.search(r"weights_only\s*=\s*True", call):
                offenders.append(f"{path.relative_to(ROOT)}: {call!r} lacks weights_only=True")
    assert not offenders, "\n".join(offenders)


def test_the_grep_catches_what_it_should(tmp_path: Path) -> None:
    bad = "x = np.load(path)\ny = pickle.load(fh)\nz = eval(text)\n"
    good = "x = np.load(path, allow_pickle=False)\nmodel.eval()\nevaluate(x)\n"
    assert len(_calls(bad, "np.load")) == 1
    assert not re.search(r"allow_pickle\s*=\s*False", _calls(bad, "np.load")[0])
    assert re.search(r"allow_pickle\s*=\s*False", _calls(good, "np.load")[0])
    hits = [p for p in FORBIDDEN for line in bad.splitlines() if re.search(p, line)]
    assert len(hits) == 2
    assert not [p for p in FORBIDDEN for line in good.splitlines() if re.search(p, line)]
