"""Tool environments (edgekit.tools, `edgekit tools`): states, and every failure as one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.tools import STAMP, TOOLS, status
from tests.conftest import assert_user_error, run_cli


def _fake_env(root: Path, python: bool) -> Path:
    """A stamped onnx2tf env folder (as `install` leaves it), with or without its python."""
    env = root / TOOLS["onnx2tf"].folder_name
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "onnx2tf").write_text("#!/bin/false\n")
    if python:
        (env / "bin" / "python").symlink_to("/bin/false")
    (env / STAMP).write_text(json.dumps({"tool": "onnx2tf"}))
    return env


def _tiny_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_states_follow_the_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_TOOLS_DIR", str(tmp_path))
    assert status("onnx2tf")["state"] == "absent"
    env = tmp_path / TOOLS["onnx2tf"].folder_name
    env.mkdir()  # a folder without the stamp is a half-made env, never taken for a whole one
    assert status("onnx2tf")["state"] == "incomplete"
    env.rmdir()
    _fake_env(tmp_path, python=True)
    assert status("onnx2tf")["state"] == "ready"
    (env / "bin" / "python").unlink()
    assert status("onnx2tf")["state"] == "broken"


def test_list_and_remove(tmp_path: Path) -> None:
    env = {"EDGEKIT_TOOLS_DIR": str(tmp_path)}
    _fake_env(tmp_path, python=True)
    listed = json.loads(run_cli("tools", "list", "--json", env=env).stdout)
    assert [(r["tool"], r["state"]) for r in listed] == [("onnx2tf", "ready"),
                                                         ("onnx2torch", "absent")]  # fmt: skip
    res = run_cli("tools", "remove", "onnx2tf", env=env)
    assert res.returncode == 0 and "removed onnx2tf" in res.stdout
    assert not (tmp_path / TOOLS["onnx2tf"].folder_name).exists()
    assert_user_error(
        run_cli("tools", "install", "nosuchtool", env=env), "unknown tool 'nosuchtool'"
    )


def test_unwritable_cache_folder_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder under a file cannot be made, even by root
    res = run_cli("tools", "install", "onnx2tf", env={"EDGEKIT_TOOLS_DIR": str(blocker / "tools")})
    assert_user_error(res, "cannot write the tool environment here", "EDGEKIT_TOOLS_DIR")


def test_offline_creation_names_the_fix(tmp_path: Path) -> None:
    # An index nobody listens on: pip fails as it does without a network.
    env = {"EDGEKIT_TOOLS_DIR": str(tmp_path), "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1"}  # fmt: skip
    res = run_cli("tools", "install", "onnx2tf", env=env)
    assert_user_error(res, "pip cannot reach the package registry", "edgekit tools install")
    assert status_in(tmp_path) == "absent"  # nothing half-made is left behind


def status_in(root: Path) -> str:
    left = [p.name for p in root.iterdir()]
    return "absent" if not left else f"left: {left}"


@pytest.mark.parametrize("python", [False, True], ids=["python-deleted", "python-broken"])
def test_broken_env_stops_conversion_in_one_sentence(tmp_path: Path, python: bool) -> None:
    envs = tmp_path / "tools"
    _fake_env(envs, python=python)
    src = _tiny_onnx(tmp_path / "m.onnx")
    res = run_cli("convert", str(src), "--to", "tflite", "--out", str(tmp_path / "m.tflite"),
                  env={"EDGEKIT_TOOLS_DIR": str(envs)})  # fmt: skip
    fragment = "edgekit tools install onnx2tf --force" if not python else "onnx2tf"
    assert_user_error(res, fragment)
    assert not (tmp_path / "m.tflite").exists()


def test_a_large_tool_is_never_made_on_first_use(tmp_path: Path, monkeypatch) -> None:
    """onnx2torch's env (a CUDA torch, gigabytes) is made by `edgekit tools install` only: a
    conversion that would use it is told the command and leaves nothing behind."""
    from edgekit.tools import ToolEnvError, ensure

    monkeypatch.setenv("EDGEKIT_TOOLS_DIR", str(tmp_path))
    with pytest.raises(ToolEnvError, match=r"run `edgekit tools install onnx2torch`"):
        ensure("onnx2torch")
    assert list(tmp_path.iterdir()) == []
    # Its program is a file shipped in edgekit, run by the env's own python.
    cmd = TOOLS["onnx2torch"].command(tmp_path / "env")
    assert cmd[0] == str(tmp_path / "env" / "bin" / "python") and Path(cmd[1]).is_file()
