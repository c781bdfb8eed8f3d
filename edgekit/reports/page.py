"""The page of one `optimize` run, from its report.json alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import edgekit.reports.charts as charts
from edgekit.bench.html import Ratio, img, ratios_png, violins_png
from edgekit.reports.html_parts import (
    e,
    head,
    key_values,
    ms,
    pct,
    preprocess_section,
    size,
    table,
    tail,
    verdict_line,
    versions_table,
    warning_boxes,
)
from edgekit.reports.summary import verdict

# The band drawn around 1.0 on the ratio chart, as `edgekit compare`'s default threshold.
NOISE_BAND = 0.05


def optimize_page(r: dict[str, Any]) -> str:
    """report.html of an optimize run (see `edgekit.reports.build_page`)."""
    prof = r["profile"]
    parts = head(f"edgekit optimize: {Path(r['source']['path']).name} for {prof['name']}")
    line, good = verdict(r)
    parts.append(verdict_line(line, good))
    failed = None if r["meets_budget"] else (
        f"NOT MET: no candidate stays within the accuracy budget of "
        f"{r['max_accuracy_drop']:g} points; the best one was saved.")  # fmt: skip
    parts += warning_boxes(r["warnings"], failed)
    cands = [c for c in r["candidates"] if not c.get("error")]
    parts += _candidates(r, cands)
    parts += _latency(r, cands)
    parts += _layers(r)
    parts += _confusion(r)
    parts += preprocess_section(
        r["data"].get("preprocess"),
        "No preprocess.json beside the model: the data was fed as it is stored "
        "(images resized to the model's input, not normalized).",
    )
    parts += _environment(r)
    parts.append(tail())
    return "\n".join(parts)


def _is_chosen(r: dict[str, Any], c: dict[str, Any]) -> bool:
    o = r["optimized"]
    return c["name"] == o["name"] and c["kept_float"] == r["kept_float"]


def _candidates(r: dict[str, Any], cands: list[dict[str, Any]]) -> list[str]:
    out = ["<h2>Candidates</h2>"]
    b = r["baseline"]
    rows = [[b["name"], size(b["size_bytes"]), pct(b["accuracy"]), "0.00", "100%",
             ms(b["latency_ms"]), "reference"]]  # fmt: skip
    classes = [""]
    for c in r["candidates"]:
        if c.get("error"):
            rows.append([c["name"], f"failed: {c['error'][:120]}", "", "", "", "", ""])
            classes.append("regression")
            continue
        agree = (c.get("parity") or {}).get("top1_agreement")
        name = c["name"] + (f" (float: {', '.join(c['kept_float'])})" if c["kept_float"] else "")
        rows.append([name, size(c["size_bytes"]), pct(c["accuracy"]), f"{c['accuracy_drop']:.2f}",
                     pct(agree), ms(c["latency_ms"]), "ok" if c["meets_budget"] else "MISSES"])  # fmt: skip
        classes.append("chosen" if _is_chosen(r, c) else "")
    points = [_point(r, b, 0.0, True, False)] + [
        _point(r, c, c["accuracy_drop"], c["meets_budget"], _is_chosen(r, c))
        for c in cands
        if c.get("latency_ms")
    ]
    if b.get("latency_ms") and len(points) > 1:
        out.append(img(charts.candidates_png(points, r["max_accuracy_drop"],
                                             r["accuracy_drop_unit"]), "candidates chart"))  # fmt: skip
    else:
        out.append('<p class="note">Latency was not measured: no candidates chart.</p>')
    out.append(table(["candidate", "size", "accuracy", f"drop ({r['accuracy_drop_unit']})",
                      "top-1 agreement", "median latency [95% CI]", "budget"], rows, classes))  # fmt: skip
    return out


def _point(r: dict[str, Any], c: dict[str, Any], drop: float, meets: bool, chosen: bool) -> dict:
    lat = c["latency_ms"] or {}
    ci = lat.get("median_ci") or {}
    return {"name": c["name"], "median": lat.get("median"), "low": ci.get("low"),
            "high": ci.get("high"), "drop": drop, "size_bytes": c["size_bytes"],
            "meets": meets, "chosen": chosen}  # fmt: skip


def _samples_ms(c: dict[str, Any]) -> np.ndarray | None:
    raw = (c.get("latency_ms") or {}).get("samples_ns")
    return None if not raw else np.asarray(raw, dtype=np.float64) / 1e6


def _latency(r: dict[str, Any], cands: list[dict[str, Any]]) -> list[str]:
    from edgekit.bench.stats import bootstrap_ratio_ci

    out = ["<h2>Latency: how sure the figures are</h2>"]
    series = [(c["name"], _samples_ms(c)) for c in [r["baseline"], *cands]]
    series = [(n, s) for n, s in series if s is not None]
    base = _samples_ms(r["baseline"])
    if base is None or len(series) < 2:
        return out + ['<p class="note">This report keeps no raw latency samples: no '
                      "distributions or ratio intervals (medians and their CIs are in the "
                      "table above).</p>"]  # fmt: skip
    ratios, level = [], 0.95
    for name, s in series[1:]:
        ci = bootstrap_ratio_ci(base, s, n_boot=1000, max_n=5000)
        level = ci["level"]
        slower, faster = ci["low"] > 1 + NOISE_BAND, ci["high"] < 1 - NOISE_BAND
        ratios.append(Ratio(name, ci["ratio"], ci["low"], ci["high"],
                            "regression" if slower else "improvement" if faster else ""))  # fmt: skip
    out.append(img(ratios_png(ratios, NOISE_BAND, level,
                              "Median latency ratio, candidate / baseline fp32 (<1 = faster)"),
                   "latency ratio chart"))  # fmt: skip
    out.append(img(violins_png([s for _, s in series], [n for n, _ in series],
                               "Latency distribution: baseline and candidates"),
                   "latency distributions"))  # fmt: skip
    m = r["measurement"]
    out.append(f'<p class="note">{e(m["statistic"])}; {m["threads"]} thread(s), batch '
               f"{m['batch']}, on {e(m['host'])}. Ratio CIs: seeded percentile bootstrap of "
               "the raw samples.</p>")  # fmt: skip
    return out


def _layers(r: dict[str, Any]) -> list[str]:
    out = ["<h2>Where quantization costs accuracy: every layer</h2>"]
    errs = r.get("layer_errors") or []
    if not errs:
        return out + ['<p class="note">No per-layer quantization errors in this report (no '
                      "int8 candidate, or its backend measures none).</p>"]  # fmt: skip
    out.append(img(charts.layer_errors_png(errs, r["kept_float"]), "layer errors chart"))
    metric = errs[0]["metric"]
    out.append(f'<p class="note">One measure for every layer, bigger is worse: {e(metric)}, '
               f"{e(charts.LAYER_METRICS.get(metric, metric))}.</p>")  # fmt: skip
    worst = sorted(errs, key=lambda x: -x["error"])[:5]
    out.append("<p>The five worst layers:</p><ol>")
    out += [f"<li><code>{e(x['name'])}</code> ({e(x['op'])}): {e(charts.layer_error_words(x))}"
            + (" — <b>kept in float</b>" if x["name"] in r["kept_float"] else "") + "</li>"
            for x in worst]  # fmt: skip
    out.append("</ol>")
    kept = r["kept_float"]
    cost = r.get("kept_float_latency_cost_ms")
    out.append(f'<p class="note">Kept in float: {e(", ".join(kept)) if kept else "none"}'
               + (f" (latency cost vs plain int8: {cost:+.3f} ms)" if cost is not None else "")
               + ".</p>")  # fmt: skip
    return out


def _confusion(r: dict[str, Any]) -> list[str]:
    out = ["<h2>Confusion matrices</h2>"]
    if not r["data"]["labelled"]:
        return out + ['<p class="note">No labelled evaluation data, so no confusion matrices: '
                      "accuracy is unproven (pass --eval-data with labels).</p>"]  # fmt: skip
    before, after = r["baseline"].get("confusion"), r["optimized"].get("confusion")
    if not before or not after:
        return out + ['<p class="note">This report carries no confusion matrices.</p>']
    k = len(before)
    known = (r["data"].get("preprocess") or {}).get("class_names") or []
    names = [str(n) for n in known][:k] if len(known) >= k else [str(i) for i in range(k)]
    out.append(img(charts.confusion_png(before, after, names), "confusion matrices"))
    a, b = np.asarray(before), np.asarray(after)
    rows = []
    for i, name in enumerate(names):
        n = int(a[i].sum())
        if not n:
            continue
        ra, rb = a[i, i] / n, b[i, i] / n
        rows.append([name, n, f"{ra:.2%}", f"{rb:.2%}", f"{100 * (rb - ra):+.2f}"])
    out.append("<p>Per-class change (recall: the share of each true class predicted right):</p>")
    out.append(table(["class", "samples", "baseline", "optimized", "change (points)"], rows))
    return out


def _environment(r: dict[str, Any]) -> list[str]:
    m, prof, o = r["measurement"], r["profile"], r["optimized"]
    host = "host measurement (not the target)" if m["host_measurement"] else "measured here"
    out = ["<h2>Environment</h2>", key_values([
        ("machine", f"{m['host']} ({m['host_arch']})"),
        ("ISA features", ", ".join(m.get("isa_features") or [])),
        ("runtime", m["runtime"]),
        ("threads", f"{m['threads']} ({m['threads_from']})"),
        ("batch", m["batch"]),
        ("precision run", f"{o['precision']} ({o['format']})"),
        ("profile", f"{prof['name']}: {prof['runtime']} on {prof['device']} ({prof['arch']}), "
                    f"precisions {', '.join(prof['precision'])}"),
        ("source model", f"{r['source']['path']} ({r['source']['format']}, sha256 "
                         f"{r['source']['sha256'][:12]})"),
        ("data", r["data"]["source"]),
    ]), versions_table(r.get("versions"))]  # fmt: skip
    out += ["<h2>Where each figure comes from</h2>", table(["figure", "source"], [
        ["latency", f"{host}: {m['runtime']} on {m['host']}, {m['threads']} thread(s)"],
        ["accuracy, parity, confusion", f"computed here with {m['runtime']} on the eval data"],
        ["layer errors", "the quantization backend's own debugger, on the calibration data"],
        ["sizes", "the model files as written"],
        ["compiler estimates", "none (optimize runs no target compiler)"],
    ])]  # fmt: skip
    return out
