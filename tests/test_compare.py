"""`compare` on real reports: A vs A, a real 2x slowdown, mismatches, schema versions, HTML."""

from __future__ import annotations

import base64
import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgekit.bench import benchmark
from edgekit.bench.compare import compare, parse_threshold, to_markdown
from edgekit.errors import InputError, ReportError
from tests.conftest import run_cli as edgekit_cli
from tests.conftest import tiny_onnx

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real report of a tiny ONNX model (1000+ samples)."""
    folder = tmp_path_factory.mktemp("cmp")
    model = tiny_onnx(folder / "tiny.onnx")
    report = benchmark(model, threads=1, min_runs=2000, min_time=0.3, warmup="0.1s")
    return json.loads(json.dumps(report.to_dict()))


def variant(base: dict, samples: np.ndarray | list[int], **changes: dict) -> dict:
    """A copy of a real report with other samples (statistics recomputed) and field changes."""
    from edgekit.bench.stats import summarize

    d = json.loads(json.dumps(base))
    d["samples_ns"] = [int(s) for s in samples]
    lat = summarize(d["samples_ns"])
    lat["quantile_method"] = d["latency_ms"]["quantile_method"]
    lat["per_process"] = d["latency_ms"]["per_process"]
    d["latency_ms"] = lat
    for section, values in changes.items():
        d[section].update(values)
    return d


def halves(real: dict) -> tuple[dict, dict]:
    """Two real reports of the same model: the even and the odd runs of one measurement."""
    s = np.asarray(real["samples_ns"])
    return variant(real, s[0::2]), variant(real, s[1::2])


def save(tmp_path: Path, name: str, d: dict) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return str(p)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return edgekit_cli("compare", *args, timeout=120)


# ----------------------------------------------------------------------------- verdicts


def test_a_vs_a_is_never_a_regression(real: dict, tmp_path: Path) -> None:
    a, b = halves(real)
    result = compare([a, b], threshold="5%")
    (pair,) = result.pairs
    assert not result.regressions
    assert pair.ci_low < 1.05  # whatever the noise, the CI does not lie beyond the threshold
    same = compare([real, real])
    assert same.pairs[0].median_ratio == 1.0 and same.pairs[0].verdict == "no significant change"
    proc = run_cli(save(tmp_path, "a.json", a), save(tmp_path, "b.json", b), "--fail-on-regression")
    assert proc.returncode == 0, proc.stderr


def test_a_real_2x_slowdown_is_detected(real: dict, tmp_path: Path) -> None:
    a, b = halves(real)
    slow = variant(b, 2 * np.asarray(b["samples_ns"]))
    result = compare([a, slow], threshold="5%")
    (pair,) = result.pairs
    assert pair.verdict == "regression" and pair.regressed
    assert 1.8 < pair.ci_low <= pair.median_ratio <= pair.ci_high < 2.2
    assert pair.p_holm < 1e-6
    assert pair.p99_ratio == pytest.approx(2.0, rel=0.25)
    pa, ps = save(tmp_path, "a.json", a), save(tmp_path, "slow.json", slow)
    proc = run_cli(pa, ps, "--fail-on-regression")
    assert proc.returncode == 1
    assert "regressed" in proc.stderr and "Traceback" not in proc.stderr
    assert run_cli(pa, ps).returncode == 0  # without the flag a regression is reported, not failed


def test_a_speedup_is_an_improvement_not_a_regression(real: dict) -> None:
    a, b = halves(real)
    fast = variant(b, np.asarray(b["samples_ns"]) // 2)
    result = compare([a, fast])
    assert result.pairs[0].verdict == "improvement" and not result.regressions


def test_significant_but_small_change_is_not_a_regression(real: dict) -> None:
    a, b = halves(real)
    slightly = variant(b, (np.asarray(b["samples_ns"]) * 1.02).astype(np.int64))
    pair = compare([a, slightly], threshold="5%").pairs[0]
    assert pair.verdict in ("change within threshold", "no significant change")
    assert not pair.regressed


def test_holm_correction_across_pairs(real: dict) -> None:
    a, b = halves(real)
    c = variant(b, 2 * np.asarray(b["samples_ns"]))
    result = compare([a, b, c])
    assert len(result.pairs) == 2
    raw = sorted(p.p_value for p in result.pairs)
    adjusted = sorted(p.p_holm for p in result.pairs)
    assert adjusted[0] == pytest.approx(min(1.0, 2 * raw[0]))
    assert [p.verdict for p in result.regressions] == ["regression"]


def test_reports_are_aligned_by_model_and_runtime(real: dict) -> None:
    a, b = halves(real)
    other_a = variant(a, a["samples_ns"], model={"path": "/x/other.onnx"})
    other_b = variant(b, b["samples_ns"], model={"path": "/x/other.onnx"})
    result = compare([a, other_a, b, other_b])
    assert {(p.baseline, p.candidate) for p in result.pairs} == {
        ("report1", "report3"),
        ("report2", "report4"),
    }


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("section", "change", "word"),
    [
        ("runtime", {"threads": 4}, "threads (1 vs 4)"),
        ("runtime", {"version": "0.0.1"}, "runtime version"),
        ("runtime", {"device": "GPU"}, "device (CPU vs GPU)"),
        ("model", {"sha256": "0" * 64}, "model sha256"),
        ("environment", {"cpu_model": "Other CPU"}, "cpu"),
    ],
)
def test_mismatched_conditions_are_refused(
    real: dict, tmp_path: Path, section: str, change: dict, word: str
) -> None:
    a, b = halves(real)
    b = variant(b, b["samples_ns"], **{section: change})
    with pytest.raises(ReportError, match="--allow-mismatch") as info:
        compare([a, b])
    assert word in str(info.value)
    allowed = compare([a, b], allow_mismatch=True)
    assert word in to_markdown(allowed) and "MISMATCH" in to_markdown(allowed)
    if section != "runtime" or "threads" not in change:
        return  # the CLI path is the same for every field: run it once
    pa, pb = save(tmp_path, "a.json", a), save(tmp_path, "b.json", b)
    proc = run_cli(pa, pb)
    assert proc.returncode == 2
    assert word in proc.stderr and "Traceback" not in proc.stderr
    allowed = run_cli(pa, pb, "--allow-mismatch", "--format", "markdown")
    assert allowed.returncode == 0, allowed.stderr
    assert "MISMATCH" in allowed.stdout and word in allowed.stdout


@pytest.mark.parametrize(
    ("version", "sentence"),
    [
        (0, "schema_version 0 is older than the supported schema_version 1"),
        (7, "schema_version 7 is newer than the supported schema_version 1"),
        ("v1", "schema_version 'v1' is unknown; this edgekit reads schema_version 1"),
    ],
)
def test_other_schema_versions_exit_2_with_a_sentence(
    real: dict, tmp_path: Path, version: object, sentence: str
) -> None:
    bad = json.loads(json.dumps(real))
    bad["schema_version"] = version
    proc = run_cli(save(tmp_path, "ok.json", real), save(tmp_path, "bad.json", bad))
    assert proc.returncode == 2
    assert sentence in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_unusable_inputs_exit_2(real: dict, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    ok = save(tmp_path, "ok.json", real)
    for args, words in [
        ((ok, str(broken)), "is not valid JSON"),
        ((ok, str(tmp_path / "missing.json")), "no such report"),
        ((ok, ok, "--threshold", "lots"), "--threshold"),
        ((ok, ok, "--baseline", "zzz.json"), "--baseline"),
        ((ok,), "at least two reports"),
    ]:
        proc = run_cli(*args)
        assert proc.returncode == 2, args
        assert words in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.1", 0.1), (0.02, 0.02)])
def test_parse_threshold(text: object, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["5", "150%", "-1%", "x"])
def test_parse_threshold_refuses(bad: str) -> None:
    with pytest.raises(InputError):
        parse_threshold(bad)


# ----------------------------------------------------------------------------- outputs


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.imgs: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("data:"):
                self.external.append(a[key])


def test_html_is_one_self_contained_page_with_its_images(real: dict, tmp_path: Path) -> None:
    a, b = halves(real)
    c = variant(b, 2 * np.asarray(b["samples_ns"]))
    paths = [save(tmp_path, n, d) for n, d in (("a.json", a), ("b.json", b), ("c.json", c))]
    out = tmp_path / "page.html"
    proc = run_cli(*paths, "--format", "html", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    page = _Page()
    page.feed(text)
    assert {"html", "head", "body", "table", "img"} <= set(page.tags)
    assert not page.external  # nothing fetched from outside the file
    assert len(page.imgs) == 2  # the ratio chart and the distribution plot
    for src in page.imgs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "regression" in text and "c.json" in text


def test_json_and_markdown_formats(real: dict, tmp_path: Path) -> None:
    a, b = halves(real)
    pa, pb = save(tmp_path, "a.json", a), save(tmp_path, "b.json", b)
    proc = run_cli(pa, pb, "--format", "json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["pairs"][0]["baseline"] == "a.json" and data["regressions"] == 0
    md = to_markdown(compare([pa, pb]))
    assert md.count("\n|") >= 3 and "a.json" in md
    table = run_cli(pa, pb, "--baseline", pb)
    assert table.returncode == 0 and "b.json" in table.stdout


@pytest.mark.slow
def test_a_model_doing_twice_the_work_is_a_regression(tmp_path: Path) -> None:
    """Real measurements, no injected samples: 16 vs 8 identical MatMul layers."""
    small = benchmark(tiny_onnx(tmp_path / "w8.onnx", width=256, layers=8), threads=1,
                      min_runs=300, min_time=1.0, warmup="0.3s")  # fmt: skip
    big = benchmark(tiny_onnx(tmp_path / "w16.onnx", width=256, layers=16), threads=1,
                    min_runs=300, min_time=1.0, warmup="0.3s")  # fmt: skip
    result = compare([small.to_dict(), big.to_dict()], allow_mismatch=True)  # hashes differ
    (pair,) = result.pairs
    assert pair.mismatches and "model sha256" in pair.mismatches[0]
    assert pair.verdict == "regression", (pair.median_ratio, pair.ci_low, pair.ci_high)
    assert 1.3 < pair.median_ratio < 3.0
