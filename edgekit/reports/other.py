"""The pages of a deploy bundle (from manifest.json) and of an eval result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import edgekit.reports.charts as charts
from edgekit.bench.html import img, violins_png
from edgekit.reports.html_parts import (
    e,
    head,
    key_values,
    ms,
    preprocess_section,
    size,
    table,
    tail,
    verdict_line,
    versions_table,
    warning_boxes,
)
from edgekit.reports.summary import verdict


def deploy_page(m: dict[str, Any]) -> str:
    """report.html of a bundle. It reads no "files" entry of the manifest: the page is
    written before those checksums are taken, so that the manifest can list it."""
    prof, meas, rt = m["profile"], m["measurements"], m["runtime"]
    parts = head(f"edgekit deploy: {m['model']['source']['name']} for {prof['name']}")
    line, good = verdict(m)
    parts.append(verdict_line(line, good))
    parts += warning_boxes(m.get("warnings") or [])
    lat = meas.get("latency") or {}
    parity = meas.get("parity") or {}
    parts += ["<h2>The bundle</h2>", key_values([
        ("model", f"{m['model']['entry']} ({m['format']}, {m['precision']}, "
                  f"{size(m['model']['size_bytes'])})"),
        ("source", f"{m['model']['source']['name']} ({m['model']['source']['format']}, sha256 "
                   f"{m['model']['source']['sha256'][:12]})"),
        ("parity vs source", ", ".join(f"{k} {v}" for k, v in parity.items()
                                       if not isinstance(v, dict | list))),
        ("median latency [95% CI]", ms(lat.get("latency_ms"))),
        ("latency tool", lat.get("tool")),
        ("conversion", " -> ".join(str(s) for s in (m.get("conversion") or {}).get("path", []))),
        ("runtime requirement", rt.get("requirement")),
    ])]  # fmt: skip
    samples = (lat.get("latency_ms") or {}).get("samples_ns")
    if samples:
        parts.append(img(violins_png([np.asarray(samples, np.float64) / 1e6], [m["precision"]],
                                     "Latency distribution of the bundled model"),
                         "latency distribution"))  # fmt: skip
    parts += preprocess_section(m.get("preprocessing"), "No preprocess.json was bundled: the "
                                "runner feeds inputs as given.")  # fmt: skip
    machine = meas.get("machine") or {}
    parts += ["<h2>Environment</h2>", key_values([
        ("machine", f"{machine.get('arch')} {machine.get('system')}, Python "
                    f"{machine.get('python')}"),
        ("runtime", f"{rt['name']} (host: {rt.get('host_runtime')}), device {rt.get('device')}"),
        ("threads", rt.get("threads")),
        ("precision run", m["precision"]),
        ("profile", f"{prof['name']}: {prof.get('runtime')} on {prof.get('device')} "
                    f"({prof.get('arch')})"),
        ("bundle made", f"{m.get('created')} by edgekit {m.get('edgekit_version')}"),
    ]), versions_table(m.get("versions"))]  # fmt: skip
    where = "the target itself" if meas.get("measured_on") == "target" else (
        f"host measurement: {meas.get('note', 'not on the target')}")  # fmt: skip
    comp = m.get("compiler")
    comp_txt = "none (the profile has no compiler step)" if not comp else (
        f"{comp['name']} estimates" if comp.get("ran") else f"{comp['name']} did not run here")  # fmt: skip
    parts += ["<h2>Where each figure comes from</h2>", table(["figure", "source"], [
        ["latency", where],
        ["parity", "computed here against the source model"],
        ["compiler figures", comp_txt],
        ["size", "the model file as bundled"],
    ])]  # fmt: skip
    parts.append(tail())
    return "\n".join(parts)


def eval_page(r: dict[str, Any]) -> str:
    """report.html of `edgekit eval --html`."""
    parts = head(f"edgekit eval: {Path(r['model']).name} on {r['dataset']}")
    line, good = verdict(r)
    parts.append(verdict_line(line, good))
    ref = r.get("reference")
    cm = r["confusion_matrix"]
    names = r["class_names"]
    parts.append("<h2>Confusion matrix</h2>")
    parts.append(img(charts.confusion_png(cm, None, names), "confusion matrix"))
    rows = [[c["class"], c["support"], f"{c['precision']:.2%}", f"{c['recall']:.2%}",
             f"{c['f1']:.3f}"] for c in r.get("per_class") or []]  # fmt: skip
    if rows:
        parts.append(table(["class", "samples", "precision", "recall", "F1"], rows))
    if ref:
        parts += ["<h2>Against the reference</h2>", key_values([
            ("reference", f"{ref['model']} ({ref['format']} on {ref['runtime']})"),
            ("reference accuracy", f"{ref['accuracy']:.2%}"),
            ("agreement", f"{ref['agreement']:.2%} ({ref['disagreements']} samples differ)"),
            ("max |score diff|", ref.get("max_abs_diff")),
        ])]  # fmt: skip
    parts += ["<h2>Preprocessing applied</h2>",
              f'<p class="note">From {e(str(r.get("preprocess")))}.</p>']  # fmt: skip
    parts += ["<h2>Environment</h2>", key_values([
        ("runtime", f"{r['runtime']} ({r['format']})"),
        ("batch size", r.get("batch_size")),
        ("wall time", f"{r['wall_time_s']} s"),
    ]), f'<p class="note">Every figure here was computed on this machine ({e(r["runtime"])}); '
        "none is a compiler estimate.</p>"]  # fmt: skip
    parts.append(tail())
    return "\n".join(parts)
