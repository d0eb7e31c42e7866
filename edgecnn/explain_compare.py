"""Float vs int8, layer by layer: how far each int8 activation is from the float model's, on one image.

Both models run on interpreters that keep every tensor (:func:`edgecnn.explain.open_debug_interpreter`); the float
model gets the real values the int8 model's input stands for (its input dequantized), so both see the same image.
No TensorFlow: a float ``.keras`` model is converted to a float ``.tflite`` on the workstation side first.

Pairing: the operators of both graphs, without QUANTIZE/DEQUANTIZE (they only convert an interface), are matched in
execution order by (op name, output shape) as the longest common subsequence (``difflib.SequenceMatcher``), so an
op present in one graph only (e.g. a RESHAPE the converter kept in one) does not shift every later pair. The int8
and float .tflite files of one Keras model have the same operators in the same order after the converter folds
BatchNorm and activations into convolutions in both.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from edgecnn.layers import Layer, layer_table, read_tensor
from edgecnn.modelinfo import IO_CONVERT_OPS
from edgecnn.preprocess import dequantize


@dataclass(frozen=True)
class LayerError:
    """How far one int8 activation is from the float one.

    Attributes:
        int8, float: the paired :class:`edgecnn.explain.Layer` of each model.
        rmse: root mean square of (int8 dequantized - float), in the tensor's real units.
        rel_rmse: rmse / (float max - float min), the error as a fraction of the float tensor's range (0: exact).
        cosine: cosine similarity of the flattened tensors (1: same direction; 1.0 when both are all zero).
        max_abs: largest absolute difference, real units.
        float_range: (min, max) of the float tensor.
    """

    int8: Layer
    float: Layer
    rmse: float
    rel_rmse: float
    cosine: float
    max_abs: float
    float_range: tuple[float, float]

    def to_dict(self) -> dict:
        """JSON-ready row."""
        return {"int8_layer": self.int8.index, "float_layer": self.float.index, "op": self.int8.op,
                "shape": list(self.int8.shape), "rmse": self.rmse, "rel_rmse": self.rel_rmse, "cosine": self.cosine,
                "max_abs": self.max_abs, "float_min": self.float_range[0], "float_max": self.float_range[1]}


def error_stats(q: np.ndarray, f: np.ndarray) -> tuple[float, float, float, float]:
    """(rmse, rmse relative to f's range, cosine similarity, max |q - f|) of two same-shaped float arrays.

    The relative RMSE of a constant float tensor (range 0) is 0.0 when the RMSE is 0, else infinity.
    Raises:
        ValueError: shapes differ.
    """
    if q.shape != f.shape:
        raise ValueError(f"shapes {q.shape} and {f.shape} differ")
    a, b = np.asarray(q, np.float64).ravel(), np.asarray(f, np.float64).ravel()
    diff = a - b
    rmse = float(np.sqrt(np.mean(diff * diff))) if diff.size else 0.0
    span = float(b.max() - b.min()) if b.size else 0.0
    rel = rmse / span if span > 0 else (0.0 if rmse == 0 else float("inf"))
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cosine = 1.0 if na == nb == 0 else (float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0)
    return rmse, rel, cosine, float(np.abs(diff).max()) if diff.size else 0.0


def pair_layers(int8: list[Layer], flt: list[Layer]) -> list[tuple[Layer, Layer]]:
    """Match the two graphs' operators (see the module docstring). Returns [(int8 layer, float layer)] in order."""
    a = [x for x in int8 if x.op not in IO_CONVERT_OPS]
    b = [x for x in flt if x.op not in IO_CONVERT_OPS]
    key = lambda x: (x.op, tuple(x.shape[1:]))  # noqa: E731
    matcher = difflib.SequenceMatcher(a=[key(x) for x in a], b=[key(x) for x in b], autojunk=False)
    return [(a[m.a + k], b[m.b + k]) for m in matcher.get_matching_blocks() for k in range(m.size)]


def float_input(tensor: np.ndarray, detail: dict) -> np.ndarray:
    """The int8 model's input tensor as the real values it stands for: dequantized when quantized, float32."""
    scale, zp = detail.get("quantization", (0.0, 0))
    if scale and np.dtype(detail["dtype"]).kind in "iu":
        return dequantize(tensor, scale, zp)
    return np.asarray(tensor, np.float32)


def compare(int8_it, float_it, tensor: np.ndarray) -> tuple[list[LayerError], int, int]:
    """Invoke both models on one image and measure every paired activation, worst first.

    Args:
        int8_it, float_it: interpreters that keep all tensors, allocated.
        tensor: the int8 model's input tensor (its shape and dtype).
    Returns:
        (errors sorted by rel_rmse descending, operators paired, operators of the int8 graph without
        QUANTIZE/DEQUANTIZE).
    Raises:
        ValueError: the two models' inputs have different shapes.
    """
    qin, fin = int8_it.get_input_details()[0], float_it.get_input_details()[0]
    if tuple(qin["shape"]) != tuple(fin["shape"]):
        raise ValueError(f"float model input {tuple(fin['shape'])} differs from the int8 model's "
                         f"{tuple(qin['shape'])}")
    int8_it.set_tensor(int(qin["index"]), tensor)
    int8_it.invoke()
    float_it.set_tensor(int(fin["index"]), float_input(tensor, qin).astype(np.dtype(fin["dtype"])))
    float_it.invoke()
    int8_layers = layer_table(int8_it)
    pairs = pair_layers(int8_layers, layer_table(float_it))
    rows = []
    for q, f in pairs:
        fv = read_tensor(float_it, f.output)
        stats = error_stats(read_tensor(int8_it, q.output), fv)
        rows.append(LayerError(q, f, *stats, (float(fv.min()), float(fv.max()))))
    rows.sort(key=lambda r: -r.rel_rmse)
    return rows, len(pairs), sum(1 for x in int8_layers if x.op not in IO_CONVERT_OPS)
