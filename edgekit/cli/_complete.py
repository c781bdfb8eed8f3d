"""Shell completion of profile, runtime and device names (click's `shell_complete=` callbacks).

Both read data only (the profile TOMLs, the runtime registry), never a framework, so a
Tab press stays fast. Enable completion with the line for your shell in the README.
"""

from __future__ import annotations

from typing import Any

from click.shell_completion import CompletionItem


def complete_profile(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Profile names that start with what was typed (and `auto` where deploy takes it)."""
    from edgekit.errors import EdgekitError
    from edgekit.profiles import list_profiles

    try:
        names = [p.name for p in list_profiles()]
    except EdgekitError:  # a broken user profile must not break the shell
        names = []
    if ctx.command.name == "deploy":
        names.append("auto")
    return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]


def complete_runtime(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Runtime names that start with what was typed: the targets, and for eval (which
    scores a model on its own framework too) the reference runtimes as well."""
    from edgekit.runtimes import REFERENCE_RUNTIMES, RUNTIMES

    # data only: no runtime module is imported
    names = {*RUNTIMES, *REFERENCE_RUNTIMES} if ctx.command.name == "eval" else set(RUNTIMES)
    return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]


def complete_bench_device(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """`bench --device`: the runtime devices, and the SSH devices of the devices file."""
    from edgekit.errors import EdgekitError
    from edgekit.runtimes import runtime_devices

    names = set(runtime_devices())
    try:
        from edgekit.remote.devices import load_devices

        names |= set(load_devices(ctx.params.get("devices_file")))
    except EdgekitError:  # no devices file, or a broken one: the runtime devices still complete
        pass
    return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]
