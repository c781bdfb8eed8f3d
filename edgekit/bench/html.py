"""One self-contained HTML page for a comparison: tables, and charts embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.bench.compare import Comparison, headers, rows

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .55em;text-align:left;vertical-align:top;
overflow-wrap:break-word}
th{background:#f3f3f3}.regression{background:#fdd;font-weight:bold}.improvement{background:#dfd}
.mismatch{background:#b00;color:#fff;padding:.6em 1em;font-weight:bold;border-radius:4px}
.warn{color:#8a5a00}.note{color:#555;font-size:.9em}img{max-width:100%;border:1px solid #eee}
code{background:#f6f6f6;padding:0 .2em}
"""


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> str:
    """The figure as base64 PNG; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def img(b64: str, alt: str) -> str:
    """An <img> tag holding a base64 PNG inline (no file, no network)."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def mismatch_box(text: str) -> str:
    """The red banner compare's page puts above everything for a result not to trust."""
    return f'<p class="mismatch">{html.escape(text)}</p>'


def _thin(x: np.ndarray, n: int = 20000) -> np.ndarray:
    if len(x) <= n:
        return x
    return x[np.linspace(0, len(x) - 1, n).round().astype(int)]


def violins_png(samples_ms: list[np.ndarray], labels: list[str], title: str) -> str:
    """Violin + box plot of each series of latency samples (ms), first on top."""
    plt = pyplot()
    data = [_thin(np.asarray(d, dtype=np.float64)) for d in samples_ms]
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.75 * len(data)))
    pos = np.arange(1, len(data) + 1)
    parts = ax.violinplot(data, positions=pos, vert=False, showextrema=False, widths=0.85)
    for body in parts["bodies"]:
        body.set_facecolor("#7aa6d6")
        body.set_alpha(0.55)
    ax.boxplot(data, positions=pos, vert=False, widths=0.25, showfliers=False,
               medianprops={"color": "#c0392b", "linewidth": 2})  # fmt: skip
    lo = min(float(np.percentile(d, 0.5)) for d in data)
    hi = max(float(np.percentile(d, 99.5)) for d in data)
    if hi / max(lo, 1e-12) > 20:
        ax.set_xscale("log")
    ax.set_xlim(lo * 0.95, hi * 1.05)
    ax.set_yticks(pos)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()  # first series on top, as in the tables
    ax.set_xlabel("latency per call (ms), 0.5th-99.5th percentile shown; red = median")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def distribution_png(result: Comparison) -> str:
    """Violin + box plot of each report's latency samples (ms)."""
    data = [np.asarray(r["samples_ns"], dtype=np.float64) / 1e6 for r in result.reports]
    return violins_png(data, result.labels, "Latency distribution per report")


@dataclass(frozen=True)
class Ratio:
    """One row of the ratio chart: median(candidate) / median(baseline) with its CI."""

    label: str
    ratio: float
    low: float
    high: float
    verdict: str = ""  # "regression" (red), "improvement" (green), anything else grey


def ratios_png(ratios: list[Ratio], threshold: float, level: float, title: str) -> str:
    """Each ratio with its CI, the 1.0 line and the ±threshold band."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.6 * len(ratios)))
    colors = {"regression": "#c0392b", "improvement": "#27ae60"}
    for i, p in enumerate(ratios):
        c = colors.get(p.verdict, "#34495e")
        ax.errorbar(p.ratio, i, xerr=[[p.ratio - p.low], [p.high - p.ratio]],
                    fmt="o", color=c, capsize=5, markersize=7)  # fmt: skip
    ax.axvline(1.0, color="#555", linewidth=1)
    for edge in (1 - threshold, 1 + threshold):
        ax.axvline(edge, color="#999", linestyle="--", linewidth=1)
    ax.axvspan(1 - threshold, 1 + threshold, color="#eee", zorder=0)
    ax.set_yticks(range(len(ratios)))
    ax.set_yticklabels([p.label for p in ratios], fontsize=8)
    ax.invert_yaxis()
    lo = min([p.low for p in ratios] + [1 - 2 * threshold])
    hi = max([p.high for p in ratios] + [1 + 2 * threshold])
    ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_xlabel(f"median ratio, candidate / baseline, with {level:.0%} bootstrap CI "
                  f"(dashed: ±{threshold:.0%} threshold)")  # fmt: skip
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def ratio_png(result: Comparison) -> str:
    """Median ratio (candidate / baseline) of each pair with its bootstrap CI."""
    rows_ = [Ratio(f"{p.candidate}\nvs {p.baseline}", p.median_ratio, p.ci_low, p.ci_high,
                   p.verdict) for p in result.pairs]  # fmt: skip
    return ratios_png(rows_, result.threshold, result.pairs[0].ci_level,
                      "Median latency ratio per pair (>1 = slower)")  # fmt: skip


def to_html(result: Comparison) -> str:
    """The whole page as one string; no external resources."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>edgekit compare</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>edgekit benchmark comparison</h1>",
        f'<p class="note">edgekit {e(__version__)}, made '
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Ratio = candidate / baseline "
        f"(&gt;1 = slower). A regression is a change that is significant (two-sided Mann-Whitney U, "
        f"Holm-corrected, α = {result.alpha}) and whose whole {result.pairs[0].ci_level:.0%} "
        f"bootstrap CI lies above 1 + {result.threshold:.0%}.</p>",
    ]
    for p in result.pairs:
        if p.mismatches:
            parts.append(
                mismatch_box(
                    f"MISMATCH: {p.baseline} vs {p.candidate} differ in "
                    f"{', '.join(p.mismatches)}; their latencies are not comparable."
                )
            )
    n_reg = len(result.regressions)
    verdict = f"{n_reg} regression(s)" if n_reg else "no regression"
    parts.append(f"<h2>Pairs: {e(verdict)}</h2><table><tr>")
    parts += [f"<th>{e(h)}</th>" for h in headers(result)]
    parts.append("</tr>")
    for p, row in zip(result.pairs, rows(result), strict=True):
        cls = p.verdict if p.verdict in ("regression", "improvement") else ""
        parts.append(f'<tr class="{cls}">' + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    if result.unpaired:
        parts.append(f'<p class="warn">Not compared (no partner with the same model and runtime): '
                     f"{e(', '.join(result.unpaired))}</p>")  # fmt: skip
    parts.append("<h2>Median ratios</h2>" + img(ratio_png(result), "median ratio chart"))
    parts.append(
        "<h2>Latency distributions</h2>"
        + img(distribution_png(result), "latency distribution per report")
    )
    parts.append("<h2>Reports</h2><table><tr>")
    cols = ["report", "model", "runtime", "device / threads", "n", "median ms [95% CI]",
            "p99 ms", "stop", "CPU", "when (UTC)"]  # fmt: skip
    parts += [f"<th>{e(c)}</th>" for c in cols]
    parts.append("</tr>")
    for label, r in zip(result.labels, result.reports, strict=True):
        lat, rt = r["latency_ms"], r["runtime"]
        ci = lat["median_ci"]
        ci_txt = f"[{ci['low']:.4g}, {ci['high']:.4g}]" if ci["low"] is not None else ""
        cells = [
            label,
            f"{Path(r['model']['path']).name} ({r['model']['sha256'][:12]})",
            f"{rt['name']} {rt['version']}",
            f"{rt['device']}{' ' + rt['provider'] if rt['provider'] else ''} / {rt['threads']}",
            str(lat["n"]),
            f"{lat['median']:.4g} {ci_txt}",
            f"{lat['p99']:.4g}",
            r["protocol"]["stop_reason"],
            r["environment"]["cpu_model"],
            r["timestamp_utc"][:19],
        ]
        parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    warned = [(label, w) for label, r in zip(result.labels, result.reports, strict=True)
              for w in r["warnings"]]  # fmt: skip
    if warned:
        parts.append("<h2>Warnings recorded by the runs</h2><ul>")
        parts += [f'<li class="warn"><b>{e(label)}</b>: {e(w)}</li>' for label, w in warned]
        parts.append("</ul>")
    region = sorted({r["protocol"]["timed_region"] for r in result.reports})
    parts.append("<h2>Protocol</h2><ul>")
    parts += [f"<li>timed region: <code>{e(t)}</code></li>" for t in region]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
