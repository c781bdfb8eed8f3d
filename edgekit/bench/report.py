"""The benchmark Report: one JSON record of one measurement, with a versioned schema.

`Report` wraps the dict that is written to disk; `load_report` reads one back,
refusing any file that does not validate against `edgekit/schemas/report.schema.json`
with one sentence that names the field.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from edgekit.errors import ReportError

SCHEMA_VERSION = 1


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema that every report of SCHEMA_VERSION satisfies."""
    text = resources.files("edgekit").joinpath("schemas/report.schema.json").read_text()
    return json.loads(text)


def _field_path(err: Any) -> str:
    parts = [str(p) for p in err.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def validate_report(data: Any, source: str = "report") -> dict[str, Any]:
    """Check `data` against the schema; raise ReportError naming the version or field."""
    if not isinstance(data, dict):
        raise ReportError(f"{source}: is not a JSON object, so it is not an edgekit report")
    original = data
    version = data.get("schema_version")
    if version is None:
        raise ReportError(
            f"{source}: has no schema_version, so it is not an edgekit report "
            f"(this edgekit reads schema_version {SCHEMA_VERSION})"
        )
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReportError(
            f"{source}: schema_version {version!r} is unknown; this edgekit reads "
            f"schema_version {SCHEMA_VERSION}"
        )
    if version < SCHEMA_VERSION:
        raise ReportError(
            f"{source}: schema_version {version} is older than the supported "
            f"schema_version {SCHEMA_VERSION}; re-run `edgekit bench` to make a new report"
        )
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"{source}: schema_version {version} is newer than the supported "
            f"schema_version {SCHEMA_VERSION}; upgrade edgekit to read it"
        )
    import jsonschema

    samples = data.get("samples_ns")
    if isinstance(samples, list) and len(samples) > 1:
        # raw samples run to millions: check them here in one pass (same rule as the
        # schema: non-negative integers), and let jsonschema see only the first
        for i, x in enumerate(samples):
            if type(x) is not int or x < 0:
                raise ReportError(
                    f"{source}: field samples_ns.{i} is invalid: {x!r} is not a "
                    "non-negative integer number of nanoseconds"
                )
        data = {**data, "samples_ns": samples[:1]}
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        msg = err.message if len(err.message) < 120 else err.message[:117] + "..."
        raise ReportError(f"{source}: field {_field_path(err)} is invalid: {msg}{more}")
    return original


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a report JSON; ReportError with one sentence when it is not usable."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ReportError(f"{p}: no such report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{p}: cannot be read ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{p}: is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise ReportError(f"{p}: JSON nested too deeply to be an edgekit report") from None
    return validate_report(data, str(p))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON to a temp file in the same folder, then rename it into place."""
    from edgekit.outputs import atomic_write_text

    return atomic_write_text(path, json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n")


class Report:
    """One benchmark measurement. `to_dict()` is exactly what `save()` writes."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def load(cls, path: str | os.PathLike) -> Report:
        return cls(load_report(path))

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def validate(self) -> Report:
        validate_report(self.data, "report")
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Validate, then write atomically (temp file, rename)."""
        self.validate()
        return write_json_atomic(path, self.data)

    @property
    def latency_ms(self) -> dict[str, Any]:
        return self.data["latency_ms"]

    @property
    def throughput(self) -> dict[str, Any] | None:
        return self.data.get("throughput")

    @property
    def samples_ns(self) -> list[int]:
        return self.data["samples_ns"]

    @property
    def warnings(self) -> list[str]:
        return self.data.get("warnings", [])

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __repr__(self) -> str:
        lat = self.data.get("latency_ms", {})
        return (
            f"Report({self.data.get('model', {}).get('path')!s}, "
            f"{self.data.get('runtime', {}).get('name')}, median={lat.get('median', 0):.4g} ms, "
            f"n={lat.get('n')})"
        )
