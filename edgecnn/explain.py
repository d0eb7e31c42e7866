"""What an image classifier .tflite computes, read from the deployed file itself (no TensorFlow).

Pure computations over an interpreter and numpy arrays; drawing lives in :mod:`edgecnn.explain_images`, the page in
:mod:`edgecnn.explain_html`.

- :func:`layer_table`: each operator in order with its output shape, output quantization, parameters and MACs.
- :func:`open_debug_interpreter` + :func:`activations`: every intermediate tensor of one invoke, dequantized.
- :func:`strongest_channels`: the order feature-map channels are shown in.
- :func:`first_conv_filters`: the first convolution's kernels, dequantized with their per-channel scales.
- :func:`occlusion_map`: how much the predicted class's score drops when a grey patch hides each region.

Operators come from ``Interpreter._get_ops_details()`` and tensors from ``get_tensor_details()``; both exist in
ai-edge-litert, tflite-runtime and tf.lite. Quantized values are dequantized as ``scale * (q - zero_point)``
(TFLite quantization spec, https://ai.google.dev/edge/litert/models/quantization_spec).
"""

from __future__ import annotations

import importlib
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.modelinfo import DELEGATE
from edgecnn.preprocess import dequantize, to_pixels

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
            their constant float/int8 inputs, not shape or axis vectors).
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
    TRANSPOSE_CONV: ``in_h*in_w*kh*kw*in_c*out_c``. The same rules as ``edgecnn.model.layer_costs`` on the Keras
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


def operators(interpreter) -> list[dict]:
    """The main subgraph's operators in execution order (``_get_ops_details()`` without delegate partitions)."""
    return [op for op in interpreter._get_ops_details() if op["op_name"] != DELEGATE]


def _params(op: str, consts: list[tuple[int, int]], details: dict) -> int:
    """Parameters of one op from its constant inputs [(position, tensor index)]."""
    if op in WEIGHT_INPUTS:
        keep = WEIGHT_INPUTS[op]
        return sum(int(np.prod(details[t]["shape"])) for pos, t in consts if pos in keep)
    return sum(int(np.prod(details[t]["shape"])) for _, t in consts
               if np.dtype(details[t]["dtype"]) not in _INDEX_DTYPES)


def layer_table(interpreter) -> list[Layer]:
    """Every operator of the model in execution order with its output, parameters and MACs.

    A tensor counts as constant when no operator produces it and it is not a model input.

    Args:
        interpreter: any backend's Interpreter, tensors allocated.
    Returns:
        one :class:`Layer` per operator.
    """
    details = {int(d["index"]): d for d in interpreter.get_tensor_details()}
    ops = operators(interpreter)
    produced = {int(t) for op in ops for t in op["outputs"]}
    model_inputs = {int(d["index"]) for d in interpreter.get_input_details()}
    rows = []
    for op in ops:
        name = op["op_name"]
        ins = [(pos, int(t)) for pos, t in enumerate(op["inputs"]) if int(t) >= 0]
        consts = [(pos, t) for pos, t in ins if t not in produced and t not in model_inputs]
        acts = tuple(t for pos, t in ins if (pos, t) not in consts)
        out = int(op["outputs"][0])
        d = details[out]
        shape = tuple(int(x) for x in d["shape"])
        weights = next((t for pos, t in consts if name in WEIGHT_INPUTS and pos == 1), -1)
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
def open_debug_interpreter(backend, model: bytes, threads: int = 1):
    """An interpreter that keeps every intermediate tensor after invoke, on the reference (builtin) kernels so no
    delegate fuses operators and hides their outputs.

    Args:
        backend: an :class:`edgecnn.runtime.Backend`.
        model: the .tflite file's bytes.
    Returns:
        the Interpreter, tensors allocated.
    Raises:
        ModelError: this backend's Interpreter has no ``experimental_preserve_all_tensors`` option
            (tflite-runtime before 2.5); the message names the backend and what to install.
    """
    module = importlib.import_module(backend.interpreter_class.__module__)
    kwargs = {"experimental_preserve_all_tensors": True}
    resolver = getattr(module, "OpResolverType", None)
    if resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
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


def strongest_channels(fmap: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Channel order for display: the ``limit`` channels with the largest mean |activation|, strongest first.

    Args:
        fmap: (H, W, C) float32.
        limit: at most this many channels (>= 1).
    Returns:
        (indices (k,) int, strengths (k,) float32 mean |activation|), ties keep the lower channel first.
    """
    strength = np.abs(fmap.astype(np.float64)).mean(axis=(0, 1))
    order = np.argsort(-strength, kind="stable")[:max(1, int(limit))]
    return order, strength[order].astype(np.float32)


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


# ----------------------------------------------------------------------------------------------- occlusion
@dataclass(frozen=True)
class Occlusion:
    """Result of :func:`occlusion_map`.

    Attributes:
        heat: (h, w) float32: the mean drop of the target class's score over the patches covering each pixel
            (score units, 0..1 for probabilities; negative where hiding a region raises the score).
        target: class index whose score is measured; base_score: its score on the unoccluded image.
        patch, stride: in model-input pixels; positions: number of patch positions (images scored).
        invokes: interpreter invokes used; batch: images per invoke.
    """

    heat: np.ndarray
    target: int
    base_score: float
    patch: int
    stride: int
    positions: int
    invokes: int
    batch: int

    def to_dict(self) -> dict:
        """JSON-ready summary (the map itself as rows of floats rounded to 6 digits)."""
        return {"target": self.target, "base_score": self.base_score, "patch": self.patch, "stride": self.stride,
                "positions": self.positions, "invokes": self.invokes, "batch": self.batch,
                "max_drop": float(self.heat.max()), "min_drop": float(self.heat.min()),
                "map": np.round(self.heat.astype(np.float64), 6).tolist()}


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start offsets of patches along one axis: every ``stride`` pixels, plus one flush with the far edge so every
    pixel is covered. ``patch`` is clipped to ``size``."""
    patch = min(patch, size)
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def default_patch(height: int, width: int) -> tuple[int, int]:
    """(patch, stride) in pixels when none are given: a sixth of the short side (at least 2), stride half of
    it, so a square input takes 11 to 13 positions per axis (121 to 169 scored images)."""
    patch = max(2, round(min(height, width) / 6))
    return patch, max(1, patch // 2)


def occlusion_map(score_batch: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, target: int, patch: int,
                  stride: int, fill: int = 128, batch: int = 1) -> Occlusion:
    """Occlusion sensitivity (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"): slide
    a grey patch over the model-sized pixels and record how much the target class's score drops.

    Args:
        score_batch: (B, h, w, c) uint8 pixels -> (B, N) float32 scores (B <= ``batch``); one call is one invoke.
        pixels: (h, w, c) uint8, the model-sized image.
        target: class index to follow.
        patch, stride: patch side and step in pixels (>= 1).
        fill: the patch's pixel value (128: mid grey).
        batch: images per call.
    Returns:
        :class:`Occlusion`; ``heat`` averages the drops of all patches covering a pixel.
    Raises:
        ValueError: patch or stride < 1.
    """
    if patch < 1 or stride < 1:
        raise ValueError(f"patch {patch} and stride {stride}: expected both >= 1")
    h, w = pixels.shape[:2]
    base = float(score_batch(pixels[None])[0][target])
    boxes = [(t, l) for t in patch_starts(h, patch, stride) for l in patch_starts(w, patch, stride)]
    ph, pw = min(patch, h), min(patch, w)
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    invokes = 1
    for i in range(0, len(boxes), batch):
        chunk = boxes[i:i + batch]
        images = np.repeat(pixels[None], len(chunk), axis=0)
        for k, (t, l) in enumerate(chunk):
            images[k, t:t + ph, l:l + pw] = fill
        drops = base - np.asarray(score_batch(images), np.float64)[:, target]
        invokes += 1
        for (t, l), d in zip(chunk, drops):
            total[t:t + ph, l:l + pw] += d
            count[t:t + ph, l:l + pw] += 1
    heat = (total / np.maximum(count, 1)).astype(np.float32)
    return Occlusion(heat, int(target), base, int(patch), int(stride), len(boxes), invokes, int(batch))


class BatchScorer:
    """Scores batches of model-sized pixels on an interpreter of its own, resized to ``batch`` images per invoke
    when the model allows it (a graph with a fixed batch of 1 inside, e.g. a RESHAPE to (1, N), does not: then
    one image per invoke).

    Args:
        classifier: a loaded :class:`edgecnn.runtime.Classifier` (its preprocessing, backend, threads and scores).
        model: the .tflite file's bytes.
        batch: images per invoke wanted (>= 1).

    Attributes:
        batch: images per invoke in use; note: why batching was refused, or "".
    """

    def __init__(self, classifier, model: bytes, batch: int):
        self.clf = classifier
        self._model = model
        self.note = ""
        self.batch = 1
        if batch > 1:
            try:
                self._it = self._open(batch)
                self.batch = batch
            except (ValueError, RuntimeError) as e:
                self.note = f"the model does not take a batch of {batch} ({str(e).strip().splitlines()[0]})"
        if self.batch == 1:
            self._it = self._open(1)

    def _open(self, batch: int):
        clf = self.clf
        it = clf.backend.interpreter_class(model_content=self._model, num_threads=clf.threads)
        if batch > 1:
            it.resize_tensor_input(clf.input.index, (batch, *clf.input.shape[1:]))
        it.allocate_tensors()
        out = it.get_output_details()[0]
        shape = tuple(int(x) for x in out["shape"])
        if shape[0] != batch or int(np.prod(shape)) != batch * clf.num_classes:
            raise ValueError(f"output shape {shape} for a batch of {batch}")
        self._out = int(out["index"])
        return it

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """(B, h, w, c) uint8 model-sized pixels, B <= batch -> (B, N) float32 scores (as the classifier gives
        them: dequantized, softmax when asked for). One invoke; a short batch is padded with copies."""
        n = len(pixels)
        tensor = np.concatenate([self.clf.tensor_from_pixels(p) for p in pixels], axis=0)
        if n < self.batch:
            tensor = np.concatenate([tensor, np.repeat(tensor[:1], self.batch - n, axis=0)], axis=0)
        self._it.set_tensor(self.clf.input.index, tensor)
        self._it.invoke()
        raw = self._it.get_tensor(self._out).reshape(self.batch, -1)[:n]
        return self.clf.scores(raw)


# ----------------------------------------------------------------------------------------------- one image
@dataclass(frozen=True)
class FeatureMap:
    """One layer's output for the explained image.

    Attributes:
        layer: the :class:`Layer`.
        values: (H, W, C) float32, dequantized.
        channels: indices of the channels shown, strongest first; strengths: their mean |activation|.
    """

    layer: Layer
    values: np.ndarray
    channels: np.ndarray
    strengths: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready summary: layer index/op/shape, channels shown of how many, their strengths, value range."""
        return {"layer": self.layer.index, "op": self.layer.op, "shape": list(self.values.shape),
                "shown": int(len(self.channels)), "of": int(self.values.shape[-1]),
                "channels": [int(c) for c in self.channels],
                "strength": [round(float(s), 6) for s in self.strengths],
                "min": float(self.values.min()), "max": float(self.values.max())}


def select_layers(layers: list[Layer], spec: tuple[str, ...] | None) -> list[Layer]:
    """The layers to draw: those named in ``spec`` (op indices or op names, case-insensitive) that have a spatial
    output, or every spatial layer when ``spec`` is None.

    Raises:
        ValueError: an index or op name that is not in the model, or one without a spatial (N, H, W, C) output.
    """
    spatial = [x for x in layers if x.spatial]
    if spec is None:
        return spatial
    picked: set[int] = set()
    for s in spec:
        s = str(s).strip()
        hits = [x for x in layers if (str(x.index) == s if s.isdigit() else x.op == s.upper())]
        if not hits:
            known = ", ".join(sorted({x.op for x in layers}))
            raise ValueError(f"layer {s!r} is not in the model (expected an op index 0..{len(layers) - 1} "
                             f"or an op name: {known})")
        flat = [x for x in hits if not x.spatial]
        if len(flat) == len(hits):
            raise ValueError(f"layer {s!r} has output shape {flat[0].shape}, expected a feature map (N, H, W, C)")
        picked.update(x.index for x in hits if x.spatial)
    return [x for x in spatial if x.index in picked]


@dataclass
class Explanation:
    """Everything ``edgecnn explain`` shows for one image (see :func:`explain_image`).

    Attributes:
        model, image: the file names; backend: "name version".
        pixels: (h, w, c) uint8, the model-sized image the model saw (after the resize rule).
        top: ranked :class:`edgecnn.runtime.Prediction` list; probabilities: whether the scores sum to 1.
        layers: the whole :class:`Layer` table; maps: the drawn :class:`FeatureMap` list.
        filters: (first CONV_2D layer, (out_c, kh, kw, in_c) float32 kernels) or None.
        occlusion: :class:`Occlusion` or None; comparison: float-vs-int8 rows or None.
        notes: sentences about what was left out and why.
        seconds: wall time per stage in s.
    """

    model: str
    image: str
    backend: str
    pixels: np.ndarray
    top: list
    probabilities: bool
    layers: list[Layer]
    maps: list[FeatureMap]
    filters: tuple[Layer, np.ndarray] | None
    occlusion: Occlusion | None = None
    comparison: list | None = None
    notes: list[str] | None = None
    seconds: dict[str, float] | None = None

    def to_dict(self) -> dict:
        """JSON-ready numbers (no images): layers with totals, feature-map summaries, filters, occlusion."""
        total = totals(self.layers)
        filt = None
        if self.filters is not None:
            layer, w = self.filters
            filt = {"layer": layer.index, "shape": list(w.shape), "min": float(w.min()), "max": float(w.max())}
        return {"model": self.model, "image": self.image, "backend": self.backend,
                "input_pixels": list(self.pixels.shape), "top": [p.to_dict() for p in self.top],
                "probabilities": self.probabilities, "totals": total,
                "layers": [x.to_dict(total["macs"]) for x in self.layers],
                "feature_maps": [m.to_dict() for m in self.maps], "filters": filt,
                "occlusion": self.occlusion.to_dict() if self.occlusion else None,
                "comparison": self.comparison, "notes": list(self.notes or []),
                "seconds": {k: round(v, 4) for k, v in (self.seconds or {}).items()}}


def _feature_maps(debug, clf, tensor: np.ndarray, layers: list[Layer], opts) -> list[FeatureMap]:
    chosen = select_layers(layers, opts.layers)
    acts = activations(debug, clf.input.index, tensor, [x.output for x in chosen])
    maps = []
    for layer in chosen:
        values = acts[layer.output][0]
        channels, strengths = strongest_channels(values, opts.max_channels)
        maps.append(FeatureMap(layer, values, channels, strengths))
    return maps


def _occlusion(clf, model: bytes, pixels: np.ndarray, target: int, opts, notes: list[str]) -> Occlusion:
    auto_patch, auto_stride = default_patch(*pixels.shape[:2])
    patch = opts.patch or auto_patch
    stride = opts.stride or (max(1, patch // 2) if opts.patch else auto_stride)
    scorer = BatchScorer(clf, model, opts.batch)
    if scorer.note:
        notes.append(f"Occlusion ran one image per invoke: {scorer.note}.")
    return occlusion_map(scorer, pixels, target, patch, stride, opts.fill, scorer.batch)


def explain_image(clf, model: bytes, image: np.ndarray, image_name: str, opts) -> Explanation:
    """Explain one image: layer table, feature maps, first-layer filters, top-k and the occlusion map.

    Args:
        clf: a loaded :class:`edgecnn.runtime.Classifier` (preprocessing, labels, scores).
        model: the same .tflite file's bytes (for the debug and batch interpreters).
        image: (H, W[, C]) uint8 RGB of any size; it goes through the model's own preprocessing.
        image_name: shown on the page.
        opts: :class:`edgecnn.config.ExplainOptions`.
    Returns:
        :class:`Explanation`. When the backend cannot keep intermediate tensors the layer table comes from the
        classifier's interpreter, feature maps are left out and ``notes`` says why.
    Raises:
        ValueError: ``opts.layers`` names a layer the model does not have; ``opts.target`` out of range.
        ModelError: an invoke fails.
    """
    notes: list[str] = []
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    pixels = to_pixels(image, clf.preprocessing)
    tensor = clf.tensor_from_pixels(pixels)
    scores = clf.scores(clf.invoke(tensor))
    top = clf.rank(scores, opts.top_k)
    target = int(np.argmax(scores)) if opts.target is None else int(opts.target)
    if not 0 <= target < scores.size:
        raise ValueError(f"target class {target} is out of range, expected 0..{scores.size - 1}")
    try:
        debug = open_debug_interpreter(clf.backend, model, clf.threads)
    except ModelError as e:
        debug = None
        notes.append(f"No feature maps: {e}.")
    layers = layer_table(debug or clf.interpreter)
    maps = _feature_maps(debug, clf, tensor, layers, opts) if debug is not None else []
    filters = first_conv_filters(debug or clf.interpreter, layers)
    if filters is None:
        notes.append("No filters: the model has no CONV_2D operator.")
    seconds["layers_maps_filters"] = time.perf_counter() - t0
    occ = None
    if opts.occlusion:
        t1 = time.perf_counter()
        occ = _occlusion(clf, model, pixels, target, opts, notes)
        seconds["occlusion"] = time.perf_counter() - t1
    return Explanation(str(clf.path), image_name, f"{clf.backend.name} {clf.backend.version}", pixels, top,
                       clf.looks_like_probabilities(scores), layers, maps, filters, occ, None, notes, seconds)

