"""report.html: built for real optimize, deploy and eval runs, rendered in headless Chromium,
rebuilt byte for byte by `edgekit report`, and the shell completion of profile names."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, assert_user_error, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference CNN, trained briefly on digits (its run folder names the dataset)."""
    from edgekit.train import train

    out = tmp_path_factory.mktemp("cnn") / "run"
    return train("cnn", "digits", out, epochs=1, progress=False).model_path


@pytest.fixture(scope="module")
def labelled(cnn: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An optimize run with labels: every candidate of x86-avx2, measured."""
    from edgekit.optimize import optimize

    out = tmp_path_factory.mktemp("opt") / "o"
    optimize(cnn, "x86-avx2", out=out)
    return out


@pytest.fixture(scope="module")
def unlabelled(cnn: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model alone in a folder: no dataset is known, so no labels."""
    from edgekit.optimize import optimize

    tmp = tmp_path_factory.mktemp("bare")
    shutil.copy(cnn, tmp / "model.keras")
    optimize(tmp / "model.keras", "x86-avx2", out=tmp / "o", quantize="int8")
    return tmp / "o"


class _Page(HTMLParser):
    """Every tag, every URL-bearing attribute and the images' sources of a page."""

    URL_ATTRS = {"src", "href", "action", "poster", "srcset", "data", "formaction"}

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.imgs: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k in self.URL_ATTRS and v is not None:
                self.urls.append(v)
                if tag == "img":
                    self.imgs.append(v)


def _external_urls(text: str) -> list[str]:
    """URLs in attributes or CSS url(...) that are not data: URIs or #fragments."""
    page = _Page(text)
    css = re.findall(r"url\(\s*['\"]?([^'\")]+)", text)
    return [u for u in page.urls + css if not (u.startswith("data:") or u.startswith("#"))]


def _nonblank(png: bytes) -> bool:
    """True when an image shows something: not one flat colour."""
    import io

    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    return a.std() > 5 and (a < 200).mean() > 0.005


def test_labelled_page_shows_every_section(labelled: Path) -> None:
    import base64

    text = (labelled / "report.html").read_text()
    rep = json.loads((labelled / "report.json").read_text())
    page = _Page(text)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "script" not in page.tags and "link" not in page.tags
    assert f"{rep['optimized']['name']} chosen for x86-avx2" in text  # the verdict line
    assert text.index('class="verdict') < text.index("<h2>")  # ... on top
    for w in rep["warnings"]:
        assert f'<div class="warnbox">{html.escape(w)}</div>' in text
    # candidates, latency ratio, latency distributions, layer errors, confusion matrices
    assert len(page.imgs) == 5
    assert all(_nonblank(base64.b64decode(s.split(",", 1)[1])) for s in page.imgs)
    assert "The five worst layers" in text and rep["layer_errors"]
    assert "noise/signal" in text  # the backend's one unit, stated
    assert "Per-class change" in text and "<h2>Preprocessing applied</h2>" in text
    assert "Where each figure comes from" in text and rep["measurement"]["host"] in text
    assert not _external_urls(text)
    # what the page is drawn from is in report.json: raw samples and both confusion matrices
    assert len(rep["baseline"]["latency_ms"]["samples_ns"]) == rep["baseline"]["latency_ms"]["n"]
    cm = np.asarray(rep["optimized"]["confusion"])
    assert cm.shape == (10, 10) and np.trace(cm) / cm.sum() == pytest.approx(
        rep["optimized"]["accuracy"], abs=1e-6
    )


def test_unlabelled_page_says_there_is_no_confusion(unlabelled: Path) -> None:
    text = (unlabelled / "report.html").read_text()
    rep = json.loads((unlabelled / "report.json").read_text())
    assert not rep["data"]["labelled"] and rep["baseline"]["confusion"] is None
    assert "No labelled evaluation data, so no confusion matrices" in text
    assert "accuracy unproven" in text  # in the verdict line
    assert len(_Page(text).imgs) == 4  # no confusion chart; the other four are there
    assert not _external_urls(text)


def test_report_rebuilds_the_same_bytes_and_loads_no_framework(labelled: Path, tmp_path: Path):
    copy = tmp_path / "copied"
    copy.mkdir()
    shutil.copy(labelled / "report.json", copy)  # report.json alone, as copied off CI
    r = run_cli("report", str(copy))
    assert r.returncode == 0, r.stderr
    assert (copy / "report.html").read_bytes() == (labelled / "report.html").read_bytes()
    code = (
        "import sys; from edgekit.cli import main\n"
        "try: main(['report', sys.argv[1]])\n"
        "except SystemExit: pass\n"
        "heavy = {'tensorflow', 'onnxruntime', 'openvino', 'nncf', 'torch'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    p = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)  # fmt: skip
    assert p.stdout.strip().splitlines()[-1] == "[]", p.stdout + p.stderr


def test_report_of_a_folder_without_a_record_is_one_sentence(tmp_path: Path) -> None:
    assert_user_error(run_cli("report", str(tmp_path)), "report.json")
    (tmp_path / "x.json").write_text('{"schema_version": 1}')
    assert_user_error(run_cli("report", str(tmp_path / "x.json")), "not an edgekit")


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """Headless Chromium with every network path closed: a dead proxy, no DNS."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--proxy-server=socks5://127.0.0.1:9",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--force-device-scale-factor=1",
             "--hide-scrollbars", "--virtual-time-budget=5000"]  # fmt: skip
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


# After load: where each image lies, whether it decoded, and what the page requested.
_PROBE = (
    '<script>addEventListener("load",()=>{const p=document.createElement("pre");p.id="ek-probe";'
    "p.textContent=JSON.stringify({h:document.documentElement.scrollHeight,"
    "imgs:[...document.images].map(i=>{const b=i.getBoundingClientRect();"
    "return [b.left,b.top+scrollY,b.width,b.height,i.naturalWidth]}),"
    'res:performance.getEntriesByType("resource").map(e=>e.name)});'
    "document.body.appendChild(p)})</script>"
)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("run", ["labelled", "unlabelled"])
def test_page_renders_in_headless_chromium(run: str, request, tmp_path: Path) -> None:
    from PIL import Image

    folder: Path = request.getfixturevalue(run)
    page = tmp_path / "report.html"
    shutil.copy(folder / "report.html", page)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    dom = _chromium("--window-size=1200,900", "--dump-dom", probe.as_uri(), profile=tmp_path / "u")
    found = re.search(r'<pre id="ek-probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-2000:]
    info = json.loads(found.group(1).replace("&quot;", '"'))
    assert info["res"] == [], info["res"]  # the page requested nothing at all
    assert info["imgs"] and all(natural > 0 for *_, natural in info["imgs"])  # each decoded
    shot = tmp_path / "shot.png"
    _chromium(f"--window-size=1200,{info['h']}", f"--screenshot={shot}", page.as_uri(),
              profile=tmp_path / "u")  # fmt: skip
    im = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert im.shape[0] >= info["h"] - 1
    for left, top, width, height, _ in info["imgs"]:
        region = im[int(top) : int(top + height), int(left) : int(left + width)]
        assert region.size and region.std() > 5, (left, top, width, height)
        assert (region < 200).mean() > 0.005  # ink, not a blank box


def test_deploy_writes_a_page_the_manifest_lists(cnn: Path, tmp_path: Path) -> None:
    from edgekit.deploy import deploy
    from edgekit.reports import rebuild

    b = deploy(cnn, "x86-avx2", tmp_path / "b", measure=False)
    page = b.path / "report.html"
    text = page.read_text()
    assert "report.html" in b.manifest["files"]  # a later deploy may replace the bundle
    assert "bundle for x86-avx2" in text and "Where each figure comes from" in text
    assert not _external_urls(text)
    before = page.read_bytes()
    assert rebuild(b.path).read_bytes() == before


def test_eval_html_and_report_of_its_json_agree(cnn: Path, tmp_path: Path) -> None:
    r = run_cli("eval", str(cnn), "--dataset", "digits", "--json", "--html",
                str(tmp_path / "eval.html"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    (tmp_path / "copy.json").write_text(r.stdout)
    text = (tmp_path / "eval.html").read_text()
    assert "accuracy" in text and len(_Page(text).imgs) == 1 and not _external_urls(text)
    assert run_cli("report", str(tmp_path / "copy.json")).returncode == 0
    assert (tmp_path / "copy.html").read_bytes() == (tmp_path / "eval.html").read_bytes()


def test_terminal_summary_has_the_verdict_and_the_page(labelled: Path) -> None:
    from rich.console import Console

    from edgekit.reports.summary import summary_table, verdict

    rep = json.loads((labelled / "report.json").read_text())
    con = Console(record=True, width=400)
    con.print(summary_table(rep, labelled / "report.html"))
    out = con.export_text()
    assert verdict(rep)[0] in out and str(labelled / "report.html") in out


def _complete(words: str) -> list[str]:
    """What bash completion offers for `words` (the last one being completed)."""
    env = {k: v for k, v in os.environ.items() if k != "EDGEKIT_PROFILE_PATH"}
    env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ")
               else 1)), _EDGEKIT_COMPLETE="bash_complete")  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "edgekit"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=60)  # fmt: skip
    return [ln.split(",", 1)[1] for ln in p.stdout.splitlines() if "," in ln]


def test_completion_lists_profiles_runtimes_and_commands(tmp_path: Path) -> None:
    from edgekit.profiles import list_profiles

    names = {p.name for p in list_profiles()}
    assert set(_complete("edgekit optimize m.keras --profile ")) == names
    assert set(_complete("edgekit deploy m.keras --profile ")) == names | {"auto"}
    x86 = _complete("edgekit optimize m.keras --profile x86")
    assert x86 and all(n.startswith("x86") for n in x86)
    from edgekit.runtimes import RUNTIMES

    assert set(_complete("edgekit bench m.onnx --runtime ")) == set(RUNTIMES)  # targets only
    assert "keras" in _complete("edgekit eval m.keras --runtime ")
    assert "report" in _complete("edgekit re")
    assert "--max-accuracy-drop" in _complete("edgekit optimize --max")
    # bench --device: the runtime devices and the SSH devices of the devices file
    devices = tmp_path / "devices.toml"
    devices.write_text('[devices.lab9]\nhost = "h"\nuser = "u"\nkey = "k"\nprofile = "rpi4"\n')
    offered = set(_complete(f"edgekit bench m.onnx --devices {devices} --device "))
    assert {"CPU", "GPU", "cuda", "lab9"} <= offered
