"""Writing outputs so that a failed or interrupted run never leaves one that looks finished.

Three tools, meant to be combined by every command that writes:

    with output_lock(out), atomic_dir(out) as tmp:
        (tmp / "model.tflite").write_bytes(data)   # build everything in `tmp`
    # here `out` holds the finished folder, or (on any error) is as it was before

- `atomic_dir(out)` builds a folder in a hidden temp folder next to it and renames it
  onto `out` only when the block ends without an exception. It replaces an earlier
  edgekit output (one that holds the `.edgekit-output` marker) but never a non-empty
  folder of the user's.
- `atomic_write_bytes` / `atomic_write_text` do the same for a single file.
- `output_lock(out)` makes a second run on the same `out` fail at once with
  `OutputLockedError` instead of interleaving files with the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from edgekit.errors import EdgekitError, OutputLockedError

MARKER = ".edgekit-output"

__all__ = [
    "MARKER",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "output_lock",
    "publish_files",
    "replace_files",
]


def _tmp_prefix(out: Path) -> str:
    return f".{out.name}.tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove_stale_temps(out: Path) -> None:
    """Temp folders of runs that were killed (SIGKILL, power loss) before they could clean up."""
    prefix = _tmp_prefix(out)
    for entry in out.parent.glob(f"{prefix}*"):
        pid_text = entry.name[len(prefix) :]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)


def _check_replaceable(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise EdgekitError(f"{out} exists and is not a folder; choose another --out or remove it")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise EdgekitError(
            f"{out} is a folder that edgekit did not write (it has files but no {MARKER} "
            "marker), so edgekit will not replace it; choose another --out or empty it"
        )


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or file system can sync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp folder to build `out` in; it becomes `out` only if the block succeeds.

    The temp folder is `.<name>.tmp-<pid>` next to `out` (same file system, so the final
    rename is atomic). On any exception, KeyboardInterrupt included, it is removed and
    `out` is left as it was. An existing `out` is replaced only when it is empty or was
    written by edgekit (holds the `.edgekit-output` marker); EdgekitError otherwise.
    Temp folders left by killed runs are removed on the next run.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(out)
    _remove_stale_temps(out)
    tmp = out.parent / f"{_tmp_prefix(out)}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # ours from an earlier, failed attempt in this process
    tmp.mkdir()
    try:
        (tmp / MARKER).write_text(json.dumps({"writer": "edgekit", "pid": os.getpid()}) + "\n")
        yield tmp
        _check_replaceable(out)  # the user may have made it while we worked
        if out.is_dir():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to a temp file in the same folder, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes the file private; give normal rights
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def replace_files(pairs: list[tuple[Path, Path]]) -> None:
    """Copy each `src` onto its `dst` through a temp file and a rename, in the order given.

    Each file is replaced atomically; list the one readers look for last (an IR's
    .xml after its .bin), so a reader never pairs a new file with an old companion.
    An interrupt leaves no temp file behind.
    """
    for src, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.edgekit-tmp")
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def publish_files(tmp: Path, out: Path, names: Sequence[str]) -> None:
    """Put the finished folder `tmp`, whose files are `names`, in place at `out`.

    A missing or empty `out` becomes `tmp` by one rename. A folder that holds other
    things (the user's too) keeps them: only the files `names` are replaced, and the
    last name (the record that marks a finished run, such as metrics.json) is removed
    first and moved in last, so that a crash in between never pairs it with files of
    another run. `tmp` is gone afterwards.
    """
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; give it normal folder rights
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(tmp, out)
        return
    (out / names[-1]).unlink(missing_ok=True)
    for name in names:
        os.replace(tmp / name, out / name)
    shutil.rmtree(tmp)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """`atomic_write_bytes` for text."""
    return atomic_write_bytes(path, text.encode(encoding))


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _holder(lock: Path) -> str:
    try:
        text = lock.read_text().strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on `out` for the block; OutputLockedError at once if another run has it.

    The lock is an fcntl lock on the file `.<name>.lock` next to `out`, so the kernel
    drops it when the holder dies, however it dies; the file records the holder's pid
    for the message. Yields the lock file's path.
    """
    import fcntl  # POSIX; edgekit's targets and hosts are Linux and macOS

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(out)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(
                f"another edgekit run is writing to {out} (pid {_holder(lock)}); "
                "wait for it or choose another --out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have unlinked the file between our open and our lock;
        # then we hold a lock on a file nobody else can see, so try again.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)  # closing releases the lock
