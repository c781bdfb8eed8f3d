"""One vocabulary: the tables that profiles, runtimes and formats each declare agree."""

from __future__ import annotations

import pytest

from edgekit.formats import READERS
from edgekit.runtimes import RUNTIMES, get_runtime
from edgekit.vocab import (
    FLOAT_PRECISIONS,
    FORMAT_NAMES,
    INTEGER_PRECISIONS,
    PRECISIONS,
    PROFILE_FORMATS,
    RUNTIME_FORMATS,
    Precision,
    normalize_arch,
)


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_profile_runtime_formats_match_the_runtime_classes(runtime: str) -> None:
    from edgekit import profiles

    assert profiles.RUNTIME_FORMATS is RUNTIME_FORMATS
    assert set(RUNTIME_FORMATS[runtime]) == set(get_runtime(runtime).formats)


def test_every_host_runtime_is_in_the_table() -> None:
    assert set(RUNTIMES) <= set(RUNTIME_FORMATS)
    for formats in RUNTIME_FORMATS.values():
        assert set(formats) <= set(FORMAT_NAMES)
    assert set(PROFILE_FORMATS) <= set(FORMAT_NAMES)


def test_every_format_has_one_reader() -> None:
    assert set(READERS) == set(FORMAT_NAMES)


def test_precisions_are_float_or_integer_exactly_once() -> None:
    assert FLOAT_PRECISIONS | INTEGER_PRECISIONS == set(Precision)
    assert not FLOAT_PRECISIONS & INTEGER_PRECISIONS
    assert set(PRECISIONS) <= {p.value for p in Precision}
    assert Precision("fp16").is_float and Precision("int16x8").is_integer
    assert Precision("int8-float-fallback").is_integer and not Precision("bf16").is_integer


@pytest.mark.parametrize(
    ("machine", "arch"),
    [("AMD64", "x86_64"), ("x86_64", "x86_64"), ("arm64", "aarch64"), ("armv7l", "armv7"),
     ("riscv64", "riscv64"), ("mips", "mips")],
)  # fmt: skip
def test_normalize_arch(machine: str, arch: str) -> None:
    assert normalize_arch(machine) == arch


def test_normalize_arch_defaults_to_this_machine() -> None:
    import platform

    assert normalize_arch() == normalize_arch(platform.machine())


def test_reference_runtimes_are_the_reference_only_classes() -> None:
    from edgekit.profile_schema import RUNTIMES as PROFILE_RUNTIMES
    from edgekit.runtimes import REFERENCE_RUNTIMES as REFERENCE_TABLE
    from edgekit.vocab import REFERENCE_RUNTIMES

    assert set(REFERENCE_RUNTIMES) == set(REFERENCE_TABLE)
    assert all(get_runtime(n).reference_only for n in REFERENCE_TABLE)
    assert not any(get_runtime(n).reference_only for n in RUNTIMES)
    assert not set(REFERENCE_RUNTIMES) & set(PROFILE_RUNTIMES)
