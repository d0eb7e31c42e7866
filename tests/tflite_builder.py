"""Build small .tflite models directly as flatbuffers (no TensorFlow, a few ms each).

The models are the layouts a converter emits for image classifiers and for models that only look like one:
input (1, H, W, C) / (1, H, W) of float32, uint8, int8 or int16 -> RESHAPE to (1, H*W*C) -> FULLY_CONNECTED
to N scores (float weights, int8 weights for full-integer or dynamic-range models, float16 weights behind a
DEQUANTIZE) -> optional SOFTMAX / LOGISTIC -> RESHAPE to the requested output shape; any number of outputs; an
optional custom op (e.g. a Select-TensorFlow "Flex" op). Field numbers follow TFLite's ``schema.fbs``; the object
API is the generated schema shipped in ``ai_edge_litert``.

Quantization follows the TFLite quantization spec: int8 activations asymmetric, int8 weights symmetric
(zero_point 0), int32 bias with scale input_scale * weight_scale; 16x8: int16 activations with zero_point 0 and
int64 bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_NP_TO_TFL = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7, "int8": 9}
#: Quantization used for an activation of each dtype (scale, zero_point): the pixel range 0..255 for the input.
_ACT_Q = {"uint8": (1.0, 0), "int8": (1.0, -128), "int16": (255 / 32767, 0)}
_SCORE_Q = {"uint8": (1 / 256, 0), "int8": (1 / 256, -128), "int16": (1 / 32768, 0)}


def _schema():
    """The generated TFLite schema (ai-edge-litert or TensorFlow); the calling test skips where neither is installed
    (tflite-runtime on 32-bit Arm ships none)."""
    import pytest

    from edgecnn.metadata import tflite_schema

    try:
        return tflite_schema()
    except ImportError:
        pytest.skip("building a .tflite needs the generated TFLite schema (ai-edge-litert or TensorFlow)")


@dataclass
class Spec:
    """What to build.

    Attributes:
        in_shape: input shape, e.g. (1, 8, 8, 3) or (1, 8, 8).
        in_dtype: float32, uint8, int8 or int16 (int16 makes a 16x8 model).
        in_quantized: give an integer input quantization parameters (False: scale 0, raw bytes).
        classes: scores per output (N).
        out_shapes: shape of each output (its size must be ``classes``); several shapes = several outputs.
        out_dtype: float32 or the activation dtype (int8/uint8/int16); "int32" makes an unquantized int32 output.
        activation: None, "softmax" or "sigmoid".
        weights: "float32", "int8" (full-integer or dynamic-range with a float input), "float16".
        custom_op: name of a custom op to put before the outputs (e.g. "FlexErf"), or None.
        dynamic_batch: record the input's batch dimension as unknown (shape_signature -1), as converters do for
            models saved with a None batch.
        dynamic_hw: record the input's height and width as unknown (shape_signature -1), as converters do for
            ``keras.Input(shape=(None, None, 3))``.
        seed: weight seed.
    """

    in_shape: tuple = (1, 8, 8, 3)
    in_dtype: str = "float32"
    in_quantized: bool = True
    classes: int = 3
    out_shapes: list = field(default_factory=lambda: [(1, 3)])
    out_dtype: str = "float32"
    activation: str | None = "softmax"
    weights: str = "float32"
    custom_op: str | None = None
    dynamic_batch: bool = False
    dynamic_hw: bool = False
    seed: int = 0


class _Graph:
    def __init__(self):
        s = _schema()
        self.s = s
        self.tensors, self.buffers, self.ops, self.opcodes = [], [s.BufferT()], [], []

    def buffer(self, array: np.ndarray | None) -> int:
        b = self.s.BufferT()
        if array is not None:
            b.data = list(np.ascontiguousarray(array).tobytes())
        self.buffers.append(b)
        return len(self.buffers) - 1

    def tensor(self, name, shape, dtype, q=None, data=None) -> int:
        t = self.s.TensorT()
        t.name, t.shape, t.type = name, list(shape), _NP_TO_TFL[dtype]
        t.buffer = self.buffer(data) if data is not None else 0
        if q is not None:
            qp = self.s.QuantizationParametersT()
            qp.scale, qp.zeroPoint = [float(q[0])], [int(q[1])]
            t.quantization = qp
        self.tensors.append(t)
        return len(self.tensors) - 1

    def opcode(self, builtin: int, custom: str | None = None) -> int:
        key = (builtin, custom)
        for i, oc in enumerate(self.opcodes):
            if (oc.builtinCode, oc.customCode) == key:
                return i
        oc = self.s.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.customCode, oc.version = builtin, min(builtin, 127), custom, 1
        self.opcodes.append(oc)
        return len(self.opcodes) - 1

    def op(self, builtin: int, inputs, outputs, options=None, options_type=0, custom=None) -> None:
        o = self.s.OperatorT()
        o.opcodeIndex = self.opcode(builtin, custom)
        o.inputs, o.outputs = list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.ops.append(o)

    def reshape(self, src: int, shape, dtype, q, name) -> int:
        s = self.s
        shp = self.tensor(f"{name}_shape", (len(shape),), "int32", data=np.asarray(shape, np.int32))
        out = self.tensor(name, shape, dtype, q)
        opt = s.ReshapeOptionsT()
        opt.newShape = list(shape)
        self.op(s.BuiltinOperator.RESHAPE, [src, shp], [out], opt, s.BuiltinOptions.ReshapeOptions)
        return out

    def finish(self, inputs, outputs) -> bytes:
        import flatbuffers

        s = self.s
        sg = s.SubGraphT()
        sg.tensors, sg.inputs, sg.outputs, sg.operators, sg.name = self.tensors, inputs, outputs, self.ops, "main"
        m = s.ModelT()
        m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, self.opcodes, [sg], self.buffers
        m.description = "tests.tflite_builder"
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def build(spec: Spec) -> bytes:
    """The .tflite bytes of ``spec`` (see :class:`Spec`)."""
    g = _Graph()
    s = g.s
    rng = np.random.default_rng(spec.seed)
    n_in = int(np.prod(spec.in_shape))
    integer = spec.in_dtype != "float32"
    in_q = _ACT_Q[spec.in_dtype] if integer and spec.in_quantized else (0.0, 0) if integer else None
    x = g.tensor("image", spec.in_shape, spec.in_dtype, in_q)
    if spec.dynamic_batch or spec.dynamic_hw:
        sig = list(spec.in_shape)
        if spec.dynamic_batch:
            sig[0] = -1
        if spec.dynamic_hw:
            sig[1:3] = [-1, -1]
        g.tensors[x].shapeSignature = sig
    flat = g.reshape(x, (1, n_in), spec.in_dtype, in_q, "flat")
    w_real = rng.uniform(-1, 1, (spec.classes, n_in)).astype(np.float32)
    if integer:  # full-integer FULLY_CONNECTED: int8 symmetric weights, bias at input_scale * weight_scale
        w_scale = float(np.abs(w_real).max() / 127)
        w = g.tensor("w", w_real.shape, "int8", (w_scale, 0), np.round(w_real / w_scale).astype(np.int8))
        acc_scale = (in_q[0] or 1.0) * w_scale
        bias_dtype = "int64" if spec.in_dtype == "int16" else "int32"
        bias = g.tensor("b", (spec.classes,), bias_dtype, (acc_scale, 0), np.zeros(spec.classes, bias_dtype))
        span = 255.0 * n_in * 1.0  # worst-case |logit|, scaled so the logits fill the activation range
        act = spec.in_dtype
        lq = (span / {"int8": 127, "uint8": 255, "int16": 32767}[act] / 40, 0 if act == "int16" else
              (-128 if act == "int8" else 128))
        logits = g.tensor("logits", (1, spec.classes), act, lq)
    else:
        if spec.weights == "float16":
            w16 = g.tensor("w16", w_real.shape, "float16", data=(w_real / n_in).astype(np.float16))
            w = g.tensor("w", w_real.shape, "float32")
            g.op(s.BuiltinOperator.DEQUANTIZE, [w16], [w])
        elif spec.weights == "int8":  # dynamic range: float activations, int8 weights
            w_scale = float(np.abs(w_real).max() / 127 / n_in)
            w = g.tensor("w", w_real.shape, "int8", (w_scale, 0),
                         np.round(w_real / n_in / w_scale).astype(np.int8))
        else:
            w = g.tensor("w", w_real.shape, "float32", data=w_real / n_in)
        bias = g.tensor("b", (spec.classes,), "float32", data=np.zeros(spec.classes, np.float32))
        act = "float32"
        lq = None
        logits = g.tensor("logits", (1, spec.classes), "float32")
    fc = s.FullyConnectedOptionsT()
    fc.asymmetricQuantizeInputs = spec.weights == "int8" and not integer
    g.op(s.BuiltinOperator.FULLY_CONNECTED, [flat, w, bias], [logits], fc, s.BuiltinOptions.FullyConnectedOptions)
    scores = logits
    if spec.activation is not None:
        sq = _SCORE_Q[act] if integer else None
        scores = g.tensor("scores", (1, spec.classes), act, sq)
        if spec.activation == "softmax":
            opt = s.SoftmaxOptionsT()
            opt.beta = 1.0
            g.op(s.BuiltinOperator.SOFTMAX, [logits], [scores], opt, s.BuiltinOptions.SoftmaxOptions)
        else:
            g.op(s.BuiltinOperator.LOGISTIC, [logits], [scores])
    if spec.custom_op:
        out = g.tensor("custom_out", (1, spec.classes), act, g.tensors[scores].quantization and
                       (g.tensors[scores].quantization.scale[0], g.tensors[scores].quantization.zeroPoint[0]))
        g.op(s.BuiltinOperator.CUSTOM, [scores], [out], custom=spec.custom_op)
        scores = out
    cur_q = g.tensors[scores].quantization
    cur_q = (cur_q.scale[0], cur_q.zeroPoint[0]) if cur_q else None
    if spec.out_dtype != act:  # interface conversion, as the converter adds for --io float32
        conv = g.tensor("scores_io", (1, spec.classes), spec.out_dtype,
                        None if spec.out_dtype in ("float32", "int32") else _SCORE_Q[spec.out_dtype])
        code = (s.BuiltinOperator.DEQUANTIZE if spec.out_dtype == "float32" else s.BuiltinOperator.CAST
                if spec.out_dtype == "int32" else s.BuiltinOperator.QUANTIZE)
        g.op(code, [scores], [conv])
        scores, cur_q = conv, (None if spec.out_dtype in ("float32", "int32") else _SCORE_Q[spec.out_dtype])
    outputs = []
    for i, shape in enumerate(spec.out_shapes):
        if int(np.prod(shape)) == spec.classes and tuple(shape) != (1, spec.classes):
            outputs.append(g.reshape(scores, shape, spec.out_dtype, cur_q, f"out{i}"))
        elif tuple(shape) == (1, spec.classes) and i == 0:
            outputs.append(scores)
        else:  # an output of another size: a zero-filled constant (boxes, counts, ...) through a RESHAPE
            c = g.tensor(f"const{i}", (int(np.prod(shape)),), "float32",
                         data=np.zeros(int(np.prod(shape)), np.float32))
            outputs.append(g.reshape(c, shape, "float32", None, f"out{i}"))
    return g.finish([x], outputs)
