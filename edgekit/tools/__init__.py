"""Tool environments: a pinned venv per tool whose pins conflict with edgekit's own.

onnx2tf pins exact versions of TensorFlow, NumPy, onnx and ONNX Runtime that do not
install beside edgekit's, so it runs in a venv of its own under the cache folder
(``$EDGEKIT_TOOLS_DIR``, else ``$XDG_CACHE_HOME/edgekit/tools``, else
``~/.cache/edgekit/tools``), one folder per tool and version. The venv is created
with pip on first use and reused after that; a stamp file, written last, marks it
whole, so a half-made venv is never taken for a finished one. Tools are called as
subprocesses; arguments and results pass through files.

Example::

    from edgekit.tools import ensure, run_tool
    env = ensure("onnx2tf")
    run_tool("onnx2tf", ["-i", "m.onnx", "-o", "out", "-n"], cwd=work)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError, InputError

__all__ = ["TOOLS", "Tool", "ToolEnvError", "ensure", "install", "remove", "run_tool", "status",
           "tools_dir"]  # fmt: skip

STAMP = "edgekit-tool.json"


class ToolEnvError(EdgekitError):
    """A tool environment cannot be created, is broken, or its tool failed to start."""


@dataclass(frozen=True)
class Tool:
    """One tool: the pip requirements of its venv (exact pins) and the command it runs."""

    name: str
    version: str
    requirements: tuple[str, ...]
    # The console script in the venv's bin/ folder, or a script shipped beside this module
    # (a name ending in .py) that the venv's python runs.
    entry: str
    # Made on first use; a tool too large for that (gigabytes) is installed only by
    # `edgekit tools install`, and a path that needs it is skipped until then.
    on_first_use: bool = True

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.version}"

    def command(self, env: Path) -> list[str]:
        """The command line that starts the tool in `env` (its arguments follow)."""
        if self.entry.endswith(".py"):
            return [str(_python(env)), str(Path(__file__).with_name(self.entry))]
        # A venv records its own path in its scripts: it is made at a temporary folder and
        # renamed, so the entry script is called through the final python, never by shebang.
        return [str(_python(env)), str(env / "bin" / self.entry)]

    def whole(self, env: Path) -> bool:
        """Whether `env` holds what the tool needs to start."""
        return _python(env).exists() and (
            self.entry.endswith(".py") or (env / "bin" / self.entry).exists()
        )


# onnx2tf 2.x needs Python >= 3.12; 1.29.24 is the newest for 3.11, and these are its pins.
_ONNX2TF = "1.29.24"
_ONNX2TORCH = "1.5.15"
TOOLS: dict[str, Tool] = {
    "onnx2tf": Tool("onnx2tf", _ONNX2TF, (
        f"onnx2tf=={_ONNX2TF}", "requests==2.32.5", "numpy==1.26.4", "onnx==1.19.1",
        "onnxruntime==1.23.0", "opencv-python==4.11.0.86", "onnxsim==0.4.36",
        "onnxoptimizer==0.4.2", "ai-edge-litert==2.1.0", "tensorflow==2.19.0",
        "tf-keras==2.19.0", "onnx-graphsurgeon==0.5.8", "simple-onnx-processing-tools==1.1.32",
        "psutil==5.9.5", "protobuf==4.25.5", "h5py==3.11.0", "ml-dtypes==0.5.1",
        "flatbuffers==25.12.19", "sng4onnx",
    ), "onnx2tf"),
    # The second ONNX -> TFLite path. onnx2torch imports torchvision, and PyPI's torchvision
    # needs its own torch release, not edgekit's; litert-torch converts the module it makes.
    "onnx2torch": Tool("onnx2torch", _ONNX2TORCH, (
        f"onnx2torch=={_ONNX2TORCH}", "torch==2.14.1", "torchvision==0.29.1",
        "litert-torch==0.10.0", "litert-converter==0.5.0", "ai-edge-litert==2.3.0",
        "torchao==0.18.0", "onnx==1.23.2", "numpy==2.4.6",
    ), "onnx2torch_tflite.py", on_first_use=False),
}  # fmt: skip


def tools_dir() -> Path:
    """The folder that holds every tool environment."""
    if os.environ.get("EDGEKIT_TOOLS_DIR"):
        return Path(os.environ["EDGEKIT_TOOLS_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "edgekit" / "tools"


def tool(name: str) -> Tool:
    if name not in TOOLS:
        raise InputError(f"unknown tool {name!r}; edgekit manages: {', '.join(sorted(TOOLS))}")
    return TOOLS[name]


def env_dir(name: str) -> Path:
    return tools_dir() / tool(name).folder_name


def _python(env: Path) -> Path:
    return env / "bin" / "python"


def status(name: str) -> dict[str, object]:
    """What is known of one tool's environment: path, whether it is whole, size, stamp."""
    t, env = tool(name), env_dir(name)
    stamp = env / STAMP
    info: dict[str, object] = {"tool": t.name, "version": t.version, "path": str(env),
                               "installed": False, "state": "absent"}  # fmt: skip
    if stamp.is_file():
        info.update(json.loads(stamp.read_text()))
        whole = t.whole(env)
        info["installed"] = whole
        info["state"] = "ready" if whole else "broken"
    elif env.exists():
        info["state"] = "incomplete"
    return info


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def install(name: str, force: bool = False, progress: Callable[[str], None] = _progress) -> Path:
    """Create the tool's venv (pip, from the registry or the pip cache); returns its folder.

    An existing whole environment is kept unless `force`. Raises ToolEnvError with
    one sentence naming the fix when the venv cannot be made (no registry, a cache
    folder that is not writable).
    """
    t, env = tool(name), env_dir(name)
    if not force and status(name)["state"] == "ready":
        return env
    root = env.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(str(root))
    except OSError:
        raise ToolEnvError(
            f"{root}: cannot write the tool environment here; set EDGEKIT_TOOLS_DIR to a "
            "writable folder"
        ) from None
    # Built beside its final place and renamed into it, so a crash leaves no half env there.
    part = root / f".{t.folder_name}.part-{os.getpid()}"
    shutil.rmtree(part, ignore_errors=True)
    started = time.monotonic()
    progress(f"creating the {t.name} {t.version} environment in {env} (once; a few minutes)")
    try:
        _run_quiet([sys.executable, "-m", "venv", str(part)], f"python -m venv {part}")
        _run_quiet([str(_python(part)), "-m", "pip", "install", "--disable-pip-version-check",
                    "--no-input", "-q", *t.requirements],
                   f"pip install {t.name}=={t.version}")  # fmt: skip
        stamp = {"tool": t.name, "version": t.version, "requirements": list(t.requirements),
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
        shutil.rmtree(env, ignore_errors=True)
        os.replace(part, env)
        _fix_venv_paths(part, env)
        (env / STAMP).write_text(json.dumps(stamp, indent=1))
    finally:
        shutil.rmtree(part, ignore_errors=True)
    progress(f"{t.name} environment ready ({time.monotonic() - started:.0f} s)")
    return env


def _fix_venv_paths(old: Path, new: Path) -> None:
    """Point a moved venv's pyvenv.cfg and bin/ scripts at its new folder."""
    for f in [new / "pyvenv.cfg", *(p for p in (new / "bin").iterdir() if p.is_file())]:
        try:
            text = f.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if str(old) in text:
            f.write_text(text.replace(str(old), str(new)))


def _run_quiet(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        return
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    last = next((ln for ln in reversed(tail) if ln.startswith("ERROR")), tail[-1] if tail else "")
    offline = any(w in (proc.stderr or "") for w in ("Could not find a version", "NewConnection",
                                                     "No matching distribution", "Network"))  # fmt: skip
    fix = ("pip cannot reach the package registry; connect to it (or set PIP_INDEX_URL to a "
           "mirror) and run `edgekit tools install` again") if offline else last.strip()  # fmt: skip
    raise ToolEnvError(f"{what} failed: {fix}")


def ensure(name: str) -> Path:
    """The tool's environment, created on first use; a broken one is said in one sentence."""
    state = status(name)["state"]
    if state == "broken":
        raise ToolEnvError(
            f"{env_dir(name)}: the {name} environment is broken (its python or {tool(name).entry} "
            f"is missing); run `edgekit tools install {name} --force`"
        )
    if state != "ready" and not tool(name).on_first_use:
        raise ToolEnvError(
            f"the {name} environment is not installed (several GB, so not made on first use); "
            f"run `edgekit tools install {name}`"
        )
    return env_dir(name) if state == "ready" else install(name)


def remove(name: str) -> bool:
    """Delete the tool's environment; False when there was none."""
    env = env_dir(name)
    if not env.exists():
        return False
    # The stamp goes first, so an interrupted removal leaves an env that is not taken as whole.
    (env / STAMP).unlink(missing_ok=True)
    shutil.rmtree(env)
    return True


def run_tool(
    name: str, args: Sequence[str], cwd: Path, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the tool's command in its environment with `args`, in `cwd`; output is captured.

    Returns the completed process (the caller reads its files and judges its exit
    code); raises ToolEnvError when the environment is broken or cannot be made.
    """
    env = ensure(name)
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    environ.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONNOUSERSITE="1")
    try:
        return subprocess.run([*tool(name).command(env), *args], cwd=cwd, env=environ,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
    except OSError as exc:
        raise ToolEnvError(
            f"{env}: the {name} environment cannot start ({exc.strerror}); run "
            f"`edgekit tools install {name} --force`"
        ) from None
