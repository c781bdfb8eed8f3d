"""Find the node that breaks a conversion: the first diverging node, and the smallest failing subgraph.

`first_divergence(source, result, feeds)` runs every intermediate value of an
ONNX source and of its result (ONNX or OpenVINO IR, matched by the ONNX names
the converter keeps) on the same inputs, and returns the first node, in
topological order, whose output is beyond tolerance. `reduce(model, to, out)`
bisects the source graph to the smallest subgraph whose conversion still fails
and saves it; it lives in `edgekit.debug.bisect`, imported on its own, because
it runs conversions while `edgekit.convert` uses this package to name the node.

Example::

    from edgekit.debug import first_divergence
    d = first_divergence("model.onnx", "model.xml")
    print(d.sentence() if d else "no node diverges")
"""

from __future__ import annotations

from edgekit.debug.diverge import Divergence, first_divergence

__all__ = ["Divergence", "first_divergence"]
