"""Pieces every report page shares: head and style, warning boxes, tables, environment."""

from __future__ import annotations

import html
from typing import Any

from edgekit.bench.html import CSS, mismatch_box

# Compare's style plus the coloured warning box and the verdict line.
PAGE_CSS = (
    CSS
    + """
.warnbox{background:#fff4d6;border-left:5px solid #e0a800;padding:.5em 1em;margin:.4em 0;
border-radius:3px}
.verdict{font-size:1.15em;padding:.6em 1em;border-radius:4px;background:#e8f4ea;
border-left:6px solid #27ae60}.verdict.bad{background:#fdecea;border-left-color:#c0392b}
.chosen{background:#eef6ff;font-weight:bold}
"""
)

e = html.escape


def head(title: str) -> list[str]:
    """The page's opening lines: no script, no external resource."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{PAGE_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]


def tail() -> str:
    return "</body></html>\n"


def verdict_line(text: str, good: bool) -> str:
    return f'<p class="verdict{"" if good else " bad"}">{e(text)}</p>'


def warning_boxes(warnings: list[str], failed: str | None = None) -> list[str]:
    """Every warning in its own coloured box; `failed` (a broken promise) in compare's red."""
    out = [mismatch_box(failed)] if failed else []
    return out + [f'<div class="warnbox">{e(w)}</div>' for w in warnings]


def table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    """An HTML table (no header row when `headers` is empty); every cell escaped."""
    parts = ["<table>"]
    if headers:
        parts += ["<tr>", *(f"<th>{e(h)}</th>" for h in headers), "</tr>"]
    for i, row in enumerate(rows):
        cls = (classes or [""] * len(rows))[i]
        attr = f' class="{cls}"' if cls else ""
        parts.append(f"<tr{attr}>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def key_values(pairs: list[tuple[str, Any]]) -> str:
    """A two-column table of names and values, skipping empty values."""
    return table([], [[k, v] for k, v in pairs if v not in (None, "", [], {})])


def preprocess_section(pre: dict[str, Any] | None, none_text: str) -> list[str]:
    """The preprocessing applied to the data, or one line saying there was none."""
    out = ["<h2>Preprocessing applied</h2>"]
    if not pre:
        return out + [f'<p class="note">{e(none_text)}</p>']
    return out + [key_values([(k, _plain(v)) for k, v in pre.items()])]


def versions_table(versions: dict[str, Any] | None) -> str:
    """Installed framework versions; those not installed are left out."""
    found = [(k, v) for k, v in (versions or {}).items() if v]
    return table(["package", "version"], [list(kv) for kv in found]) if found else ""


def size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, s in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= s:
            return f"{n / s:.1f} {unit}"
    return f"{n} B"


def pct(v: float | None) -> str:
    return "unproven" if v is None else f"{100 * v:.2f}%"


def ms(lat: dict[str, Any] | None) -> str:
    """A latency_ms object as its median with the median's CI."""
    if not lat:
        return "-"
    ci = lat.get("median_ci") or {}
    if ci.get("low") is None:
        return f"{lat['median']:.4g} ms"
    return f"{lat['median']:.4g} ms [{ci['low']:.4g}, {ci['high']:.4g}]"


def _plain(v: Any) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v)
    return str(v)
