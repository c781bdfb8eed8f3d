"""The verdict line (the page's first line) and the terminal summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import ReportError
from edgekit.reports.html_parts import size


def kind(record: dict[str, Any]) -> str:
    """Which command wrote `record`: "optimize", "deploy" or "eval"."""
    if "candidates" in record and "baseline" in record:
        return "optimize"
    if record.get("created_by") == "edgekit" and "measurements" in record:
        return "deploy"
    if "confusion_matrix" in record and "dataset" in record:
        return "eval"
    raise ReportError(
        "this JSON is not an edgekit optimize report, deploy manifest or eval result; "
        "pass the folder optimize or deploy wrote, or a file from `edgekit eval --json`."
    )


def verdict(record: dict[str, Any]) -> tuple[str, bool]:
    """What was chosen, for which profile, at what cost, in one line; and whether it is good
    (the budget met, or nothing to meet)."""
    k = kind(record)
    if k == "optimize":
        return _optimize_verdict(record)
    if k == "deploy":
        return _deploy_verdict(record)
    return _eval_verdict(record)


def _optimize_verdict(r: dict[str, Any]) -> tuple[str, bool]:
    b, o, prof = r["baseline"], r["optimized"], r["profile"]
    parts = [f"{o['name']} chosen for {prof['name']} ({prof['format']} on "
             f"{r['measurement']['runtime']})"]  # fmt: skip
    if r.get("speedup") and b["latency_ms"] and o["latency_ms"]:
        parts.append(f"{r['speedup']:.2f}x the speed of fp32 ({o['latency_ms']['median']:.4g} vs "
                     f"{b['latency_ms']['median']:.4g} ms median)")  # fmt: skip
    else:
        parts.append("latency not measured")
    if r.get("size_ratio"):
        parts.append(f"{100 * r['size_ratio']:.0f}% of its size ({size(o['size_bytes'])})")
    drop = r["accuracy_drop"]
    if drop is None:
        parts.append("accuracy unproven")
    elif r["data"]["labelled"]:
        parts.append(f"accuracy {-drop:+.2f} points")
    else:
        parts.append(f"{drop:.2f} points of top-1 disagreement with fp32 (accuracy unproven)")
    budget = f"{r['max_accuracy_drop']:g}-point budget"
    met = bool(r["meets_budget"])
    return ", ".join(parts) + (f": within the {budget}." if met else f": MISSES the {budget}."), met


def _deploy_verdict(m: dict[str, Any]) -> tuple[str, bool]:
    ms_ = m["measurements"]
    parts = [f"bundle for {m['profile']['name']}: {m['format']} {m['precision']}, "
             f"{size(m['model']['size_bytes'])}, on {m['runtime']['name']}"]  # fmt: skip
    parity = ms_.get("parity")
    if parity:
        parts.append(f"parity max |err| {parity['max_abs_error']:.3g}, "
                     f"cosine {parity['cosine']:.6f}")  # fmt: skip
    else:
        parts.append("parity not checked")
    lat = (ms_.get("latency") or {}).get("latency_ms")
    if lat:
        parts.append(f"{lat['median']:.4g} ms median ({ms_['measured_on']} measurement)")
    return ", ".join(parts) + ".", bool(parity)


def _eval_verdict(r: dict[str, Any]) -> tuple[str, bool]:
    text = (f"accuracy {r['accuracy']:.2%} on {r['dataset']} ({r['split']}, {r['samples']} "
            f"samples): {Path(r['model']).name} ({r['format']} on {r['runtime']})")  # fmt: skip
    ref = r.get("reference")
    if ref:
        text += f"; agrees with {Path(ref['model']).name} on {ref['agreement']:.2%}"
    return text + ".", True


def summary_table(record: dict[str, Any], page: Path | str) -> Any:
    """One rich table: the verdict line, the key figures and the page's path."""
    from rich.table import Table

    line, good = verdict(record)
    t = Table(show_header=False, title="edgekit", title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("verdict", f"[{'green' if good else 'red'}]{line}[/]")
    for name, value in _figures(record):
        t.add_row(name, value)
    warns = record.get("warnings") or []
    if warns:
        t.add_row("warnings", f"{len(warns)} (each on the page)")
    t.add_row("page", str(page))
    return t


def _figures(record: dict[str, Any]) -> list[tuple[str, str]]:
    from edgekit.reports.html_parts import ms

    if kind(record) == "optimize":
        b, o = record["baseline"], record["optimized"]
        ran = (o.get("inference_precision") or {}).get("ran")
        computed = f" (the runtime computed in {ran}, read back)" if ran else ""
        return [
            ("precision", f"{b['precision']} -> {o['precision']}{computed}"),
            ("size", f"{size(b['size_bytes'])} -> {size(o['size_bytes'])}"),
            ("median latency", f"{ms(b['latency_ms'])} -> {ms(o['latency_ms'])}"),
            ("kept in float", ", ".join(record["kept_float"]) or "none"),
        ]
    return []
