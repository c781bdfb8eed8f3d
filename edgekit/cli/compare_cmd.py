"""`edgekit compare`."""

from __future__ import annotations

import click

from edgekit.cli.params import SEED


@click.command("compare")
@click.argument("reports", nargs=-1, required=True, type=click.Path())
@click.option(
    "--baseline",
    type=click.Path(),
    help="The report others are compared with (default: the first).",
)
@click.option(
    "--threshold",
    default="5%",
    show_default=True,
    help="Smallest slowdown that counts (5% or 0.05).",
)
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when any pair regressed.")
@click.option(
    "--allow-mismatch", is_flag=True, help="Compare reports measured under different conditions."
)
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json", "html"]), default="table",
              show_default=True)  # fmt: skip
@click.option("--out", type=click.Path(), help="Write the output to this file instead of stdout.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the bootstrap.")
def compare_command(
    reports: tuple[str, ...],
    baseline: str | None,
    threshold: str,
    fail_on_regression: bool,
    allow_mismatch: bool,
    fmt: str,
    out: str | None,
    seed: int,
) -> None:
    """Compare benchmark reports: median ratios with CIs, a significance test, a verdict.

    Reports are aligned by model and runtime; each is compared with the
    baseline. A regression is significant (Mann-Whitney U, Holm-corrected)
    AND its whole confidence interval lies beyond --threshold. Reports made
    under different conditions (model hash, runtime version, device,
    threads, CPU) are refused unless --allow-mismatch. Never re-runs a model.

    Example: edgekit compare old.json new.json --threshold 5% --fail-on-regression
    """
    from edgekit.bench.compare import compare
    from edgekit.errors import RegressionDetected

    result = compare(
        list(reports),
        baseline=baseline,
        threshold=threshold,
        allow_mismatch=allow_mismatch,
        seed=seed,
    )
    if fmt == "table":
        text = None
        _print_table(result, out)
    elif fmt == "markdown":
        from edgekit.bench.compare import to_markdown

        text = to_markdown(result)
    elif fmt == "json":
        import json

        text = json.dumps(result.to_dict(), indent=2)
    else:
        from edgekit.bench.html import to_html

        text = to_html(result)
    if text is not None:
        if out:
            _write(out, text)
            click.echo(f"wrote {out}", err=True)
        else:
            click.echo(text, nl=False)
    if fail_on_regression and result.regressions:
        worst = max(result.regressions, key=lambda p: p.median_ratio)
        raise RegressionDetected(
            f"{len(result.regressions)} of {len(result.pairs)} comparisons regressed; worst: "
            f"{worst.candidate} is {worst.median_ratio:.2f}x {worst.baseline} "
            f"(95% CI {worst.ci_low:.2f}-{worst.ci_high:.2f}, threshold {result.threshold:.0%})"
        )


def _write(path: str, text: str) -> None:
    from edgekit.outputs import atomic_write_text

    atomic_write_text(path, text)


def _print_table(result: object, out: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from edgekit.bench.compare import headers, rows, timing_notes

    console = Console(highlight=False, record=out is not None)
    if out or not console.is_terminal:
        console.width = max(console.width, 160)
    for p in result.pairs:  # type: ignore[attr-defined]
        if p.mismatches:
            console.print(f"[bold white on red] MISMATCH [/] {p.baseline} vs {p.candidate}: "
                          f"{', '.join(p.mismatches)}")  # fmt: skip
    table = Table(
        title=f"threshold {result.threshold:.0%}, α={result.alpha}, ratio = candidate/baseline"
    )  # type: ignore[attr-defined]
    for h in headers(result):  # type: ignore[arg-type]
        table.add_column(h)
    for p, row in zip(result.pairs, rows(result), strict=True):  # type: ignore[attr-defined]
        style = {"regression": "bold red", "improvement": "green"}.get(p.verdict)
        table.add_row(*row, style=style)
    console.print(table)
    for note in timing_notes(result):  # type: ignore[arg-type]
        console.print(f"timings: {note}")
    if result.unpaired:  # type: ignore[attr-defined]
        console.print(f"not compared (no partner): {', '.join(result.unpaired)}")  # type: ignore[attr-defined]
    if out:
        _write(out, console.export_text())
