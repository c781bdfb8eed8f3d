"""The one npz reader: arrays by name, never unpickled, errors said in one sentence.

Datasets (``npz:PATH``), benchmark and verification inputs and bundle runs all read
a user's .npz through `read_npz`.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from edgekit.errors import InputError

__all__ = ["read_npz"]


def read_npz(
    path: str | os.PathLike[str],
    *,
    error: type[InputError] = InputError,
    noun: str = "Input file",
) -> dict[str, np.ndarray]:
    """The arrays of the .npz at `path`, by name (``allow_pickle=False``).

    A missing, damaged or object-array file raises `error` (an InputError, or a
    subclass such as DatasetError) with one sentence that starts "`noun` PATH".
    Uncompressed members are memory-mapped rather than read whole.
    """
    p = Path(path)
    if not p.is_file():
        raise error(f"{noun} {p} does not exist.")
    try:
        return _arrays(p)
    except ValueError as exc:  # object arrays (pickles) and malformed .npy headers
        raise error(f"{noun} {p} could not be read as npz ({exc}).") from None
    except (OSError, EOFError, zipfile.BadZipFile, struct.error) as exc:
        raise error(f"{noun} {p} is not a valid npz archive ({exc}).") from None


def _arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz; members stored uncompressed (np.savez) are memory-mapped.

    np.load reads every member whole (its mmap_mode does not apply inside an npz), so a
    large dataset would sit in memory once before any split or batch is taken. An
    uncompressed member is a plain .npy at a known offset in the zip, so it is mapped
    instead; compressed members (np.savez_compressed) are read as np.load reads them.
    """
    with np.load(path, allow_pickle=False) as z:  # validates the archive, lists the arrays
        names = list(z.files)
        arrays: dict[str, np.ndarray] = {}
        with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key not in names:
                    continue
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    arrays[key] = z[key]
                    continue
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version not in ((1, 0), (2, 0)):
                        arrays[key] = z[key]
                        continue
                    read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
                    shape, fortran, dtype = read_header(member)
                    header_len = member.tell()
                if dtype.hasobject:
                    arrays[key] = z[key]  # refused by allow_pickle=False, with its message
                    continue
                raw.seek(info.header_offset)
                local = struct.unpack("<4s5H3L2H", raw.read(30))
                offset = info.header_offset + 30 + local[9] + local[10] + header_len
                if int(np.prod(shape)) == 0:
                    arrays[key] = np.zeros(shape, dtype)
                    continue
                arrays[key] = np.memmap(
                    path, dtype=dtype, mode="r", offset=offset, shape=shape,
                    order="F" if fortran else "C",
                )  # fmt: skip
    return arrays
