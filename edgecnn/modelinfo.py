"""What a .tflite model is made of: its tensors (:class:`TensorInfo`), operator counts, whether the graph is fully
integer, and the description ``edgecnn info`` prints.

Works on any backend's interpreter through ``get_tensor_details()`` and ``_get_ops_details()`` (the latter is
private in the TFLite Python API but present in ai-edge-litert, tflite-runtime and tf.lite alike).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np

from edgecnn.metadata import root_table


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


def operators(interpreter) -> list[dict]:
    """The main subgraph's operators in execution order: ``_get_ops_details()`` without delegate partitions."""
    return [op for op in interpreter._get_ops_details() if op["op_name"] != DELEGATE]


def _float_tensors(interpreter) -> set[int]:
    return {d["index"] for d in interpreter.get_tensor_details() if np.dtype(d["dtype"]).kind == "f"}


def operator_counts(interpreter) -> dict[str, int]:
    """``{op name: count}`` over the model's main subgraph, most frequent first."""
    return dict(Counter(op["op_name"] for op in operators(interpreter)).most_common())


def float_ops(interpreter) -> list[str]:
    """Names of operators that compute in floating point (sorted, unique).

    An op counts as float when one of its inputs or outputs is a float tensor, except QUANTIZE whose float input is
    a model input and DEQUANTIZE whose float output is a model output: those only convert a float interface.
    """
    floats = _float_tensors(interpreter)
    model_in = {d["index"] for d in interpreter.get_input_details()}
    model_out = {d["index"] for d in interpreter.get_output_details()}
    found = set()
    for op in operators(interpreter):
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


def output_producer(interpreter, tensor_index: int) -> dict | None:
    """The op that makes tensor ``tensor_index``, looking through QUANTIZE/DEQUANTIZE/RESHAPE/SQUEEZE: an entry
    of ``_get_ops_details()`` (e.g. the SOFTMAX of a classifier, whatever its output dtype), or None."""
    producer = {int(o): op for op in operators(interpreter) for o in op["outputs"]}
    seen = set()
    while tensor_index in producer and tensor_index not in seen:
        seen.add(tensor_index)
        op = producer[tensor_index]
        if op["op_name"] not in _PASS_THROUGH or not len(op["inputs"]):
            return op
        tensor_index = int(op["inputs"][0])
    return None


def output_activation(interpreter, tensor_index: int) -> str | None:
    """Name of the op that makes tensor ``tensor_index`` (see :func:`output_producer`), or None."""
    op = output_producer(interpreter, tensor_index)
    return op["op_name"] if op is not None else None


def _scores_meaning(classifier) -> str:
    if not classifier.binary:
        return f"{classifier.num_classes} classes"
    made_by = f", made by {classifier.output_producer}" if classifier.output_producer else ""
    return f"binary: one output{made_by}, read as P(class 1) -> [1 - p, p]"


def describe(classifier) -> dict:
    """JSON-ready description of a loaded :class:`edgecnn.runtime.Classifier` (what ``edgecnn info`` prints).

    Keys: model, size_bytes, backend {name, version, kernels}, threads, inputs/outputs (name, shape, dtype, scale,
    zero_point), operators {name: count}, fully_integer (bool), float_ops [names], quantization (one of
    :data:`QUANTIZATION_KINDS`), scores (what the output means), metadata {source, entries,
    labels (count and first 10), preprocessing}.
    """
    it = classifier.interpreter
    f_ops = float_ops(it)
    labels = classifier.labels
    return {
        "model": str(classifier.path),
        "size_bytes": classifier.size_bytes,
        "backend": {"name": classifier.backend.name, "version": classifier.backend.version,
                    "kernels": classifier.kernels},
        "threads": classifier.threads,
        "inputs": [TensorInfo.from_detail(d).to_dict() for d in it.get_input_details()],
        "outputs": [TensorInfo.from_detail(d).to_dict() for d in it.get_output_details()],
        "operators": operator_counts(it),
        "fully_integer": not f_ops,
        "float_ops": f_ops,
        "quantization": quantization_kind(it),
        "scores": _scores_meaning(classifier),
        "metadata": {
            "source": classifier.metadata.source,
            "entries": classifier.metadata.entries,
            "num_labels": len(labels) if labels else 0,
            "labels_head": list(labels[:10]) if labels else [],
            "preprocessing": classifier.metadata.preprocessing,
        },
        "preprocessing": classifier.preprocessing.to_dict(),
    }


# ----------------------------------------------------------------------------------------------- custom ops
#: Prefix of the custom-op names the TFLite converter gives Select TensorFlow ops (``SELECT_TF_OPS``).
FLEX_PREFIX = "Flex"


def custom_ops(data: bytes) -> list[str]:
    """Names of the custom operators a .tflite declares (``Model.operator_codes[].custom_code``), sorted, unique.

    Read from the flatbuffer itself (TFLite ``schema.fbs``: Model.operator_codes = field 1, OperatorCode.custom_code
    = field 1), so it works on a model the interpreter refuses to load. Select TensorFlow ops appear as
    ``Flex<TF op name>`` (e.g. ``FlexErf``). An unreadable flatbuffer gives an empty list.
    """
    try:
        return sorted({c.string(1) for c in root_table(bytearray(data)).tables(1) if c.string(1)})
    except (IndexError, ValueError, TypeError, AssertionError, struct.error):
        return []


# ----------------------------------------------------------------------------------------------- quantization
#: Names :func:`quantization_kind` gives, for messages and ``--help``.
QUANTIZATION_KINDS = ("int8", "uint8", "int16x8", "float16 weights", "dynamic-range", "int8 with float ops", "float32")


def op_tensors(interpreter) -> tuple[set[int], set[int]]:
    """Split the main subgraph's tensors by role: the one home of that rule (quantization kind, layer table).

    Returns:
        (activations: tensor indices some op writes plus the model inputs, constants: op inputs nothing writes,
        i.e. weights, biases, shapes).
    """
    ops = operators(interpreter)
    written = {int(t) for op in ops for t in op["outputs"] if int(t) >= 0}
    activations = written | {d["index"] for d in interpreter.get_input_details()}
    read = {int(t) for op in ops for t in op["inputs"] if int(t) >= 0}
    return activations, read - activations


def biasless_per_channel_dense(interpreter) -> list[str]:
    """FULLY_CONNECTED operators with per-channel-quantized integer weights and no bias input: their output
    tensors' names, in execution order (empty when there are none).

    The TFLite converter leaves the bias out of a Keras ``Dense(use_bias=False)`` and of a Dense layer whose bias is
    all zeros (an untrained one), and quantizes Dense weights per output channel (one scale per row).
    """
    tensors = {int(d["index"]): d for d in interpreter.get_tensor_details()}
    found = []
    for op in operators(interpreter):
        ins = [int(t) for t in op["inputs"]]
        if op["op_name"] != "FULLY_CONNECTED" or len(ins) < 2 or (len(ins) > 2 and ins[2] >= 0):
            continue
        weights = tensors.get(ins[1])
        scales = weights.get("quantization_parameters", {}).get("scales") if weights else None
        if weights and np.dtype(weights["dtype"]).kind in "iu" and scales is not None and len(scales) > 1:
            out = tensors.get(int(op["outputs"][0]))
            found.append(str(out["name"]) if out else f"operator {op['index']}")
    return found


def _quantized(detail: dict) -> bool:
    """A tensor with quantization parameters: a per-tensor scale, or per-channel scales (``quantization`` is then
    (0.0, 0) and the scales are in ``quantization_parameters``)."""
    scale = detail.get("quantization", (0.0, 0))[0]
    scales = detail.get("quantization_parameters", {}).get("scales")
    return bool(scale and scale > 0) or (scales is not None and len(scales) > 0)


def quantization_kind(interpreter) -> str:
    """How a model is quantized, named from its tensors (one of :data:`QUANTIZATION_KINDS`).

    Activations are the tensors an op writes (plus the model inputs); constants are op inputs nothing writes
    (weights, biases). Interface QUANTIZE/DEQUANTIZE ops around a float input/output do not count (see
    :func:`float_ops`).

    * no float op: ``int16x8`` when an activation is int16 (16-bit activations, 8-bit weights), else ``int8``
      when an activation inside the graph is int8, else ``uint8`` (the older uint8 quantization);
    * float ops and integer activations as well: ``int8 with float ops`` (a partly integer graph);
    * float ops only: ``float16 weights`` when a constant is float16, ``dynamic-range`` when a constant is a
      quantized int8 (weights stored int8, activations float), else ``float32``.

    Source: the post-training quantization modes of the TFLite converter
    (https://ai.google.dev/edge/litert/models/post_training_quantization).
    """
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    activations, constants = op_tensors(interpreter)

    def dtypes(indices, quantized_only=False):
        out = set()
        for i in indices:
            d = details.get(i)
            if d is None:
                continue
            if not quantized_only or _quantized(d):
                out.add(np.dtype(d["dtype"]).name)
        return out

    io = {d["index"] for d in interpreter.get_input_details()} | {d["index"] for d in interpreter.get_output_details()}
    act = dtypes(activations, quantized_only=True)
    inner = dtypes(activations - io, quantized_only=True)
    if not float_ops(interpreter):
        if "int16" in act:
            return "int16x8"
        return "int8" if "int8" in (inner or act) else "uint8"
    if act & {"int8", "uint8", "int16"} and inner:
        return "int8 with float ops"
    consts = dtypes(constants)
    if "float16" in consts:
        return "float16 weights"
    if dtypes(constants, quantized_only=True) & {"int8", "uint8"}:
        return "dynamic-range"
    return "float32"
