"""Pareto fronts of a sweep (latency against accuracy, latency against size, per profile)
and the self-contained HTML page that plots them.

Jobs timed on an SSH device (`device = NAME`) form fronts of their own, "PROFILE @ NAME":
the device's latencies and this host's are never compared on one chart."""

from __future__ import annotations

import html
from typing import Any

# front name -> (second axis key, whether more of it is better)
AXES = {"accuracy": ("accuracy", True), "size": ("size_bytes", False)}


def front(points: list[tuple[float, float]], more_is_better: bool) -> list[int]:
    """Indices of the points no other point beats: lower latency (x) and better y."""
    keep = []
    for i, (x, y) in enumerate(points):
        dominated = False
        for j, (x2, y2) in enumerate(points):
            better_y = y2 > y if more_is_better else y2 < y
            same_y = y2 == y
            if j != i and x2 <= x and (better_y or same_y) and (x2 < x or better_y):
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return keep


def group(row: dict[str, Any]) -> str | None:
    """The front a job's point belongs to: its profile, and the device that timed it if any."""
    device = (row.get("metrics") or {}).get("latency_on")
    return f"{row['profile']} @ {device}" if device and row.get("profile") else row.get("profile")


def _points(rows: list[dict[str, Any]], profile: str, key: str) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        m = r.get("metrics") or {}
        if r.get("status") == "ok" and group(r) == profile:
            if m.get("latency_ms") is not None and m.get(key) is not None:
                out.append(r)
    return out


def fronts(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """profile -> {"accuracy": [job ids on the front], "size": [...]} over the finished jobs."""
    result: dict[str, dict[str, list[str]]] = {}
    for prof in sorted({g for r in rows if (g := group(r))}):
        result[prof] = {}
        for name, (key, more) in AXES.items():
            pts = _points(rows, prof, key)
            xy = [(p["metrics"]["latency_ms"], p["metrics"][key]) for p in pts]
            result[prof][name] = [pts[i]["id"] for i in front(xy, more)]
    return result


def _chart(rows: list[dict[str, Any]], profile: str, name: str, on_front: list[str]) -> str | None:
    from edgekit.bench.html import png, pyplot

    key, more = AXES[name]
    pts = _points(rows, profile, key)
    if not pts:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for p in pts:
        m = p["metrics"]
        hit = p["id"] in on_front
        ax.scatter(m["latency_ms"], m[key], s=46 if hit else 24, color="#c0392b" if hit else "#888",
                   zorder=3 if hit else 2)  # fmt: skip
        ax.annotate(p["label"].split(" / ", 1)[0] + " " + p["config"]["name"],
                    (m["latency_ms"], m[key]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")  # fmt: skip
    line = sorted(
        (p["metrics"]["latency_ms"], p["metrics"][key]) for p in pts if p["id"] in on_front
    )
    if len(line) > 1:
        ax.step(
            [x for x, _ in line],
            [y for _, y in line],
            where="post",
            color="#c0392b",
            lw=1,
            alpha=0.7,
        )
    ax.set_xlabel("latency, median (ms)")
    ax.set_ylabel("accuracy" if name == "accuracy" else "size (bytes)")
    ax.set_title(f"{profile}: latency against {name} ({'higher' if more else 'lower'} is better)")
    ax.grid(alpha=0.3)
    return png(fig)


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def to_html(summary: dict[str, Any]) -> str:
    """One page: a table of every job and, per profile, the two Pareto charts (inline PNG)."""
    from edgekit.bench.html import CSS

    rows = summary["jobs"]
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>edgekit sweep</title>",
        f"<style>{CSS}</style></head><body><h1>edgekit sweep</h1>",
        f"<p class='note'>{esc(str(summary.get('sweep_file')))} · edgekit "
        f"{esc(summary['edgekit_version'])} · {esc(str(summary['counts']))}</p>",
    ]
    for prof, fr in summary["pareto"].items():
        parts.append(f"<h2>{esc(prof)}</h2>")
        for name in AXES:
            png = _chart(rows, prof, name, fr.get(name, []))
            if png is None:
                parts.append(f"<p class='note'>no finished job with latency and {name}</p>")
            else:
                parts.append(
                    f"<img alt='{esc(prof)} {name} front' src='data:image/png;base64,{png}'>"
                )
    parts.append("<h2>Jobs</h2><table><tr><th>job</th><th>status</th><th>precision</th>"
                 "<th>latency (ms)</th><th>accuracy</th><th>size</th><th>where</th><th>error</th></tr>")  # fmt: skip
    for r in rows:
        m = r.get("metrics") or {}
        w = r.get("where") or {}
        where = f"{w.get('worker')} cpus {w.get('cpus')} try {r.get('attempt')}" if w else ""
        if m.get("latency_on"):
            where += f", timed on device {m['latency_on']}"
        parts.append(
            f"<tr><td>{esc(r.get('label', r['id']))}<br><code>{esc(r['id'])}</code></td>"
            f"<td>{esc(r['status'])}</td><td>{esc(str(m.get('precision') or '–'))}</td>"
            f"<td>{_fmt(m.get('latency_ms'), '.4g')}</td><td>{_fmt(m.get('accuracy'), '.4g')}</td>"
            f"<td>{_fmt(m.get('size_bytes'), ',')}</td><td>{esc(where)}</td>"
            f"<td>{esc(r.get('error') or '')}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts)
