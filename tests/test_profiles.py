"""Hardware profiles: every shipped file validates, and every user mistake is one clear sentence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.errors import ProfileError
from edgekit.profiles import (
    PRECISIONS,
    SHIPPED_DIR,
    format_bytes,
    list_profiles,
    load_profile,
    validate,
)
from tests.conftest import assert_user_error, invoke_cli
from tests.conftest import run_cli as edgekit_cli

REPO = Path(__file__).resolve().parent.parent
SHIPPED_FILES = sorted(SHIPPED_DIR.glob("*.toml"))
REQUIRED = {
    "x86-avx512",
    "x86-avx2",
    "intel-igpu",
    "intel-npu",
    "rpi4",
    "rpi5",
    "coral-edgetpu",
    "jetson-orin",
    "nvidia-gpu",
    "android-arm64",
    "qualcomm-npu",
    "cortex-m",
}
HEAVY = ("tensorflow", "onnxruntime", "openvino", "nncf")

GOOD = """\
name = "my-board"
description = "A test board. It has one CPU."
source = "edgekit tests"

[target]
arch = "aarch64"
runtime = "litert"
format = "tflite"
precision = ["int8", "fp32"]
threads = 2

[limits]
max_model_bytes = "2 MiB"
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # `profiles` loads no framework, so it runs in this process; a terminal width
    # (COLUMNS) is read when the console starts, so those calls get a fresh process.
    if env is None:
        return invoke_cli(*args)
    return edgekit_cli(*args, cwd=REPO, env=env, timeout=120)


@pytest.fixture(autouse=True)
def _no_user_profile_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEKIT_PROFILE_PATH", raising=False)


# --- shipped profiles ---------------------------------------------------------------


def test_required_profiles_are_shipped() -> None:
    on_disk = {f.stem for f in SHIPPED_FILES}
    assert REQUIRED <= on_disk, f"missing: {sorted(REQUIRED - on_disk)}"
    assert {p.name for p in list_profiles()} == on_disk


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.stem)
def test_shipped_profile_validates(path: Path) -> None:
    by_path = load_profile(path)
    by_name = load_profile(path.stem)
    assert by_path == by_name
    assert by_name.name == path.stem
    assert by_name.path == path
    assert by_name.precision and set(by_name.precision) <= set(PRECISIONS)
    # The first sentence names the hardware and fits one table cell.
    assert 10 <= len(by_name.summary) <= 80, by_name.summary
    assert by_name.description.endswith(".")
    assert "http" in by_name.source or "documentation" in by_name.source.lower()
    # to_dict is the TOML layout: it is JSON-safe and validates back to the same profile.
    data = json.loads(json.dumps(by_name.to_dict()))
    assert validate(data, "roundtrip") == by_name


def test_shipped_profiles_hold_the_vendor_facts() -> None:
    coral = load_profile("coral-edgetpu")
    assert coral.precision == ("int8",) and coral.limits.int8_only and coral.limits.static_shapes
    assert (coral.input_dtype, coral.output_dtype) == ("uint8", "uint8")
    assert coral.delegate == "edgetpu"
    assert coral.compiler is not None and coral.compiler.name == "edgetpu_compiler"
    assert coral.compiler.argv("m.tflite", "out") == [
        "edgetpu_compiler",
        "--show_operations",
        "--out_dir",
        "out",
        "m.tflite",
    ]

    mcu = load_profile("cortex-m")
    assert mcu.runtime == "tflite-micro" and mcu.limits.int8_only
    assert mcu.limits.max_model_bytes == 1024 * 1024
    assert mcu.limits.max_arena_bytes == 256 * 1024
    assert (mcu.input_dtype, mcu.output_dtype) == ("int8", "int8")

    avx2 = load_profile("x86-avx2")
    q = avx2.quantization
    assert (q.activation_type, q.weight_type, q.reduce_range) == ("uint8", "int8", True)
    assert avx2.provider == "CPUExecutionProvider"

    qnn = load_profile("qualcomm-npu")
    assert qnn.provider == "QNNExecutionProvider" and qnn.limits.static_shapes
    assert qnn.quantization.quant_format == "QDQ"
    assert qnn.quantization.activation_type == "uint8"

    assert load_profile("jetson-orin").providers[:2] == (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
    )
    assert load_profile("nvidia-gpu").precision[0] == "fp16"
    assert (
        load_profile("intel-npu").device == "NPU" and load_profile("intel-npu").limits.static_shapes
    )
    assert load_profile("intel-igpu").device == "GPU"
    assert load_profile("x86-avx512").runtime == "openvino"
    for name in ("rpi4", "rpi5"):
        pi = load_profile(name)
        assert (pi.arch, pi.delegate, pi.threads, pi.precision[0]) == (
            "aarch64",
            "xnnpack",
            4,
            "int8",
        )


# --- user profiles --------------------------------------------------------------------


def test_user_profile_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_text(GOOD)
    for arg in (path, str(path)):
        profile = load_profile(arg)
        assert profile.name == "my-board"
        assert profile.threads == 2
        assert profile.limits.max_model_bytes == 2 * 1024 * 1024
        assert profile.device == "CPU"  # the default
        assert profile.summary == "A test board"


def test_user_profile_folder_on_the_search_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my-board.toml").write_text(GOOD)
    # A user file named like a shipped one wins over it.
    (tmp_path / "rpi4.toml").write_text(GOOD.replace('"my-board"', '"rpi4"'))
    monkeypatch.setenv("EDGEKIT_PROFILE_PATH", str(tmp_path))
    assert load_profile("my-board").threads == 2
    assert load_profile("rpi4").threads == 2
    names = [p.name for p in list_profiles()]
    assert "my-board" in names and names.count("rpi4") == 1 and "cortex-m" in names


def test_search_path_file_must_carry_its_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "other.toml").write_text(GOOD)
    monkeypatch.setenv("EDGEKIT_PROFILE_PATH", str(tmp_path))
    with pytest.raises(ProfileError, match="'name' is 'my-board' but the file is named 'other'"):
        load_profile("other")


def test_missing_search_path_folder_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_PROFILE_PATH", "/nonexistent/edgekit-profiles")
    with pytest.raises(ProfileError, match="/nonexistent/edgekit-profiles"):
        list_profiles()


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.toml")


# --- validation rules (API level) -------------------------------------------------------


def _data(**target: object) -> dict:
    base = {"arch": "aarch64", "runtime": "litert", "format": "tflite", "precision": ["int8"]}
    return {"name": "t", "description": "T.", "source": "s", "target": {**base, **target}}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (_data(threads=True), "'target.threads' must be an integer, got True"),
        (_data(threads=0), "'target.threads' must be at least 1"),
        (_data(format="onnx"), "'target.format' 'onnx' cannot be run by runtime 'litert'"),
        (_data(providers=["CPUExecutionProvider"]), "'target.providers' applies only"),
        (_data(inference_precision=["bf16"]), "'target.inference_precision' applies only"),
        (
            _data(runtime="openvino", format="openvino", inference_precision=["f32"]),
            "unknown value 'f32' in 'target.inference_precision'",
        ),
        (_data(precision=[]), "at least one precision"),
        (_data(precision=["int8", "int8"]), "lists 'int8' more than once"),
        (_data(precision=["int4"]), "unknown value 'int4' in 'target.precision'"),
        (_data(device="gpu"), "did you mean 'GPU'?"),
        (
            {**_data(precision=["int8", "fp16"]), "limits": {"int8_only": True}},
            "'limits.int8_only' is true",
        ),
        ({**_data(), "limits": {"max_arena_bytes": "lots"}}, "'limits.max_arena_bytes' must be"),
        ({**_data(), "limts": {}}, "unknown key 'limts' at the top level; did you mean 'limits'?"),
        (
            {**_data(), "compiler": {"name": "c", "command": ["c", "{out_dir}"]}},
            "placeholder '{model}'",
        ),
        ({**_data(), "name": "My Board"}, "must be lowercase"),
        ({k: v for k, v in _data().items() if k != "target"}, "missing required table 'target'"),
    ],
)
def test_validate_rejects(data: dict, needle: str) -> None:
    with pytest.raises(ProfileError) as info:
        validate(data, "t.toml")
    message = str(info.value)
    assert needle in message
    assert message.startswith("t.toml: ")
    assert "\n" not in message


def test_sizes_accept_units_and_integers() -> None:
    limits = {"max_model_bytes": "1.5 MiB", "max_arena_bytes": 4096}
    profile = validate({**_data(), "limits": limits}, "t")
    assert profile.limits.max_model_bytes == 1536 * 1024
    assert profile.limits.max_arena_bytes == 4096
    assert format_bytes(262144) == "256 KiB"
    assert format_bytes(1536 * 1024) == "1.5 MiB"
    assert format_bytes(100) == "100 B"


def test_onnxruntime_defaults_to_the_cpu_provider() -> None:
    data = _data(runtime="onnxruntime", format="onnx")
    assert validate(data, "t").providers == ("CPUExecutionProvider",)


def test_x86_avx512_tries_bf16_and_keeps_it_through_to_dict() -> None:
    p = load_profile("x86-avx512")
    assert p.inference_precision == ("bf16",)
    assert validate(p.to_dict(), "t") == p
    assert load_profile("x86-avx2").inference_precision == ()


def test_runnable_here() -> None:
    avx2 = load_profile("x86-avx2")
    assert avx2.runnable_here("x86_64", ["onnxruntime"])
    assert avx2.runnable_here("AMD64", {"onnxruntime", "litert"})
    assert not avx2.runnable_here("aarch64", ["onnxruntime"])
    assert not avx2.runnable_here("x86_64", ["openvino"])
    assert load_profile("rpi5").runnable_here("arm64", ["litert"])
    assert not load_profile("cortex-m").runnable_here("x86_64", ["litert", "tflite-micro"])


# --- the CLI: one sentence on stderr, exit code 2, no traceback ----------------------------


def _assert_user_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """conftest's check, and stricter: profile errors come before any framework loads, so
    stderr holds nothing but the sentence."""
    assert_user_error(result, *needles)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def _user_file(tmp_path: Path, text: str, name: str = "rpi-custom.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_cli_typo_key_suggests_and_lists_valid_keys(tmp_path: Path) -> None:
    path = _user_file(tmp_path, GOOD.replace("precision =", "precison ="))
    _assert_user_error(
        run_cli("profiles", "show", path),
        "rpi-custom.toml",
        "unknown key 'precison' in [target]",
        "did you mean 'precision'?",
        "Valid keys: arch, runtime, format, precision",
    )


def test_cli_wrong_type_names_key_type_and_value(tmp_path: Path) -> None:
    path = _user_file(tmp_path, GOOD.replace("threads = 2", 'threads = "four"'))
    _assert_user_error(
        run_cli("profiles", "show", path),
        "rpi-custom.toml",
        "'target.threads' must be an integer",
        "'four'",
    )


def test_cli_missing_key_is_named(tmp_path: Path) -> None:
    path = _user_file(tmp_path, GOOD.replace('runtime = "litert"\n', ""))
    _assert_user_error(
        run_cli("profiles", "show", path),
        "rpi-custom.toml",
        "missing required key 'target.runtime'",
    )


def test_cli_unknown_runtime_lists_valid_runtimes(tmp_path: Path) -> None:
    path = _user_file(tmp_path, GOOD.replace('runtime = "litert"', 'runtime = "tensorrt"'))
    _assert_user_error(
        run_cli("profiles", "show", path),
        "unknown value 'tensorrt' for 'target.runtime'",
        "litert, onnxruntime, openvino, tflite-micro",
    )


def test_cli_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    path = _user_file(tmp_path, GOOD.replace('source = "edgekit tests"', "source = edgekit tests"))
    _assert_user_error(
        run_cli("profiles", "show", path), "rpi-custom.toml", "invalid TOML", "line 3"
    )


def test_cli_unknown_profile_name_lists_shipped_ones() -> None:
    _assert_user_error(
        run_cli("profiles", "show", "rpi44"),
        "unknown profile 'rpi44'",
        "did you mean 'rpi4'?",
        "cortex-m",
        "x86-avx512",
    )


def test_cli_list_json_parses() -> None:
    result = run_cli("profiles", "list", "--json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [i["name"] for i in items] == sorted(f.stem for f in SHIPPED_FILES)
    for item in items:
        assert Path(item["path"]).is_file()
        assert item["target"]["runtime"] and item["target"]["precision"]


def test_cli_show_json_matches_the_api() -> None:
    result = run_cli("profiles", "show", "coral-edgetpu", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data.pop("path") == str(SHIPPED_DIR / "coral-edgetpu.toml")
    assert data == load_profile("coral-edgetpu").to_dict()


def test_cli_list_table_shows_every_profile() -> None:
    result = run_cli("profiles", "list", env={"COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    for path in SHIPPED_FILES:
        assert path.stem in result.stdout
    assert "GPU (TensorRT)" in result.stdout
    assert "Raspberry Pi 4 Model B" in result.stdout  # the description column


def test_cli_show_table(tmp_path: Path) -> None:
    result = run_cli("profiles", "show", _user_file(tmp_path, GOOD), env={"COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    assert "my-board" in result.stdout
    assert "2097152 (2 MiB)" in result.stdout


@pytest.mark.parametrize("args", [["profiles", "list"], ["profiles", "show", "rpi4", "--json"]])
def test_cli_profiles_loads_no_framework(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from edgekit.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "rpi4" in result.stdout  # the command really ran
    assert "HEAVY=\n" in result.stderr, result.stderr


def test_a_built_wheel_ships_the_profiles(tmp_path: Path) -> None:
    """Outside a checkout the profiles come from the wheel's data files: build one, install it
    under a prefix (no dependencies), and list the profiles from that copy of edgekit."""
    src = tmp_path / "src"  # setuptools builds in the source tree: keep the checkout clean
    for name in ("edgekit", "profiles"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("edgekit-*.whl")
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip uninstalls the edgekit of the running venv first
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--ignore-installed", "--prefix", str(prefix), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    still = subprocess.run([sys.executable, "-m", "pip", "show", "-q", "edgekit"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert still.returncode == 0, "the test venv lost its edgekit install"
    (site,) = prefix.glob("lib/python*/site-packages")
    code = (
        "import edgekit, edgekit.profiles as p\n"
        "print(edgekit.__file__)\n"
        "print(p.SHIPPED_DIR)\n"
        "print(' '.join(sorted(x.name for x in p.list_profiles())))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "EDGEKIT_PROFILE_PATH"}
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, "
                          f"{str(site)!r})\n" + code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    where, shipped, names = run.stdout.splitlines()
    assert where.startswith(str(site)), where  # the installed copy, not the checkout
    assert Path(shipped) == prefix / "share" / "edgekit" / "profiles"
    assert names.split() == sorted(p.stem for p in (REPO / "profiles").glob("*.toml"))


# --- numeric ranges (issue 17): every number a profile holds is finite and bounded ----


def test_every_numeric_key_states_its_range() -> None:
    from edgekit.profile_schema import RANGES, SCHEMA

    numeric = {
        (t, k) for t, keys in SCHEMA.items() for k, s in keys.items() if s[0] in ("int", "size")
    }
    assert numeric == set(RANGES)
    assert all(0 < low <= high < 2**63 for low, high in RANGES.values())


def test_huge_threads_in_a_toml_names_key_value_and_range(tmp_path: Path) -> None:
    path = _user_file(tmp_path, GOOD.replace("threads = 2", "threads = 99999999999999999999"))
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert "'target.threads' must be between 1 and 1024, got 99999999999999999999." in str(
        err.value
    )
    assert (
        load_profile(_user_file(tmp_path, GOOD.replace("threads = 2", "threads = 1024"))).threads
        == 1024
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1025 GiB", "'1025 GiB'"), ("1" + "0" * 400 + " GiB", "'1000"), (2**40 + 1, str(2**40 + 1))],
)
def test_sizes_past_one_tib_are_refused(value: object, shown: str) -> None:
    data = _data()
    data["limits"] = {"max_model_bytes": value}
    with pytest.raises(ProfileError) as err:
        validate(data, "t.toml")
    text = str(err.value)
    assert "'limits.max_model_bytes' must be between 1 B and 1 TiB, got " + shown in text
    assert text.count("\n") == 0


def test_one_tib_is_allowed() -> None:
    data = _data()
    data["limits"] = {"max_arena_bytes": "1 GiB", "max_model_bytes": 2**40}
    limits = validate(data, "t.toml").limits
    assert (limits.max_arena_bytes, limits.max_model_bytes) == (2**30, 2**40)


def test_cli_huge_threads_is_a_user_error(tmp_path: Path) -> None:
    path = _user_file(tmp_path, GOOD.replace("threads = 2", "threads = 99999999999999999999"))
    _assert_user_error(run_cli("profiles", "show", path), "'target.threads'", "between 1 and 1024")
