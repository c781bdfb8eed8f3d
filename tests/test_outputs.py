"""edgekit.outputs: atomic folders and files, and the lock that keeps two runs apart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgekit.errors import EdgekitError, OutputLockedError
from edgekit.outputs import MARKER, atomic_dir, atomic_write_bytes, atomic_write_text, output_lock
from tests.conftest import interruptible

ROOT = Path(__file__).resolve().parents[1]


def leftovers(folder: Path) -> list[str]:
    """Hidden temp and lock files that a finished run must not leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- atomic_dir ---------------------------------------------------------------------------


def test_atomic_dir_publishes_the_folder_only_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "model.tflite").write_bytes(b"x")
        assert not out.exists()
        assert tmp.parent == tmp_path and tmp.name == f".out.tmp-{os.getpid()}"
    assert (out / "model.tflite").read_bytes() == b"x"
    assert (out / MARKER).is_file()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_dir_leaves_nothing_when_the_block_fails(tmp_path: Path, exc: type) -> None:
    out = tmp_path / "out"
    with pytest.raises(exc):
        with atomic_dir(out) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise exc()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_its_own_earlier_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "old.txt").write_text("v1")
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("v2")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.txt"]
    assert leftovers(tmp_path) == []


def test_a_failed_rerun_keeps_the_earlier_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "model.bin").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "model.bin").write_text("half")
            raise RuntimeError
    assert (out / "model.bin").read_text() == "v1"


def test_atomic_dir_refuses_to_replace_a_users_folder(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(EdgekitError, match="did not write"):
        with atomic_dir(out):
            pytest.fail("the block must not run")
    assert (out / "holiday.jpg").read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_atomic_dir_refuses_a_file_and_takes_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgekitError, match="not a folder"):
        with atomic_dir(tmp_path / "file"):
            pass
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty") as tmp:
        (tmp / "a").write_text("a")
    assert (tmp_path / "empty" / "a").is_file()


def test_atomic_dir_refuses_a_users_folder_made_while_it_worked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(EdgekitError, match="did not write"):
        with atomic_dir(out) as tmp:
            (tmp / "model.bin").write_text("new")
            out.mkdir()
            (out / "mine.txt").write_text("mine")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert leftovers(tmp_path) == []


def test_stale_temp_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".out.tmp-{dead.stdout.strip()}"
    live = tmp_path / f".out.tmp-{os.getppid()}"  # a running process: maybe a parallel run
    for folder in (stale, live):
        folder.mkdir()
        (folder / "half.bin").write_bytes(b"x")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("a")
    assert not stale.exists()
    assert live.exists()


# --- atomic files -------------------------------------------------------------------------


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.json"
    atomic_write_text(target, "{}")
    atomic_write_bytes(target, b"[1]")
    assert target.read_bytes() == b"[1]"
    assert leftovers(target.parent) == []


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


# --- output_lock --------------------------------------------------------------------------


def test_a_second_run_on_the_same_output_fails_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_lock(out) as lock:
        assert lock.read_text().strip() == str(os.getpid())
        started = time.monotonic()
        with pytest.raises(OutputLockedError) as err:
            with output_lock(out):
                pytest.fail("two holders")
        assert time.monotonic() - started < 1
        assert str(err.value) == (
            f"another edgekit run is writing to {out} (pid {os.getpid()}); "
            "wait for it or choose another --out"
        )
        with output_lock(tmp_path / "other"):  # another --out is fine
            pass
    with output_lock(out):  # released
        pass
    assert leftovers(tmp_path) == []


# --- interrupted runs, in a real process -----------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from edgekit.outputs import atomic_dir, output_lock

    out = Path(sys.argv[1])
    with output_lock(out), atomic_dir(out) as tmp:
        (tmp / "model.bin").write_bytes(b"\\0" * 4096)
        print("half-written", flush=True)
        time.sleep(60)
        (tmp / "manifest.json").write_text("{}")
    """
)


def start_writer(out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=interruptible)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "half-written", proc.stderr.read()
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_leaves_no_finished_looking_output(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:  # an earlier, finished run
        (tmp / "model.bin").write_text("v1")
    proc = start_writer(out)
    with pytest.raises(OutputLockedError, match=f"pid {proc.pid}"):
        with output_lock(out):
            pass
    proc.send_signal(sig)
    assert proc.wait(timeout=30) != 0
    # The earlier output is untouched, and nothing new looks finished.
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "model.bin"]
    assert (out / "model.bin").read_text() == "v1"
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == ["out"]
    if sig == signal.SIGINT:  # Python unwound: the temp folder and the lock file are gone
        assert leftovers(tmp_path) == []
    # A clean rerun: the kernel dropped the lock, the stale temp folder is swept away.
    with output_lock(out), atomic_dir(out) as tmp:
        (tmp / "model.bin").write_text("v2")
    assert (out / "model.bin").read_text() == "v2"
    assert leftovers(tmp_path) == []


def test_a_killed_first_run_leaves_no_output_at_all(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start_writer(out)
    proc.kill()
    proc.wait(timeout=30)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_replace_files_replaces_in_order_and_leaves_no_temp(tmp_path):
    from edgekit.outputs import replace_files

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "m.bin").write_bytes(b"new weights")
    (src / "m.xml").write_text("<net/>")
    dst.mkdir()
    (dst / "m.bin").write_bytes(b"old")
    replace_files([(src / "m.bin", dst / "m.bin"), (src / "m.xml", dst / "m.xml")])
    assert (dst / "m.bin").read_bytes() == b"new weights"
    assert (dst / "m.xml").read_text() == "<net/>"
    assert sorted(p.name for p in dst.iterdir()) == ["m.bin", "m.xml"]
    with pytest.raises(FileNotFoundError):
        replace_files([(src / "absent", dst / "m.bin")])
    assert (dst / "m.bin").read_bytes() == b"new weights"
    assert sorted(p.name for p in dst.iterdir()) == ["m.bin", "m.xml"]


def test_publish_files_replaces_only_its_own_files_record_last(tmp_path: Path) -> None:
    from edgekit.outputs import publish_files

    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    (out / "model.bin").write_text("old")
    (out / "metrics.json").write_text("old")
    tmp = tmp_path / ".run.tmp"
    tmp.mkdir()
    (tmp / "model.bin").write_text("new")
    (tmp / "metrics.json").write_text("new")
    publish_files(tmp, out, ("model.bin", "metrics.json"))
    assert not tmp.exists()
    assert (out / "notes.txt").read_text() == "the user's"
    assert (out / "model.bin").read_text() == "new" == (out / "metrics.json").read_text()

    empty = tmp_path / "empty"
    empty.mkdir()
    tmp.mkdir()
    (tmp / "metrics.json").write_text("new")
    publish_files(tmp, empty, ("metrics.json",))
    assert sorted(p.name for p in empty.iterdir()) == ["metrics.json"] and not tmp.exists()
