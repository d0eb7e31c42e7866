"""The layers of a .tflite read from the file itself: operators in order with output shapes, quantization,
parameters and MACs; intermediate tensors of one invoke; weights dequantized with per-channel scales.

Operators come from ``Interpreter._get_ops_details()`` and tensors from ``get_tensor_details()``; both exist in
ai-edge-litert, tflite-runtime and tf.lite. Quantized values are dequantized as ``scale * (q - zero_point)``
(TFLite quantization spec, https://ai.google.dev/edge/litert/models/quantization_spec). No TensorFlow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import flatbuffers
import numpy as np

from edgecnn.errors import ModelError
from edgecnn.metadata import TFLITE_IDENTIFIER, tflite_schema
from edgecnn.modelinfo import op_tensors, operators
from edgecnn.preprocess import dequantize

#: Operators whose parameters are their weight tensors: {op name: input positions of the weights and bias}.
#: Positions from the TFLite builtin operator definitions (lite/kernels/conv.cc, depthwise_conv.cc,
#: fully_connected.cc, transpose_conv.cc).
WEIGHT_INPUTS = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2), "TRANSPOSE_CONV": (1, 3)}
#: Integer dtypes of constant inputs that are shapes, axes or paddings rather than learned parameters.
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


# ----------------------------------------------------------------------------------------------- layer table
@dataclass(frozen=True)
class Layer:
    """One operator of the model's main subgraph.

    Attributes:
        index: operator index in execution order.
        op: builtin operator name, e.g. "CONV_2D".
        inputs: tensor indices of its non-constant inputs (activations).
        output: tensor index of its (first) output; shape, dtype, scale, zero_point describe that tensor
            (scale 0.0: not quantized).
        params: number of parameters (weights + bias of convolutions and fully connected layers; other ops:
            their constant float/int8 inputs, not shape or axis vectors; so float16 weights behind a DEQUANTIZE
            count on the DEQUANTIZE's row).
        macs: multiply-accumulates per image (see :func:`op_macs`).
        weights: tensor index of the weight (filter) tensor, or -1.
    """

    index: int
    op: str
    inputs: tuple[int, ...]
    output: int
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int
    params: int
    macs: int
    weights: int = -1

    @property
    def spatial(self) -> bool:
        """True for an NHWC output with more than one pixel (a feature map)."""
        return len(self.shape) == 4 and self.shape[1] * self.shape[2] > 1

    def to_dict(self, total_macs: int = 0) -> dict:
        """JSON-ready row; ``share`` is this op's fraction of ``total_macs`` (0..1)."""
        return {"index": self.index, "op": self.op, "output_shape": list(self.shape), "dtype": self.dtype,
                "scale": self.scale, "zero_point": self.zero_point, "params": self.params, "macs": self.macs,
                "share": (self.macs / total_macs) if total_macs else 0.0}


def op_macs(op: str, out_shape: tuple[int, ...], in_shape: tuple[int, ...], weight_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates per image of one operator, from tensor shapes.

    CONV_2D (filter (out_c, kh, kw, in_c)): ``out_h*out_w*out_c*kh*kw*in_c``; DEPTHWISE_CONV_2D (filter
    (1, kh, kw, out_c)): ``out_h*out_w*out_c*kh*kw``; FULLY_CONNECTED (weights (units, in)): ``in*units`` per row;
    TRANSPOSE_CONV: ``in_h*in_w*kh*kw*in_c*out_c``. The same rules as ``edgecnn.train.model.layer_costs`` on the Keras
    side. Other operators count 0 (pooling, adds and activations do no multiply-accumulates).
    """
    if op not in WEIGHT_INPUTS or not weight_shape:
        return 0
    kernel = int(np.prod(weight_shape))
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(out_shape) == 4:
        return out_shape[1] * out_shape[2] * kernel
    if op == "TRANSPOSE_CONV" and len(in_shape) == 4:
        return in_shape[1] * in_shape[2] * kernel
    if op == "FULLY_CONNECTED":
        rows = int(np.prod(out_shape[1:-1])) if len(out_shape) >= 3 else 1
        return rows * kernel
    return 0


def _params(op: str, consts: list[tuple[int, int]], details: dict) -> int:
    """Parameters of one op from its constant inputs [(position, tensor index)]."""
    if op in WEIGHT_INPUTS:
        keep = WEIGHT_INPUTS[op]
        return sum(int(np.prod(details[t]["shape"])) for pos, t in consts if pos in keep)
    return sum(int(np.prod(details[t]["shape"])) for _, t in consts
               if np.dtype(details[t]["dtype"]) not in _INDEX_DTYPES)


def layer_table(interpreter) -> list[Layer]:
    """Every operator of the model in execution order with its output, parameters and MACs.

    A tensor counts as constant when no operator produces it and it is not a model input
    (:func:`edgecnn.modelinfo.op_tensors`).

    Args:
        interpreter: any backend's Interpreter, tensors allocated.
    Returns:
        one :class:`Layer` per operator.
    """
    details = {int(d["index"]): d for d in interpreter.get_tensor_details()}
    activations, _ = op_tensors(interpreter)
    rows = []
    for op in operators(interpreter):
        name = op["op_name"]
        ins = [(pos, int(t)) for pos, t in enumerate(op["inputs"]) if int(t) >= 0]
        consts = [(pos, t) for pos, t in ins if t not in activations]
        acts = tuple(t for pos, t in ins if (pos, t) not in consts)
        out = int(op["outputs"][0])
        d = details[out]
        shape = tuple(int(x) for x in d["shape"])
        weights = next((t for pos, t in ins if name in WEIGHT_INPUTS and pos == 1), -1)  # may come from a DEQUANTIZE
        w_shape = tuple(int(x) for x in details[weights]["shape"]) if weights >= 0 else ()
        in_shape = tuple(int(x) for x in details[acts[0]]["shape"]) if acts else ()
        scale, zp = d.get("quantization", (0.0, 0))
        rows.append(Layer(int(op["index"]), name, acts, out, shape, np.dtype(d["dtype"]).name, float(scale),
                          int(zp), _params(name, consts, details), op_macs(name, shape, in_shape, w_shape),
                          weights))
    return rows


def totals(layers: list[Layer]) -> dict:
    """``{"params": int, "macs": int}`` summed over the layers."""
    return {"params": sum(x.params for x in layers), "macs": sum(x.macs for x in layers)}


# ----------------------------------------------------------------------------------------------- activations
def open_debug_interpreter(backend, model: bytes, threads: int = 1, options: dict | None = None):
    """An interpreter that keeps every intermediate tensor after invoke, on the builtin kernels so no delegate
    fuses operators and hides their outputs.

    Args:
        backend: an :class:`edgecnn.runtime.Backend`.
        model: the .tflite file's bytes.
        options: the classifier's ``interpreter_options`` (its op resolver replaces the default one here).
    Returns:
        the Interpreter, tensors allocated.
    Raises:
        ModelError: this backend's Interpreter has no ``experimental_preserve_all_tensors`` option
            (tflite-runtime before 2.5); the message names the backend and what to install.
    """
    kwargs = {"experimental_preserve_all_tensors": True}
    resolver = backend.op_resolver
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    kwargs.update(options or {})
    try:
        with warnings.catch_warnings():  # the "for debugging purposes only" notice: that is what this is for
            warnings.simplefilter("ignore", UserWarning)
            it = backend.interpreter_class(model_content=model, num_threads=threads, **kwargs)
    except TypeError:
        raise ModelError(f"{backend.name} {backend.version} cannot keep intermediate tensors "
                         f"(no experimental_preserve_all_tensors); install ai-edge-litert or tflite-runtime>=2.5 "
                         f"for feature maps") from None
    it.allocate_tensors()
    return it


def read_tensor(interpreter, index: int) -> np.ndarray:
    """Tensor ``index`` as float32, dequantized with its per-tensor scale/zero_point when quantized."""
    d = next(x for x in interpreter.get_tensor_details() if int(x["index"]) == index)
    q = interpreter.get_tensor(index)
    scale, zp = d.get("quantization", (0.0, 0))
    if scale and np.dtype(d["dtype"]).kind in "iu":
        return dequantize(q, scale, zp)
    return np.asarray(q, dtype=np.float32)


def activations(interpreter, input_index: int, tensor: np.ndarray, indices: list[int]) -> dict[int, np.ndarray]:
    """Invoke once on ``tensor`` and read the listed tensors, dequantized.

    Args:
        interpreter: from :func:`open_debug_interpreter`.
        input_index: the model input's tensor index; tensor: the input tensor (shape and dtype of the input).
        indices: tensor indices to read.
    Returns:
        {tensor index: float32 array of the tensor's shape}.
    """
    interpreter.set_tensor(input_index, tensor)
    interpreter.invoke()
    return {i: read_tensor(interpreter, i) for i in indices}


# ----------------------------------------------------------------------------------------------- filters
def dequantize_weights(q: np.ndarray, detail: dict) -> np.ndarray:
    """Weights -> float32 using per-channel scales when the tensor has them (``quantization_parameters``:
    ``scales``, ``zero_points``, ``quantized_dimension``), else the per-tensor pair; a float tensor is returned
    as it is."""
    q = np.asarray(q)
    if q.dtype.kind == "f":
        return q.astype(np.float32)
    qp = detail.get("quantization_parameters") or {}
    scales = np.asarray(qp.get("scales", []), dtype=np.float64)
    if scales.size > 1:
        axis = int(qp.get("quantized_dimension", 0))
        shape = [1] * q.ndim
        shape[axis] = scales.size
        zps = np.asarray(qp.get("zero_points", np.zeros(scales.size)), dtype=np.int64).reshape(shape)
        return (scales.reshape(shape) * (q.astype(np.int64) - zps)).astype(np.float32)
    scale, zp = detail.get("quantization", (0.0, 0))
    if not scale:
        return q.astype(np.float32)
    return dequantize(q, scale, zp)


def first_conv_filters(interpreter, layers: list[Layer]) -> tuple[Layer, np.ndarray] | None:
    """The first CONV_2D's kernels, dequantized.

    Returns:
        (its :class:`Layer`, (out_c, kh, kw, in_c) float32), or None when the model has no CONV_2D.
    """
    layer = next((x for x in layers if x.op == "CONV_2D" and x.weights >= 0), None)
    if layer is None:
        return None
    detail = next(d for d in interpreter.get_tensor_details() if int(d["index"]) == layer.weights)
    return layer, dequantize_weights(interpreter.get_tensor(layer.weights), detail)


def with_outputs(model: bytes, tensors: list[int]) -> bytes:
    """A copy of the model whose main subgraph also outputs ``tensors`` (after its own outputs, which keep their
    order), so that an interpreter on its default kernels (XNNPACK fuses the whole graph) can read them after
    invoke. Interpreter tensor indices are the main subgraph's tensor indices in the file.

    Args:
        model: the .tflite bytes; tensors: tensor indices to add.
    Returns:
        the new model's bytes (anything appended after the flatbuffer, such as a TFLite Support zip, is dropped).
    Raises:
        ImportError: no generated TFLite schema (ai-edge-litert or TensorFlow) is installed.
    """
    schema = tflite_schema()
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sg = m.subgraphs[0]
    sg.outputs = [*[int(t) for t in sg.outputs], *[int(t) for t in tensors]]
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())
