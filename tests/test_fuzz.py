"""Property-based fuzzing of everything edgekit parses from a file.

Property: whatever the bytes, a parser either succeeds or raises an `EdgekitError`
(one sentence for the user); any other exception, and any case that runs past
its time bound, is a bug in edgekit.

CI runs a small, reproducible sample (`derandomize=True`). A long campaign runs
the same targets with more examples and a random seed:

    EDGEKIT_FUZZ_EXAMPLES=10000 nice -n 10 .venv/bin/python -m pytest tests/test_fuzz.py -p no:cacheprovider

Inputs that once crashed a parser are kept below as regression tests.
"""

from __future__ import annotations

import faulthandler
import hashlib
import importlib
import json
import math
import os
import re
import signal
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import edgekit
from edgekit.errors import EdgekitError, ModelError

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models"
PROFILES_DIR = ROOT / "profiles"

DEFAULT_EXAMPLES = 60
EXAMPLES = int(os.environ.get("EDGEKIT_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
CAMPAIGN = EXAMPLES > DEFAULT_EXAMPLES
# Per-case bound: hypothesis' deadline (80 %) reports a slow case, the alarm stops a hung one.
CASE_SECONDS = float(os.environ.get("EDGEKIT_FUZZ_CASE_SECONDS", "10"))


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    return settings(
        max_examples=examples,
        derandomize=not CAMPAIGN,
        deadline=timedelta(seconds=CASE_SECONDS * 0.8),
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


_HANG_LOG: list[Any] = []


def _hang_log() -> Any:
    """Where faulthandler writes the traceback of a case that never returned."""
    if not _HANG_LOG:
        folder = os.environ.get("EDGEKIT_FUZZ_FAILURES") or tempfile.gettempdir()
        Path(folder).mkdir(parents=True, exist_ok=True)
        _HANG_LOG.append(open(Path(folder) / "edgekit-fuzz-hang.txt", "w"))
    return _HANG_LOG[0]


class CaseTimeout(BaseException):
    """A fuzz case ran past its hard bound (BaseException so no `except Exception` hides it)."""


@contextmanager
def time_bound(seconds: float = CASE_SECONDS) -> Iterator[None]:
    """Raise CaseTimeout after `seconds`; kill the process if C code never returns."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"the case ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    # pytest captures fd 2, and a process killed by faulthandler loses what was captured,
    # so the traceback of a hang in C code goes to a file of its own.
    faulthandler.dump_traceback_later(seconds * 3, exit=True, file=_hang_log())
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()


def only_edgekit_errors(fn: Callable[[], Any], keep: Path | None = None) -> Any:
    """Run `fn` under the time bound; an EdgekitError is a fine answer, anything else fails.

    With EDGEKIT_FUZZ_FAILURES=DIR, the input file `keep` of a failing case is copied there
    so that it can become a regression test.
    """
    save_to = os.environ.get("EDGEKIT_FUZZ_FAILURES")
    if save_to and keep is not None and keep.is_file():
        # A hang in C code ends the process without a word: the input is kept beforehand.
        Path(save_to).mkdir(parents=True, exist_ok=True)
        (Path(save_to) / f"last-case-{keep.name}").write_bytes(keep.read_bytes())
    try:
        with time_bound():
            try:
                result = fn()
            except EdgekitError as exc:
                text = str(exc)
                assert text.strip(), "an EdgekitError must say what is wrong"
                assert "Traceback" not in text
                event(f"{type(exc).__name__}: {_reason(text, keep)}")
                return None
            event("accepted")
            return result
    except BaseException:
        if save_to and keep is not None and keep.is_file():
            data = keep.read_bytes()
            name = f"{hashlib.sha256(data).hexdigest()[:16]}-{keep.name}"
            Path(save_to).mkdir(parents=True, exist_ok=True)
            (Path(save_to) / name).write_bytes(data)
        raise


def _reason(text: str, keep: Path | None) -> str:
    """The gist of an error message, for the campaign's statistics: no paths, no numbers."""
    if keep is not None:
        text = text.replace(str(keep), "").replace(str(keep.parent), "")
    text = re.sub(r"\(.*", "", text.lstrip(": "))
    text = re.sub(r"'[^']*'|\[[^\]]*\]|\d+", "_", text)
    return text[:60]


def require(module: str, attr: str) -> Any:
    """The function `module.attr`, or skip: colleagues are still writing some parsers."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} does not exist yet")
    if not hasattr(mod, attr):
        pytest.skip(f"{module}.{attr} does not exist yet")
    return getattr(mod, attr)


# --- mutations ----------------------------------------------------------------------

# Values that flatbuffer offsets, vector lengths and protobuf varints trip over.
_INTERESTING_WORDS = (0, 1, 2, 4, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                      0xFFFFFFFF, 0xFFFFFFFC)  # fmt: skip


class Mutant(bytes):
    """Mutated bytes that print as the list of mutations, not as kilobytes of data."""

    ops: tuple[str, ...] = ()

    def __repr__(self) -> str:
        digest = hashlib.sha256(self).hexdigest()[:12]
        return f"<{len(self)} bytes sha256:{digest}.. after {', '.join(self.ops)}>"


def _mutant(data: bytes, ops: list[str]) -> Mutant:
    m = Mutant(data)
    m.ops = tuple(ops)
    return m


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes, tokens: tuple[bytes, ...] = ()) -> Mutant:
    """`original` after 1-4 mutations: flips, overwrites, truncation, insertion, zeroing..."""
    data = bytearray(original)
    ops: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        if n == 0:
            data += draw(st.binary(min_size=1, max_size=32))
            ops.append("append")
            continue
        # Half the positions land in the first KiB, where headers, roots and tables live.
        pos = draw(st.one_of(st.integers(0, min(n, 1024) - 1), st.integers(0, n - 1)))
        span = draw(st.integers(1, 256))
        kind = draw(
            st.sampled_from(
                ["flip", "byte", "word", "truncate", "insert", "zero", "delete", "body", "copy"]
                + (["token"] if tokens else [])
            )
        )
        ops.append(f"{kind}@{pos}")
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "word":
            word = draw(st.one_of(st.sampled_from(_INTERESTING_WORDS), st.just(n), st.just(max(n - 4, 0)),
                                  st.integers(0, 2**32 - 1)))  # fmt: skip
            data[pos : pos + 4] = word.to_bytes(4, "little")
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "zero":
            data[pos : pos + span] = bytes(len(data[pos : pos + span]))
        elif kind == "delete":
            del data[pos : pos + span]
        elif kind == "body":  # header kept, the rest replaced by noise of the same length
            keep = min(n, draw(st.sampled_from([8, 16, 64])))
            body = draw(st.binary(min_size=0, max_size=512))
            data[keep:] = (body * (n // max(len(body), 1) + 1))[: n - keep] if body else b""
        elif kind == "copy":
            src = draw(st.integers(0, n - 1))
            data[pos:pos] = data[src : src + span]
        else:
            data[pos:pos] = draw(st.sampled_from(tokens))
    return _mutant(bytes(data), ops)


class Blobs(dict):
    """File name -> bytes, printed as names and sizes when hypothesis reports a failing case."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: <{len(v)} bytes>" for k, v in sorted(self.items())) + "}"


def _read_models(suffixes: tuple[str, ...]) -> dict[str, bytes]:
    if not SHARED_MODELS.is_dir():
        return {}
    return Blobs((p.name, p.read_bytes()) for p in sorted(SHARED_MODELS.iterdir()) if p.suffix in suffixes)  # fmt: skip


def _skip_without(models: dict[str, bytes]) -> None:
    if not models:
        pytest.skip(f"{SHARED_MODELS} is absent or holds no model of this format")


@pytest.fixture(autouse=True, scope="module")
def short_h5_timeout() -> Iterator[None]:
    """edgekit gives HDF5 20 s to read a config; a fuzz case gets less than that in all."""
    from edgekit.formats import keras as keras_reader

    old = keras_reader.H5_CONFIG_SECONDS
    keras_reader.H5_CONFIG_SECONDS = min(old, CASE_SECONDS / 5)
    yield
    keras_reader.H5_CONFIG_SECONDS = old


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def exercise_model(path: Path) -> None:
    """Everything `inspect` reads without a runtime; the answers must be sane, too."""
    import edgekit

    def read() -> None:
        model = edgekit.load(path)
        sig = model.signature
        json.dumps(sig.to_dict())
        ops = model.op_histogram
        assert all(isinstance(k, str) and v > 0 for k, v in ops.items()), ops
        params = model.param_count
        assert isinstance(params, int) and params >= 0, params
        assert model.size_bytes >= 0

    only_edgekit_errors(read, keep=path)


# --- model formats --------------------------------------------------------------------

TFLITE = _read_models((".tflite",))
ONNX = _read_models((".onnx",))


def _mutated_model(work_dir: Path, data: st.DataObject, models: dict[str, bytes]) -> None:
    """Write a mutated copy of one of `models` and read it as a user would."""
    _skip_without(models)
    name = data.draw(st.sampled_from(sorted(models)), label="model")
    path = work_dir / name
    path.write_bytes(data.draw(mutated_bytes(models[name]), label="bytes"))
    exercise_model(path)


@fuzz_settings()
@given(data=st.data())
def test_tflite_bytes(work_dir: Path, data: st.DataObject) -> None:
    _mutated_model(work_dir, data, TFLITE)


@fuzz_settings()
@given(data=st.data())
def test_onnx_bytes(work_dir: Path, data: st.DataObject) -> None:
    _mutated_model(work_dir, data, ONNX)


_ONNX_FIELD_EDITS = ("dims", "data_type", "raw_data", "external", "input_dim", "elem_type",
                     "op_type", "drop_output", "const_attr", "float_data")  # fmt: skip
_ODD_INTS = st.one_of(st.integers(-3, 8), st.sampled_from([-(2**63), 2**31, 2**40, 2**63 - 1]))


@st.composite
def onnx_field_edits(draw: st.DrawFn, original: bytes) -> Mutant:
    """A parseable ONNX model whose fields lie: bytes mutations rarely get past protobuf."""
    import onnx

    proto = onnx.ModelProto()
    proto.ParseFromString(original)
    graph = proto.graph
    ops: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(_ONNX_FIELD_EDITS))
        ops.append(kind)
        inits = list(graph.initializer)
        if kind in ("dims", "data_type", "raw_data", "external", "float_data") and inits:
            t = graph.initializer[draw(st.integers(0, len(inits) - 1))]
            if kind == "dims":
                del t.dims[:]
                t.dims.extend(draw(st.lists(_ODD_INTS, max_size=5)))
            elif kind == "data_type":
                t.data_type = draw(st.integers(0, 40))
            elif kind == "raw_data":
                t.raw_data = t.raw_data[: draw(st.integers(0, max(len(t.raw_data) - 1, 0)))]
            elif kind == "float_data":
                t.ClearField("raw_data")
                t.float_data.extend(draw(st.lists(st.floats(width=32), max_size=4)))
            else:
                t.data_location = onnx.TensorProto.EXTERNAL
                entry = t.external_data.add()
                entry.key = draw(st.sampled_from(["location", "offset", "length", "junk"]))
                entry.value = draw(st.sampled_from(["w.bin", "../w.bin", "/etc/passwd", "", "a/../../b", "-1", "99999999999"]))  # fmt: skip
        elif kind == "input_dim" and graph.input:
            v = graph.input[draw(st.integers(0, len(graph.input) - 1))]
            dims = v.type.tensor_type.shape.dim
            if dims:
                d = dims[draw(st.integers(0, len(dims) - 1))]
                if draw(st.booleans()):
                    d.dim_value = draw(_ODD_INTS)
                else:
                    d.dim_param = draw(st.text(max_size=8))
        elif kind == "elem_type" and graph.output:
            graph.output[0].type.tensor_type.elem_type = draw(st.integers(-1, 40))
        elif kind == "op_type" and graph.node:
            n = graph.node[draw(st.integers(0, len(graph.node) - 1))]
            n.op_type = draw(st.sampled_from(["Constant", "ConstantOfShape", "", "Loop", "X"]))
            n.domain = draw(st.sampled_from(["", "ai.onnx", "com.microsoft", "x" * 300]))
        elif kind == "drop_output" and graph.output:
            del graph.output[:]
        elif kind == "const_attr" and graph.node:
            n = graph.node[draw(st.integers(0, len(graph.node) - 1))]
            n.op_type = "Constant"
            attr = n.attribute.add()
            attr.name = "value"
            attr.type = onnx.AttributeProto.TENSOR
            attr.t.dims.extend(draw(st.lists(_ODD_INTS, max_size=4)))
            attr.t.data_type = draw(st.integers(0, 20))
    return _mutant(proto.SerializeToString(), ops)


@fuzz_settings()
@given(data=st.data())
def test_onnx_fields(work_dir: Path, data: st.DataObject) -> None:
    _skip_without(ONNX)
    name = data.draw(st.sampled_from(sorted(ONNX)), label="model")
    path = work_dir / f"fields_{name}"
    path.write_bytes(data.draw(onnx_field_edits(ONNX[name]), label="proto"))
    exercise_model(path)


@fuzz_settings()
@given(
    content=st.one_of(
        st.binary(max_size=256),
        st.sampled_from([b"TFL3", b"\x89HDF\r\n\x1a\n", b"PK\x03\x04", b"<net>", b"<", b"\x08\x07"])
        .flatmap(lambda magic: st.binary(max_size=256).map(lambda b: magic + b))
        .map(lambda b: b[:4] + b"TFL3" + b[8:] if b.startswith(b"TFL3") else b),
    ),
    suffix=st.sampled_from(["", ".tflite", ".onnx", ".keras", ".h5", ".xml", ".bin"]),
)
def test_detect_format_on_junk(work_dir: Path, content: bytes, suffix: str) -> None:
    path = work_dir / f"junk{suffix}"
    path.write_bytes(content)
    (work_dir / "junk.bin").write_bytes(b"\0" * 8)  # an IR's weights, so .xml goes further
    exercise_model(path)


# Keras and OpenVINO go through the frameworks' own loaders (tens of ms to seconds per case
# that gets that far), so CI takes a smaller sample of them.
SLOW_EXAMPLES = EXAMPLES if CAMPAIGN else min(EXAMPLES, 25)


@pytest.fixture(scope="module")
def slow_format_models(work_dir: Path) -> Blobs:
    """A tiny .keras, .h5 and OpenVINO IR made here (the shared folder has none)."""
    import keras
    import openvino as ov

    src = work_dir / "src"
    src.mkdir()
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, name="y")(inp))
    model.save(src / "m.keras")
    model.save(src / "m.h5")
    if ONNX:
        onnx_path = src / "small.onnx"
        onnx_path.write_bytes(ONNX[min(ONNX, key=lambda k: len(ONNX[k]))])
        ov.save_model(ov.convert_model(str(onnx_path)), str(src / "m.xml"))
    return Blobs((p.name, p.read_bytes()) for p in src.iterdir() if p.suffix in (".keras", ".h5", ".xml", ".bin"))  # fmt: skip


@fuzz_settings(SLOW_EXAMPLES)
@given(data=st.data())
def test_keras_bytes(work_dir: Path, slow_format_models: dict[str, bytes], data: st.DataObject) -> None:  # fmt: skip
    name = data.draw(st.sampled_from(["m.keras", "m.h5"]), label="model")
    path = work_dir / name
    path.write_bytes(data.draw(mutated_bytes(slow_format_models[name]), label="bytes"))
    exercise_model(path)


_XML_TOKENS = (b"<", b">", b"</layer>", b'"', b"&amp;", b"&#0;", b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
               b' shape="-1"', b' offset="999999999"', b' size="-4"', b' element_type="u1"',
               b' version="opset999"', b' precision="FP64"', b" id=\"0\"")  # fmt: skip


@fuzz_settings(SLOW_EXAMPLES)
@given(data=st.data())
def test_openvino_ir(work_dir: Path, slow_format_models: dict[str, bytes], data: st.DataObject) -> None:  # fmt: skip
    if "m.xml" not in slow_format_models:
        pytest.skip(f"no ONNX model in {SHARED_MODELS} to make an IR from")
    ir = work_dir / "ir"
    ir.mkdir(exist_ok=True)
    xml, weights = slow_format_models["m.xml"], slow_format_models["m.bin"]
    if data.draw(st.booleans(), label="damage xml"):
        xml = data.draw(mutated_bytes(xml, _XML_TOKENS), label="xml")
    else:
        weights = data.draw(mutated_bytes(weights), label="bin")
    (ir / "m.xml").write_bytes(xml)
    (ir / "m.bin").write_bytes(weights)
    exercise_model(ir / "m.xml")


# --- profiles -----------------------------------------------------------------------------

PROFILE_TEXTS = {p.name: p.read_bytes() for p in sorted(PROFILES_DIR.glob("*.toml"))}
_TOML_TOKENS = (b"[", b"]", b"[[", b"{", b"}", b'"', b"'''", b'"""', b"=", b"\n", b"#", b"\\u",
                b"\\U0010ffff", b"1e999", b"inf", b"nan", b"-0", b"0x", b"1979-05-27", b",",
                b"true", b"\xff", b"\x00", b"a.b.c = 1\n", b"[target]\n", b"threads = -1\n",
                b'max_model_bytes = "99999999999999 TiB"\n', b"precision = []\n",
                b'runtime = "openvino"\n', b"[limits]\n", b"static_shapes = 1\n")  # fmt: skip


@fuzz_settings()
@given(data=st.data())
def test_profile_toml(work_dir: Path, data: st.DataObject) -> None:
    from edgekit.profiles import load_profile

    name = data.draw(st.sampled_from(sorted(PROFILE_TEXTS)), label="profile")
    path = work_dir / name
    path.write_bytes(data.draw(mutated_bytes(PROFILE_TEXTS[name], _TOML_TOKENS), label="text"))
    only_edgekit_errors(lambda: load_profile(path), keep=path)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "tflite",
            "onnx",
            "openvino",
            "litert",
            "onnxruntime",
            "int8",
            "fp32",
            "CPU",
            "x86_64",
            "1 MiB",
            "{model}",
            "float32",
            "xnnpack",
        ]
    ),  # fmt: skip
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def profile_dicts(draw: st.DrawFn) -> Any:
    """A shipped profile with a few keys replaced, dropped or added, or random data."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_VALUES)
    base = tomllib.loads(draw(st.sampled_from(sorted(PROFILE_TEXTS.values()))).decode())
    for _ in range(draw(st.integers(1, 4))):
        table = base
        keys = list(table)
        if keys and draw(st.booleans()):
            sub = table[draw(st.sampled_from(keys))]
            if isinstance(sub, dict):
                table = sub
        keys = list(table)
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "add" or not keys:
            table[draw(st.text(max_size=10))] = draw(_VALUES)
        elif action == "drop":
            del table[draw(st.sampled_from(keys))]
        else:
            table[draw(st.sampled_from(keys))] = draw(_VALUES)
    return base


@fuzz_settings()
@given(data=profile_dicts())
def test_profile_validate(data: Any) -> None:
    from edgekit.profiles import validate

    only_edgekit_errors(lambda: validate(data, "fuzz.toml"))


# --- reports and bundles (parsers written by colleagues) -----------------------------------

_JSON_TOKENS = (b"{", b"}", b"[", b"]", b'"', b",", b":", b"null", b"1e999", b"-0", b"NaN",
                b"Infinity", b"\\ud800", b'"schema_version": 1', b'"schema_version": 2',
                b"\xff", b"\x00", b"9" * 40)  # fmt: skip


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    """Mutated JSON text of an object that looks like what the parser expects, or random JSON."""
    doc = draw(st.dictionaries(st.text(max_size=12), _VALUES, max_size=6))
    if draw(st.booleans()):
        doc["schema_version"] = draw(st.one_of(st.just(1), _SCALARS))
    text = json.dumps(doc, allow_nan=True).encode()
    if draw(st.booleans()):
        text = draw(mutated_bytes(text, _JSON_TOKENS))
    return text


@fuzz_settings()
@given(text=json_documents())
def test_report_json(work_dir: Path, text: bytes) -> None:
    load_report = require("edgekit.bench.report", "load_report")
    path = work_dir / "report.json"
    path.write_bytes(text)
    only_edgekit_errors(lambda: load_report(path), keep=path)


def _bundle_seed() -> tuple[dict[str, Any], str, bytes]:
    """A manifest shaped like the ones `deploy` writes, for the smallest shared model."""
    if TFLITE:
        name = min(TFLITE, key=lambda k: len(TFLITE[k]))
        data = TFLITE[name]
    else:
        name, data = "model.tflite", b"\0" * 16
    manifest = {
        "schema_version": 1,
        "files": {name: hashlib.sha256(data).hexdigest()},
        "model": {"entry": name, "format": "tflite"},
        "runtime": {"name": "litert", "device": "CPU", "threads": 1},
    }
    return manifest, name, data


_MANIFEST_VALUES = st.one_of(
    _VALUES, st.sampled_from(["../model.tflite", "/etc/passwd", "a\x00b", ".", "", "model.tflite"])
)


@st.composite
def manifest_documents(draw: st.DrawFn) -> bytes:
    """The seed manifest with keys replaced, dropped or added at any depth, maybe as bad JSON."""
    manifest = json.loads(json.dumps(_bundle_seed()[0]))
    for _ in range(draw(st.integers(1, 4))):
        table: Any = manifest
        while isinstance(table, dict) and table and draw(st.booleans()):
            child = table[draw(st.sampled_from(sorted(table)))]
            if not isinstance(child, dict):
                break
            table = child
        if not isinstance(table, dict):
            continue
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "add" or not table:
            table[draw(st.one_of(st.text(max_size=10), _MANIFEST_VALUES.filter(
                lambda v: isinstance(v, str))))] = draw(_MANIFEST_VALUES)  # fmt: skip
        elif action == "drop":
            del table[draw(st.sampled_from(sorted(table)))]
        else:
            table[draw(st.sampled_from(sorted(table)))] = draw(_MANIFEST_VALUES)
    text = json.dumps(manifest).encode()
    if draw(st.integers(0, 4)) == 0:
        text = draw(mutated_bytes(text, _JSON_TOKENS))
    return text


def _write_bundle(folder: Path, manifest: bytes, with_model: bool) -> None:
    _, name, data = _bundle_seed()
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / "manifest.json").write_bytes(manifest)
    if with_model:
        (folder / name).write_bytes(data)


@fuzz_settings()
@given(text=st.one_of(manifest_documents(), json_documents()), with_model=st.booleans())
def test_bundle_manifest(work_dir: Path, text: bytes, with_model: bool) -> None:
    load_bundle = require("edgekit.deploy", "load_bundle")
    bundle = work_dir / "bundle"
    _write_bundle(bundle, text, with_model)
    only_edgekit_errors(lambda: load_bundle(bundle), keep=bundle / "manifest.json")


@pytest.fixture(scope="module")
def bundle_archive(work_dir: Path) -> bytes:
    """A well-formed bundle .tar.gz (manifest and model in one top folder)."""
    import io
    import tarfile

    manifest, _, _ = _bundle_seed()
    src = work_dir / "archive-src" / "bundle"
    src.parent.mkdir()
    _write_bundle(src, json.dumps(manifest).encode(), with_model=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname="bundle")
    return _mutant(buf.getvalue(), ["none: the archive deploy would write"])


@fuzz_settings()
@given(data=st.data())
def test_bundle_archive(work_dir: Path, bundle_archive: bytes, data: st.DataObject) -> None:
    load_bundle = require("edgekit.deploy", "load_bundle")
    import gzip
    import shutil

    if data.draw(st.booleans(), label="damage the tar inside the gzip"):
        raw = gzip.decompress(bundle_archive)
        archive = gzip.compress(data.draw(mutated_bytes(raw), label="tar"), mtime=0)
    else:
        archive = data.draw(mutated_bytes(bundle_archive), label="tar.gz")
    path = work_dir / "bundle.tar.gz"
    path.write_bytes(archive)
    dest = work_dir / "extracted"
    shutil.rmtree(dest, ignore_errors=True)
    try:
        only_edgekit_errors(lambda: load_bundle(path, extract_to=dest), keep=path)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


# --- regressions: inputs the fuzzer found, kept forever ------------------------------------


def test_harness_catches_a_hang() -> None:
    """The per-case bound really stops a parser that never returns."""
    with pytest.raises(CaseTimeout):
        with time_bound(0.2):
            while True:
                math.sqrt(2)


# Deep nesting makes Python's recursive parsers (tomllib, json) raise RecursionError, which
# the profile and report readers turn into their own one-sentence errors.


def test_profile_with_deeply_nested_arrays(tmp_path: Path) -> None:
    from edgekit.profiles import load_profile

    path = tmp_path / "deep.toml"
    path.write_text("name = " + "[" * 5000)
    with pytest.raises(EdgekitError, match="nested too deeply"):
        load_profile(path)


def test_report_with_deeply_nested_arrays(tmp_path: Path) -> None:
    load_report = require("edgekit.bench.report", "load_report")
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    with pytest.raises(EdgekitError, match="nested too deeply"):
        load_report(path)


def test_openvino_ir_with_bytes_that_are_not_utf8(work_dir: Path, slow_format_models: dict[str, bytes]) -> None:  # fmt: skip
    """OpenVINO quoted the bad byte in its error and the message itself failed to decode."""
    if "m.xml" not in slow_format_models:
        pytest.skip(f"no ONNX model in {SHARED_MODELS} to make an IR from")
    ir = work_dir / "ir-utf8"
    ir.mkdir()
    (ir / "m.xml").write_bytes(slow_format_models["m.xml"].replace(b'shape="', b'shape="\x80', 1))
    (ir / "m.bin").write_bytes(slow_format_models["m.bin"])
    with time_bound(), pytest.raises(ModelError, match="not UTF-8"):
        _ = edgekit.load(ir / "m.xml").signature


def test_openvino_port_name_that_is_not_utf8(work_dir: Path, slow_format_models: dict[str, bytes]) -> None:  # fmt: skip
    """OpenVINO read the IR, then `get_any_name()` raised UnicodeDecodeError for the name."""
    if "m.xml" not in slow_format_models:
        pytest.skip(f"no ONNX model in {SHARED_MODELS} to make an IR from")
    ir = work_dir / "ir-name"
    ir.mkdir()
    xml = slow_format_models["m.xml"]
    assert b'names="data_0"' in xml
    (ir / "m.xml").write_bytes(xml.replace(b'names="data_0"', b'names="\x80ata_0"', 1))
    (ir / "m.bin").write_bytes(slow_format_models["m.bin"])
    with time_bound(), pytest.raises(ModelError, match="not UTF-8"):
        _ = edgekit.load(ir / "m.xml").signature


# ONNX: found by test_onnx_bytes / test_onnx_fields, fixed in edgekit/formats/onnx.py.


def _edited_onnx(tmp_path: Path, edit: Callable[[Any], None]) -> Path:
    import onnx

    if "light_squeezenet.onnx" not in ONNX:
        pytest.skip(f"light_squeezenet.onnx is not in {SHARED_MODELS}")
    proto = onnx.ModelProto()
    proto.ParseFromString(ONNX["light_squeezenet.onnx"])
    edit(proto)
    path = tmp_path / "edited.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def test_onnx_op_type_that_is_not_utf8(tmp_path: Path) -> None:
    """ONNX is proto2: a damaged string field comes back as bytes, which broke the op histogram."""
    if "light_squeezenet.onnx" not in ONNX:
        pytest.skip(f"light_squeezenet.onnx is not in {SHARED_MODELS}")
    data = ONNX["light_squeezenet.onnx"]
    assert b"\x0fConstantOfShape" in data
    path = tmp_path / "bad-op.onnx"
    path.write_bytes(data.replace(b"\x0fConstantOfShape", b"\x0f\xc3onstantOfShape", 1))
    ops = edgekit.load(path).op_histogram
    assert all(isinstance(k, str) for k in ops) and "\ufffdonstantOfShape" in ops


def _set_dims(index: int | str, dims: list[int]) -> Callable[[Any], None]:
    """Edit initializer `index` (a position, or a name: copies of the file differ in order)."""

    def edit(proto: Any) -> None:
        inits = proto.graph.initializer
        i = index if isinstance(index, int) else [t.name for t in inits].index(index)
        del inits[i].dims[:]
        inits[i].dims.extend(dims)

    return edit


def _set_raw(index: int, raw: Callable[[bytes], bytes]) -> Callable[[Any], None]:
    def edit(proto: Any) -> None:
        tensor = proto.graph.initializer[index]
        tensor.raw_data = raw(tensor.raw_data)

    return edit


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        # was: a negative parameter count
        (_set_dims(2, [-3]), "negative dimension"),
        # was: ValueError from numpy (cannot reshape array of size 64 ...); conv1_b_0 is [64] f32
        (
            _set_dims("conv1_b_0", [2**40, 2**40]),
            f"'conv1_b_0' declares {2**80} elements but holds data for 64",
        ),
        # was: ValueError (buffer size must be a multiple of element size)
        (_set_raw(0, lambda raw: raw[:3]), "declares 1 elements but holds data for 0"),
        # was: a negative parameter count from ConstantOfShape
        (_set_raw(0, lambda raw: (-5).to_bytes(8, "little", signed=True)), "negative dimension"),
    ],
    ids=["negative-dim", "overstated-dims", "short-raw-data", "negative-shape-value"],
)
def test_onnx_tensors_that_lie_about_their_size(tmp_path: Path, edit, fragment: str) -> None:
    path = _edited_onnx(tmp_path, edit)
    with time_bound(), pytest.raises(ModelError, match=re.escape(fragment)):
        _ = edgekit.load(path).param_count


def test_h5_whose_model_config_makes_hdf5_loop(work_dir: Path, slow_format_models: dict[str, bytes]) -> None:  # fmt: skip
    """Found by test_keras_bytes: 18 zeroed bytes in the attribute heap, and HDF5 never returned
    from reading `model_config` (the process had to be killed). Now a ModelError in seconds."""
    data = bytearray(slow_format_models["m.h5"])
    if data[2112:2114] != b"\x6f\x77" or data[2128:2130] != b"\xa0\x04":
        pytest.skip("this Keras/h5py writes another layout; the zeroed range would miss the heap")
    data[2112:2130] = bytes(18)
    path = work_dir / "loops.h5"
    path.write_bytes(bytes(data))
    with time_bound(), pytest.raises(ModelError, match="did not finish"):
        _ = edgekit.load(path).signature
