"""ONNX -> PyTorch (onnx2torch) -> TFLite (litert-torch), run inside the onnx2torch tool env.

This file is a program of its own: the tool environment's python runs it, without
edgekit on its path (edgekit's pins are not in that venv), so it imports nothing from
edgekit. Arguments and results pass through files:

    python onnx2torch_tflite.py MODEL.onnx SAMPLE.npz OUT.tflite

SAMPLE.npz holds one array per data input of the model (by input name, in the model's
own layout), used to trace the module. The .tflite keeps the ONNX model's layout (NCHW
stays NCHW). On failure the last line on stderr says why, and the exit code is 1.
"""

from __future__ import annotations

import sys


def convert(onnx_path: str, sample_path: str, out_path: str) -> None:
    """Convert the ONNX file to a .tflite traced on the sample arrays."""
    import litert_torch
    import numpy as np
    import onnx
    import onnx2torch
    import torch

    model = onnx.load(onnx_path)
    module = onnx2torch.convert(model).eval()
    with np.load(sample_path, allow_pickle=False) as npz:
        feeds = {k: npz[k] for k in npz.files}
    # onnx2torch's module takes the graph's data inputs positionally, in graph order.
    init = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in init]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise SystemExit(f"the sample has no array for input(s) {', '.join(missing)}")
    args = tuple(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names)
    with torch.no_grad():
        litert_torch.convert(module, args).export(out_path)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: onnx2torch_tflite.py MODEL.onnx SAMPLE.npz OUT.tflite", file=sys.stderr)
        return 2
    try:
        convert(*argv)
    except Exception as exc:  # the caller reads this line as the reason; a file is its result
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:400]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
