"""report.html: one self-contained page per optimize, deploy or eval record.

A page is a pure function of its JSON record (`build_page`): no clock, no model run,
no file other than the record, so `edgekit report DIR` rebuilds the same bytes from
``report.json`` (optimize), ``manifest.json`` (deploy) or an eval ``--json`` file.
Charts are matplotlib (Agg) PNGs inlined as ``data:`` URIs; the page names no URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.errors import InputError, ReportError
from edgekit.reports.summary import kind

__all__ = ["PAGE", "build_page", "find_record", "kind", "rebuild", "write_page"]

PAGE = "report.html"
# The records a folder may hold, in the order `edgekit report DIR` looks for them.
RECORDS = ("report.json", "manifest.json")


def build_page(record: dict[str, Any]) -> str:
    """The whole page for an optimize report, deploy manifest or eval result."""
    k = kind(record)
    if k == "optimize":
        from edgekit.reports.page import optimize_page

        return optimize_page(record)
    from edgekit.reports.other import deploy_page, eval_page

    return deploy_page(record) if k == "deploy" else eval_page(record)


def write_page(record: dict[str, Any], dest: Path) -> Path:
    """Write the page for `record` atomically to `dest` (a folder gets report.html)."""
    from edgekit.outputs import atomic_write_text

    dest = Path(dest)
    path = dest / PAGE if dest.is_dir() else dest
    return atomic_write_text(path, build_page(record))


def find_record(path: Path) -> Path:
    """The JSON record in `path` (a folder optimize or deploy wrote, or a .json file)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in RECORDS:
            if (path / name).is_file():
                return path / name
        raise InputError(f"{path}: holds no {' or '.join(RECORDS)}; pass an optimize or "
                         "deploy output folder, or an eval --json file.")  # fmt: skip
    raise InputError(f"{path}: no such file or folder.")


def rebuild(path: Path) -> Path:
    """Regenerate report.html beside the record in `path`; returns the page's path."""
    rec = find_record(path)
    try:
        record = json.loads(rec.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{rec}: cannot be read as JSON ({exc}).") from None
    if not isinstance(record, dict):
        raise ReportError(f"{rec}: is not a JSON object.")
    dest = rec.parent / PAGE if rec.name in RECORDS else rec.with_suffix(".html")
    return write_page(record, dest)
