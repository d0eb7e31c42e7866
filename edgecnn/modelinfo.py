"""What a .tflite model is made of: its tensors (:class:`TensorInfo`), operator counts, whether the graph is fully
integer, and the description ``edgecnn info`` prints.

Works on any backend's interpreter through ``get_tensor_details()`` and ``_get_ops_details()`` (the latter is
private in the TFLite Python API but present in ai-edge-litert, tflite-runtime and tf.lite alike).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor of a model.

    Attributes:
        name: tensor name; index: interpreter tensor index.
        shape: e.g. (1, 224, 224, 3) NHWC.
        dtype: numpy dtype (uint8, int8, float32, ...).
        scale, zero_point: per-tensor quantization parameters; scale 0.0 means not quantized.
    """

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @classmethod
    def from_detail(cls, d: dict) -> "TensorInfo":
        """From an entry of ``Interpreter.get_input_details()`` / ``get_output_details()``."""
        scale, zp = d.get("quantization", (0.0, 0))
        return cls(str(d["name"]), int(d["index"]), tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]),
                   float(scale), int(zp))

    @property
    def quantized(self) -> bool:
        """True for an integer tensor with a quantization scale."""
        return self.scale > 0 and self.dtype.kind in "iu"

    def to_dict(self) -> dict:
        """JSON-ready description (shape, dtype, scale, zero_point)."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name,
                "scale": self.scale, "zero_point": self.zero_point}


#: Node name the interpreter gives a delegate (XNNPACK) partition; it stands for ops already listed.
DELEGATE = "DELEGATE"
#: Ops that only convert a float model interface to integers and back (a model with --io float32 has them).
IO_CONVERT_OPS = ("QUANTIZE", "DEQUANTIZE")


def _ops(interpreter) -> list[dict]:
    return [op for op in interpreter._get_ops_details() if op["op_name"] != DELEGATE]


def _float_tensors(interpreter) -> set[int]:
    return {d["index"] for d in interpreter.get_tensor_details() if np.dtype(d["dtype"]).kind == "f"}


def operator_counts(interpreter) -> dict[str, int]:
    """``{op name: count}`` over the model's main subgraph, most frequent first."""
    return dict(Counter(op["op_name"] for op in _ops(interpreter)).most_common())


def float_ops(interpreter) -> list[str]:
    """Names of operators that compute in floating point (sorted, unique).

    An op counts as float when one of its inputs or outputs is a float tensor, except QUANTIZE whose float input is
    a model input and DEQUANTIZE whose float output is a model output: those only convert a float interface.
    """
    floats = _float_tensors(interpreter)
    model_in = {d["index"] for d in interpreter.get_input_details()}
    model_out = {d["index"] for d in interpreter.get_output_details()}
    found = set()
    for op in _ops(interpreter):
        ins = [int(i) for i in op["inputs"] if int(i) >= 0]
        outs = [int(i) for i in op["outputs"] if int(i) >= 0]
        name = op["op_name"]
        if name == "QUANTIZE" and set(ins) <= model_in and not (set(outs) & floats):
            continue
        if name == "DEQUANTIZE" and set(outs) <= model_out and not (set(ins) & floats):
            continue
        if any(t in floats for t in ins + outs):
            found.add(name)
    return sorted(found)


#: Ops that pass a tensor's meaning through unchanged when looking for the op that made a model output.
_PASS_THROUGH = ("QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE")


def output_activation(interpreter, tensor_index: int) -> str | None:
    """Name of the op that makes tensor ``tensor_index``, looking through QUANTIZE/DEQUANTIZE/RESHAPE/SQUEEZE
    (e.g. "SOFTMAX" for a classifier ending in softmax, whatever its output dtype); None if no op makes it."""
    producer = {int(o): op for op in _ops(interpreter) for o in op["outputs"]}
    seen = set()
    while tensor_index in producer and tensor_index not in seen:
        seen.add(tensor_index)
        op = producer[tensor_index]
        if op["op_name"] not in _PASS_THROUGH or not len(op["inputs"]):
            return op["op_name"]
        tensor_index = int(op["inputs"][0])
    return None


def describe(classifier) -> dict:
    """JSON-ready description of a loaded :class:`edgecnn.runtime.Classifier` (what ``edgecnn info`` prints).

    Keys: model, size_bytes, backend {name, version}, threads, inputs/outputs (name, shape, dtype, scale,
    zero_point), operators {name: count}, fully_integer (bool), float_ops [names], metadata {source, entries,
    labels (count and first 10), preprocessing}.
    """
    it = classifier.interpreter
    f_ops = float_ops(it)
    labels = classifier.labels
    return {
        "model": str(classifier.path),
        "size_bytes": classifier.size_bytes,
        "backend": {"name": classifier.backend.name, "version": classifier.backend.version},
        "threads": classifier.threads,
        "inputs": [TensorInfo.from_detail(d).to_dict() for d in it.get_input_details()],
        "outputs": [TensorInfo.from_detail(d).to_dict() for d in it.get_output_details()],
        "operators": operator_counts(it),
        "fully_integer": not f_ops,
        "float_ops": f_ops,
        "metadata": {
            "source": classifier.metadata.source,
            "entries": classifier.metadata.entries,
            "num_labels": len(labels) if labels else 0,
            "labels_head": list(labels[:10]) if labels else [],
            "preprocessing": classifier.metadata.preprocessing,
        },
        "preprocessing": classifier.preprocessing.to_dict(),
    }
