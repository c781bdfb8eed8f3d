"""Property: whatever number a user types into any option, edgekit exits 0 or 2, shows no
traceback, and ends in bounded time.

The numeric options are enumerated from the click command tree itself (so a new option
is covered without touching this file), plus the options whose text holds numbers
(`--input-shape`, `--threshold`). Values are drawn from every family a user can mistype:
negative, zero, huge (up to 2^70), floats where a whole number is wanted, NaN, inf,
junk text, and values inside the option's declared range.

- `test_any_number_is_parsed_or_refused` covers every option of every command at parse
  time, in-process: a value is either refused (exit 2, one sentence) or arrives in the
  command finite and inside its range.
- `test_bench_runs_or_refuses_any_number` and `test_compare_runs_or_refuses_any_number`
  run the real command on a real model (`hello_world_float.tflite` from ../shared/models)
  with short time limits; in-range draws for them come from the cheap end of each range
  (a steady state of a second is not what this test is about).

CI: derandomized, `EXAMPLES` per test. Campaign: `EDGEKIT_FUZZ_EXAMPLES=10000`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgekit.cli.params import Number, OptionValueError, Warmup
from tests.test_bounds import commands, invoke, is_numeric

DEFAULT_EXAMPLES = 200
EXAMPLES = int(os.environ.get("EDGEKIT_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
CAMPAIGN = EXAMPLES > DEFAULT_EXAMPLES
RUN_SECONDS = 60.0  # a real run with --max-time 0.2 ends long before this, or it is a hang
HELLO_INPUT = "serving_default_dense_input:0"


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=not CAMPAIGN,
        deadline=None,  # the bound is asserted per case, with the time it took in the message
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


SPECIAL = ["nan", "NaN", "inf", "-inf", "+inf", "1e999", "-1e999", "-0", "0", "1", "-1",
           "0.5", "1.5", "1e3", "0x10", "1_000", "", " ", "  7 ", "one", "1,5", "5%",
           "99999999999999999999", str(2**63), str(2**64), str(-(2**63) - 1), "4.0"]  # fmt: skip


def mistyped() -> st.SearchStrategy[str]:
    """Numbers as a careless or hostile user types them, as text."""
    return st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.floats(-1e6, 1e6).map(lambda x: f"{x:g}"),
        st.sampled_from(SPECIAL),
    )


def in_range(t: click.ParamType, cheap: bool) -> st.SearchStrategy[str]:
    """Values inside `t`'s declared range; `cheap` keeps to the end that runs fast."""
    if isinstance(t, Warmup):
        top_runs, top_s = (200, 0.2) if cheap else (t.runs.high, t.seconds.high)
        return st.one_of(
            st.integers(0, top_runs).map(str),
            st.floats(0, top_s).map(lambda x: f"{x}s"),
        )
    if not isinstance(t, Number):
        return st.integers(-5, 30).map(str)  # an undeclared int (convert --opset)
    low, high, _ = t.bounds(None)
    assert low is not None
    if t.kind is int:
        top = high if high is not None else low + 10**6
        if cheap:
            top = min(top, low + 2)  # --processes 64 or --min-runs 10^6 are slow, not wrong
        return st.integers(int(low), int(top)).map(str)
    top = high if high is not None else 1e6
    if cheap:
        top = min(top, 0.3)
    return st.floats(low, top, exclude_min=t.low_open, exclude_max=t.high_open and top == high).map(
        repr
    )


def values(t: click.ParamType, cheap: bool = False) -> st.SearchStrategy[str]:
    return st.one_of(mistyped(), in_range(t, cheap))


def base_argv(cmd: click.Command) -> list[str]:
    """The least a command needs to parse: each required argument or option, filled in."""
    argv: list[str] = []
    for p in cmd.params:
        if not p.required:
            continue
        if isinstance(p.type, click.Choice):
            value = str(p.type.choices[0])
        elif isinstance(p.type, click.Path) and p.type.exists:
            value = __file__
        else:
            value = "x"
        if isinstance(p, click.Option):
            argv += [max(p.opts, key=len), value]
        else:
            argv += [value] * (2 if p.nargs == -1 else 1)
    return argv


NUMERIC = [
    (name, cmd, p) for name, cmd in commands() for p in cmd.params if is_numeric(p)
]  # fmt: skip


def test_the_tree_has_the_numeric_options_we_know_of() -> None:
    """The enumeration finds options; if it found none, the property would test nothing."""
    found = {f"{name} {max(p.opts, key=len)}" for name, _, p in NUMERIC}
    assert {"bench --threads", "bench --seed", "bench --processes", "train --dropout",
            "optimize --prune", "compare --seed", "eval --batch-size"} <= found  # fmt: skip
    assert len(found) >= 25, sorted(found)


def _assert_refused(name: str, argv: list[str]) -> None:
    code, out, err = invoke(*name.split(), *argv)
    assert code == 2, (argv, code, err)
    assert "Traceback" not in out + err


@fuzz_settings(EXAMPLES * 2 if not CAMPAIGN else EXAMPLES)
@given(data=st.data())
def test_any_number_is_parsed_or_refused(data: st.DataObject) -> None:
    name, cmd, p = data.draw(st.sampled_from(NUMERIC), label="option")
    opt = max(p.opts, key=len)
    value = data.draw(values(p.type), label="value")
    argv = [*base_argv(cmd), opt, value]
    started = time.monotonic()
    try:
        ctx = cmd.make_context(name, list(argv))
    except OptionValueError:
        event("refused by its range")
        code, out, err = invoke(*name.split(), *argv)
        assert code == 2 and "Traceback" not in out + err, (argv, err)
        lines = [ln for ln in err.splitlines() if ln.startswith("edgekit: error:")]
        assert len(lines) == 1 and opt in lines[0], (argv, err)
        return
    except click.UsageError:
        event("refused by click")
        _assert_refused(name, argv)
        return
    finally:
        assert time.monotonic() - started < 5, argv
    event("accepted")
    got = ctx.params[p.name]
    assert isinstance(got, (int, float)) and not isinstance(got, bool), (argv, got)
    assert math.isfinite(got), (argv, got)
    if isinstance(p.type, Number):
        low, high, _ = p.type.bounds(ctx)
        assert low is None or got >= low, (argv, got)
        assert high is None or got <= high, (argv, got)
    else:
        # only convert --opset, issue 16's, whose range that work declares
        # (test_bounds.test_every_numeric_option_declares_its_range keeps the list at that)
        event("accepted, range not declared here")


def _check_run(argv: list[str], started: float, out_file: Path | None = None) -> int:
    code, out, err = invoke(*argv)
    took = time.monotonic() - started
    assert took < RUN_SECONDS, (argv, took)
    assert code in (0, 2), (argv, code, err[-3000:])
    assert "Traceback" not in out + err, (argv, err[-3000:])
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.startswith("edgekit: error:")]
        assert len(lines) == 1, (argv, err[-3000:])
        event("exit 2")
    else:
        event("exit 0")
        if out_file is not None:
            assert json.loads(out_file.read_text())["schema_version"] == 1
    return code


BENCH_FAST = ["--min-time", "0", "--min-runs", "1", "--max-time", "0.2", "--warmup", "0"]


@pytest.fixture(scope="module")
def hello(shared_models: Path) -> Path:
    return shared_models / "hello_world_float.tflite"


def _shape_text() -> st.SearchStrategy[str]:
    dims = st.lists(st.one_of(st.integers(-3, 3), st.integers(-(2**70), 2**70)), max_size=4)
    return st.one_of(
        dims.map(lambda d: f"{HELLO_INPUT}=" + ",".join(map(str, d))),
        st.tuples(st.sampled_from(["x", HELLO_INPUT]), mistyped()).map("=".join),
        mistyped(),
    )


def _slow_but_valid(p: click.Parameter, value: str) -> bool:
    """A mistyped-looking draw can be a valid long run (`--warmup 300.0` warms up for 5
    minutes, as asked): such a run is bounded by what was asked, not by RUN_SECONDS."""
    try:
        got = p.type.convert(value, p, None)
    except OptionValueError:
        return False
    if isinstance(p.type, Warmup):
        return got > (200 if isinstance(got, int) else 0.3)
    return p.name == "processes" and got > 3


@fuzz_settings(EXAMPLES // 2 if not CAMPAIGN else EXAMPLES)
@given(data=st.data())
def test_bench_runs_or_refuses_any_number(hello: Path, tmp_path_factory, data) -> None:
    bench = next(cmd for name, cmd in commands() if name == "bench")
    params = [p for p in bench.params if is_numeric(p)] + ["--input-shape"]
    p = data.draw(st.sampled_from(params), label="option")
    if p == "--input-shape":
        opt, value = p, data.draw(_shape_text(), label="value")
    else:
        opt, value = max(p.opts, key=len), data.draw(values(p.type, cheap=True), label="value")
    if p != "--input-shape" and _slow_but_valid(p, value):
        event("in range, too slow to run here (the parse test covers it)")
        return
    out = tmp_path_factory.mktemp("bench") / "r.json"
    argv = ["bench", str(hello), *BENCH_FAST, "--quiet", "--out", str(out), opt, value]
    _check_run(argv, time.monotonic(), out)


@pytest.fixture(scope="module")
def two_reports(hello: Path, tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("reports")
    paths = [str(folder / f"r{i}.json") for i in range(2)]
    for path in paths:
        code, _, err = invoke("bench", str(hello), *BENCH_FAST, "--quiet", "--out", path)
        assert code == 0, err
    return paths


@fuzz_settings(EXAMPLES // 4 if not CAMPAIGN else EXAMPLES)
@given(data=st.data())
def test_compare_runs_or_refuses_any_number(two_reports: list[str], data) -> None:
    compare = next(cmd for name, cmd in commands() if name == "compare")
    params = [p for p in compare.params if is_numeric(p)] + ["--threshold"]
    p = data.draw(st.sampled_from(params), label="option")
    if p == "--threshold":
        opt = p
        value = data.draw(st.one_of(mistyped(), mistyped().map(lambda v: v + "%")), label="value")
    else:
        opt, value = max(p.opts, key=len), data.draw(values(p.type, cheap=True), label="value")
    _check_run(["compare", *two_reports, "--format", "json", opt, value], time.monotonic())
