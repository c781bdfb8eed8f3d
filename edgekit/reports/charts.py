"""The charts of report.html that compare's page does not have: candidates, layer errors,
confusion matrices. Each returns a base64 PNG (`edgekit.bench.html.png`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgekit.bench.html import png, pyplot

# What each backend's per-layer error measures; one unit per report, stated on the axis.
LAYER_METRICS = {
    "noise/signal": "RMS(int8 - float) / RMS(float) of the layer's output",
    "rmse/scale": "RMS error of the layer's int8 output, in quantization steps",
    "relative rmse": "RMS error of the layer's output / its spread",
}


def short_name(name: str, n: int = 46) -> str:
    """A layer name cut to its last path parts, for chart labels."""
    if len(name) <= n:
        return name
    return "…" + name[-(n - 1) :]


def layer_error_words(e: dict[str, Any]) -> str:
    """One layer's error in plain words (the measure, and SQNR where it is defined)."""
    if e["metric"] == "noise/signal":
        sqnr = -20.0 * math.log10(max(e["error"], 1e-12))
        return f"noise is {100 * e['error']:.2f}% of its output (SQNR {sqnr:.1f} dB)"
    if e["metric"] == "rmse/scale":
        return f"off by {e['error']:.2f} quantization steps on average"
    return f"{e['metric']} {e['error']:.4g}"


def candidates_png(points: list[dict[str, Any]], budget: float, unit: str) -> str:
    """Latency (x, with its median CI) against accuracy drop (y), marker area = size.

    Each point: name, median, low, high (ms), drop (points), size_bytes, chosen, meets.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 5.2))
    biggest = max(p["size_bytes"] or 1 for p in points)
    for p in points:
        color = "#7f8c8d" if p["name"].startswith("baseline") else (
            "#27ae60" if p["meets"] else "#c0392b")  # fmt: skip
        area = 60 + 1400 * (p["size_bytes"] or 0) / biggest
        ax.scatter(p["median"], p["drop"], s=area, color=color, alpha=0.45,
                   edgecolors="black" if p["chosen"] else "none", linewidths=2.5, zorder=3)  # fmt: skip
        if p["low"] is not None:
            ax.errorbar(p["median"], p["drop"], xerr=[[p["median"] - p["low"]],
                        [p["high"] - p["median"]]], fmt="none", ecolor="#333", capsize=4,
                        zorder=4)  # fmt: skip
        label = p["name"] + ("  ◀ chosen" if p["chosen"] else "")
        ax.annotate(label, (p["median"], p["drop"]), textcoords="offset points", xytext=(9, 6),
                    fontsize=9, fontweight="bold" if p["chosen"] else "normal")  # fmt: skip
    ax.axhline(budget, color="#c0392b", linestyle="--", linewidth=1.2)
    ax.annotate(f"budget: {budget:g} point{'' if budget == 1 else 's'}", (1.0, budget), xycoords=("axes fraction", "data"),
                xytext=(-4, 4), textcoords="offset points", ha="right", color="#c0392b",
                fontsize=9)  # fmt: skip
    drops = [p["drop"] for p in points] + [budget, 0.0]
    span = max(drops) - min(drops) or 1.0
    ax.set_ylim(min(drops) - 0.15 * span, max(drops) + 0.2 * span)
    xs = [p["low"] if p["low"] is not None else p["median"] for p in points]
    xe = [p["high"] if p["high"] is not None else p["median"] for p in points]
    xspan = max(xe) - min(xs) or max(xe) or 1.0
    ax.set_xlim(max(0.0, min(xs) - 0.12 * xspan), max(xe) + 0.35 * xspan)
    ax.set_xlabel("median latency per call (ms), with its 95% CI")
    ax.set_ylabel(f"accuracy drop vs baseline ({unit}); lower is better")
    ax.set_title("Candidates: latency against accuracy (marker area = size on disk; "
                 "green meets the budget, red misses it)", fontsize=10)  # fmt: skip
    ax.grid(alpha=0.3)
    return png(fig)


def layer_errors_png(errors: list[dict[str, Any]], kept_float: list[str]) -> str:
    """Every layer's quantization error, worst on top; layers kept in float hatched."""
    plt = pyplot()
    metric = errors[0]["metric"]
    order = sorted(errors, key=lambda e: -e["error"])
    kept = set(kept_float)
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.26 * len(order)))
    y = np.arange(len(order))
    colors = ["#bbbbbb" if e["name"] in kept else "#d35400" for e in order]
    bars = ax.barh(y, [e["error"] for e in order], color=colors, height=0.7)
    for bar, e in zip(bars, order, strict=True):
        if e["name"] in kept:
            bar.set_hatch("//")
    ax.set_yticks(y)
    ax.set_yticklabels([short_name(e["name"]) + (" [kept float]" if e["name"] in kept else "")
                        + f" ({e['op']})" for e in order], fontsize=7)  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric}: {LAYER_METRICS.get(metric, metric)}; longer = worse")
    ax.set_title(f"Quantization error of every layer ({len(order)}); grey hatched = kept in float",
                 fontsize=10)  # fmt: skip
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def confusion_png(before: list[list[int]], after: list[list[int]] | None, names: list[str]) -> str:
    """Baseline and optimized confusion matrices side by side and their difference, or one
    matrix alone when `after` is None."""
    plt = pyplot()
    a = np.asarray(before)
    panels: list[tuple[Any, str, str, Any, Any]] = []
    if after is None:
        panels.append((a, f"{int(np.trace(a))}/{int(a.sum())} correct", "Blues", 0, None))
    else:
        b = np.asarray(after)
        diff = b - a
        lim = max(1, int(np.abs(diff).max()))
        panels += [
            (a, f"baseline ({int(np.trace(a))}/{int(a.sum())} correct)", "Blues", 0, None),
            (b, f"optimized ({int(np.trace(b))}/{int(b.sum())} correct)", "Blues", 0, None),
            (diff, "optimized - baseline", "RdBu_r", -lim, lim),
        ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5.2), squeeze=False)
    for ax, (m, title, cmap, vmin, vmax) in zip(axes[0], panels, strict=True):
        ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
        k = len(m)
        if k <= 20:  # counts in the cells while they fit
            for i in range(k):
                for j in range(k):
                    if m[i, j]:
                        ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(names, fontsize=7, rotation=90)
        ax.set_yticklabels(names, fontsize=7)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return png(fig)
