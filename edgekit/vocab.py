"""The vocabulary edgekit's choices are made from: formats, precisions, architectures, dtypes.

One home for each list: profile validation, CLI choices, help texts and error
hints are generated from these, so a new name is added here once. A leaf module
(standard library only), cheap to import from anywhere.
"""

from __future__ import annotations

import platform
from enum import StrEnum

__all__ = [
    "ARCHES",
    "DTYPES",
    "FLOAT_PRECISIONS",
    "FORMAT_NAMES",
    "INFERENCE_PRECISIONS",
    "INFERENCE_PRECISION_NAMES",
    "INTEGER_PRECISIONS",
    "PRECISIONS",
    "PROFILE_FORMATS",
    "REFERENCE_RUNTIMES",
    "RUNTIME_FORMATS",
    "Format",
    "Precision",
    "normalize_arch",
]


class Format(StrEnum):
    """The model formats edgekit reads."""

    KERAS = "keras"
    SAVEDMODEL = "savedmodel"
    TFLITE = "tflite"
    ONNX = "onnx"
    OPENVINO = "openvino"
    TORCH = "torch"  # .pt2 ExportedPrograms and TorchScript archives
    EXECUTORCH = "executorch"  # .pte programs (ExecuTorch's flatbuffer)


FORMAT_NAMES = [f.value for f in Format]

# The formats a profile may name as its target: the ones a runtime on a device loads.
PROFILE_FORMATS = (Format.TFLITE.value, Format.ONNX.value, Format.OPENVINO.value,
                   Format.EXECUTORCH.value)  # fmt: skip


class Precision(StrEnum):
    """Numeric precisions a model can be converted or quantized to."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"
    INT8_FLOAT_FALLBACK = "int8-float-fallback"  # int8 where possible, float ops elsewhere
    DYNAMIC = "dynamic"  # int8 weights, activations quantized at run time
    INT16X8 = "int16x8"  # int16 activations, int8 weights

    @property
    def is_float(self) -> bool:
        """Weights and activations stay floating point (no calibration needed)."""
        return self in FLOAT_PRECISIONS

    @property
    def is_integer(self) -> bool:
        """Some tensors become integers (quantization)."""
        return not self.is_float


FLOAT_PRECISIONS = frozenset({Precision.FP32, Precision.FP16, Precision.BF16})
INTEGER_PRECISIONS = frozenset(p for p in Precision if p not in FLOAT_PRECISIONS)

# The precisions a profile may list, in the order they are shown (bf16 is a runtime compute
# precision: `target.inference_precision`).
PRECISIONS = ("int8", "int8-float-fallback", "dynamic", "fp16", "int16x8", "fp32")

# What a runtime computes an fp32 model in (OpenVINO's INFERENCE_PRECISION_HINT spelling),
# and the precision each is reported as: bf16 and f16 are candidates `optimize` tries where
# a profile lists them under `target.inference_precision`.
INFERENCE_PRECISIONS = ("f32", "bf16", "f16")
INFERENCE_PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}

ARCHES = ("x86_64", "aarch64", "armv7", "armv7m", "armv8m", "riscv64")

# platform.machine() spellings -> the arch names profiles use.
_ARCH_ALIASES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "x86_64": "x86_64",
    "arm64": "aarch64",
    "aarch64": "aarch64",
    "armv7l": "armv7",
    "armv7": "armv7",
    "armhf": "armv7",
    "riscv64": "riscv64",
}


def normalize_arch(machine: str | None = None) -> str:
    """The profile arch name for a `platform.machine()` spelling (this machine's when None)."""
    name = (platform.machine() if machine is None else machine).lower()
    return _ARCH_ALIASES.get(name, name)


# numpy dtype names a profile may ask for at a model's inputs and outputs.
DTYPES = ("float32", "float16", "int8", "uint8", "int16")

# Which model formats each runtime loads. The runtime classes in edgekit/runtimes/
# declare the same in their `formats` (tests/test_vocab.py holds them equal).
RUNTIME_FORMATS: dict[str, tuple[str, ...]] = {
    "litert": ("tflite",),
    "onnxruntime": ("onnx",),
    "openvino": ("openvino", "onnx", "tflite", "savedmodel"),
    "tflite-micro": ("tflite",),
    "torch": ("torch",),
    "executorch": ("executorch",),
    # References run a model in its own framework for parity checks; no profile names them.
    "keras": ("keras",),
    "tensorflow": ("savedmodel",),
    "onnx-reference": ("onnx",),
}
REFERENCE_RUNTIMES = ("keras", "tensorflow", "onnx-reference")
