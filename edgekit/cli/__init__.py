"""The `edgekit` command line: a thin layer that parses, calls the API and prints.

Each command lives in its own module and is imported only when it runs (or when
`--help` lists it), so `edgekit --help` loads no framework.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from edgekit import __version__
from edgekit.errors import EdgekitError

# name -> "module:attribute"; a new command is one module plus one line here.
COMMANDS: dict[str, str] = {
    "inspect": "edgekit.cli.inspect_cmd:inspect_command",
    "devices": "edgekit.cli.devices_cmd:devices_command",
    "profiles": "edgekit.cli.profiles_cmd:profiles_command",
    "targets": "edgekit.cli.targets_cmd:targets_command",
    "optimize": "edgekit.cli.optimize_cmd:optimize_command",
    "convert": "edgekit.cli.convert_cmd:convert_command",
    "deploy": "edgekit.cli.deploy_cmd:deploy_command",
    "run": "edgekit.cli.run_cmd:run_command",
    "bench": "edgekit.cli.bench_cmd:bench_command",
    "compare": "edgekit.cli.compare_cmd:compare_command",
    "train": "edgekit.cli.train_cmd:train_command",
    "eval": "edgekit.cli.eval_cmd:eval_command",
    "debug": "edgekit.cli.debug_cmd:debug_command",
    "report": "edgekit.cli.report_cmd:report_command",
    "sweep": "edgekit.cli.sweep_cmd:sweep_command",
    "tools": "edgekit.cli.tools_cmd:tools_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.option("--verbose", is_flag=True,
              help="Show the frameworks' own output (TensorFlow, NNCF, ...) too.")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """edgekit: optimize, verify, benchmark and deploy neural networks for edge hardware.

    Example: edgekit inspect model.tflite --json
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> None:
    """Make SIGTERM (kill, a CI timeout, a container stop) clean up as Ctrl-C does.

    Temp folders and locks are released by `finally` blocks, which run for a
    KeyboardInterrupt but not for Python's default SIGTERM, which ends the process at once.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def quiet_frameworks() -> None:
    """Keep TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) off the user's terminal;
    `edgekit.cli._quiet.quiet_output` keeps the rest of the frameworks' output off it."""
    from edgekit.cli._quiet import quiet_environment

    quiet_environment()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: maps edgekit errors to one sentence and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    _sigterm_as_interrupt()
    sys.unraisablehook = _keep_interrupts(sys.unraisablehook)
    from edgekit.cli._quiet import quiet_output

    verbose = "--verbose" in args or os.environ.get("EDGEKIT_VERBOSE") == "1"
    if not verbose:
        quiet_frameworks()
    try:
        with quiet_output(verbose):
            code = run(args)
            if code == 130:
                # An interrupt that cut a framework's import short leaves half-built objects
                # whose destructors complain at shutdown; the user asked to stop, not those.
                sys.unraisablehook = lambda _unraisable: None
    except KeyboardInterrupt:
        # The interrupt again, re-raised by _keep_interrupts' timer after `run` had already
        # handled it: uncaught, CPython would end the process by SIGINT (-2), not exit 130.
        code = 130
    finally:
        _ignore_signals_while_exiting()
    sys.exit(code)


def _keep_interrupts(hook: Any) -> Any:
    """An unraisable hook that does not let a Ctrl-C or SIGTERM be lost.

    When the signal lands inside a garbage-collector callback or a destructor (JAX's
    `_xla_gc_callback` during quantization, for one), CPython prints "Exception ignored"
    with a traceback and carries on, so the run finished as if never asked to stop. The
    interrupt is raised again in the main thread instead, from a timer thread a moment
    later (raised here, inside the hook, it would be swallowed again).
    """
    import _thread
    import threading

    def keep(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            timer = threading.Timer(0.05, _thread.interrupt_main)
            timer.daemon = True
            timer.start()
            return
        hook(unraisable)

    return keep


def _ignore_signals_while_exiting() -> None:
    """The work is done (or cleaned up): a SIGTERM or Ctrl-C now must not turn a finished
    run into death by signal. CPython's shutdown restores the default action for signals
    that have a Python handler, so without this a late SIGTERM kills the exiting process
    (-15); a late SIGINT (a pending _keep_interrupts timer included) would end it by -2."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run(args: list[str]) -> int:
    """Run the command line `args` in this process and return its exit code.

    Errors are printed as `main` prints them (an edgekit error as one sentence on
    stderr, exit 2; an interrupt as exit 130); unlike `main`, this installs no signal
    handler and does not exit, so tests and embedding programs can call it.
    """
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="edgekit", standalone_mode=False)
    except EdgekitError as exc:
        if debug:
            raise
        click.echo(f"edgekit: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("edgekit: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("edgekit: interrupted", err=True)
        return 130
    except Exception as exc:
        if debug or not _caused_by_interrupt(exc):
            raise
        click.echo("edgekit: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0


def _caused_by_interrupt(exc: BaseException) -> bool:
    """True when `exc` wraps a KeyboardInterrupt.

    An interrupt that lands inside a C extension can come back wrapped (CPython's
    "SystemError: ... returned a result with an exception set", or a library's
    `raise ... from`); it is still the user's Ctrl-C or SIGTERM, not a bug.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False
