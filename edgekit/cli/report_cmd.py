"""`edgekit report`: rebuild report.html from a run's JSON record alone."""

from __future__ import annotations

import click


@click.command("report")
@click.argument("path", type=click.Path())
@click.option("--open", "open_page", is_flag=True, help="Open the page in the web browser.")
def report_command(path: str, open_page: bool) -> None:
    """Regenerate report.html from the JSON an optimize, deploy or eval run wrote.

    PATH is an optimize output folder (report.json), a deploy bundle (manifest.json) or
    a file from `edgekit eval --json`. No model is run: a report copied off another
    machine gives the same page, byte for byte.

    Example: edgekit report opt/ --open
    """
    from edgekit.reports import rebuild

    page = rebuild(path)
    click.echo(str(page))
    if open_page:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())
