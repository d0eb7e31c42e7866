"""``edgecnn explain``: what an image classifier .tflite computes on one image, on the device (no TensorFlow).

Pure computations over interpreters and numpy arrays; the layers themselves are read by :mod:`edgecnn.layers`,
the float-vs-int8 comparison is :mod:`edgecnn.explain_compare`, drawing :mod:`edgecnn.explain_images` and the page
:mod:`edgecnn.explain_html`.

- :func:`strongest_channels`: the order feature-map channels are shown in.
- :func:`occlusion_map` + :class:`BatchScorer`: how much the predicted class's score drops when a grey patch hides
  each region.
- :func:`explain_image`: all of it for one image, as an :class:`Explanation`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.explain_compare import compare
from edgecnn.layers import (Layer, activations, first_conv_filters, layer_table, open_debug_interpreter, read_tensor,
                            totals, with_outputs)
from edgecnn.modelinfo import output_producer
from edgecnn.preprocess import to_pixels


# ----------------------------------------------------------------------------------------------- feature maps
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


# ----------------------------------------------------------------------------------------------- occlusion
#: A border counts as a plain background when this share of its pixels is within ``PLAIN_BORDER_SPREAD`` (pixel
#: units) of its median.
PLAIN_BORDER_SHARE = 0.75
PLAIN_BORDER_SPREAD = 8.0
#: A plain background this far (pixel units) from the occlusion fill gets a note suggesting ``--fill``.
PLAIN_BORDER_FAR = 64


@dataclass(frozen=True)
class Occlusion:
    """Result of :func:`occlusion_map`.

    Attributes:
        heat: (h, w) float32: the mean drop of the target class's measure over the patches covering each pixel
            (in ``unit``; negative where hiding a region raises it).
        target: class index whose measure is followed; base_score: its measure on the unoccluded image.
        patch, stride: in model-input pixels; positions: number of patch positions (images scored).
        invokes: interpreter invokes used; batch: images per invoke.
        unit: "score" (the output as classify reports it) or "log-odds" (from the logits before a softmax).
        fill: the patch's pixel value.
    """

    heat: np.ndarray
    target: int
    base_score: float
    patch: int
    stride: int
    positions: int
    invokes: int
    batch: int
    unit: str = "score"
    fill: int = 128

    def to_dict(self) -> dict:
        """JSON-ready summary (the map itself as rows of floats rounded to 6 digits)."""
        return {"target": self.target, "unit": self.unit, "base_score": self.base_score, "patch": self.patch,
                "stride": self.stride, "fill": self.fill, "positions": self.positions, "invokes": self.invokes, "batch": self.batch,
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


def plain_background(pixels: np.ndarray, spread: float = PLAIN_BORDER_SPREAD,
                     share: float = PLAIN_BORDER_SHARE) -> int | None:
    """The value of a plain background: the median of the image's outermost rows and columns when at least
    ``share`` of those pixels are within ``spread`` of it in every channel (an object may touch the border), else
    None.

    Args:
        pixels: (h, w, c) uint8.
    Returns:
        the median over border pixels and channels, 0..255, or None.
    """
    p = np.asarray(pixels, np.float64).reshape(*pixels.shape[:2], -1)
    border = np.concatenate([p[0], p[-1], p[:, 0], p[:, -1]])
    median = np.median(border, axis=0)
    close = (np.abs(border - median) <= spread).all(axis=1).mean()
    return int(round(float(np.median(median)))) if close >= share else None


def default_patch(height: int, width: int) -> tuple[int, int]:
    """(patch, stride) in pixels when none are given: a sixth of the short side (at least 2), stride half of
    it, so a square input takes 11 to 13 positions per axis (121 to 169 scored images)."""
    patch = max(2, round(min(height, width) / 6))
    return patch, max(1, patch // 2)


def occlusion_map(score_batch: Callable[[np.ndarray, int], np.ndarray], pixels: np.ndarray, target: int, patch: int,
                  stride: int, fill: int = 128, batch: int = 1, unit: str = "score",
                  progress: Callable[[int, int], None] | None = None) -> Occlusion:
    """Occlusion sensitivity (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks"): slide
    a grey patch over the model-sized pixels and record how much the target class's score drops.

    Args:
        score_batch: ((B, h, w, c) uint8 pixels, target) -> (B,) float measure of the target class, B <= ``batch``
            (e.g. a :class:`BatchScorer`); one call is one invoke.
        pixels: (h, w, c) uint8, the model-sized image.
        target: class index to follow.
        patch, stride: patch side and step in pixels (>= 1).
        fill: the patch's pixel value (128: mid grey).
        batch: images per call.
        unit: what ``score_batch`` measures ("score", "log-odds"), recorded in the result.
        progress: called as ``progress(images done, images in all)`` after every invoke.
    Returns:
        :class:`Occlusion`; ``heat`` averages the drops of all patches covering a pixel.
    Raises:
        ValueError: patch or stride < 1.
    """
    if patch < 1 or stride < 1:
        raise ValueError(f"patch {patch} and stride {stride}: expected both >= 1")
    h, w = pixels.shape[:2]
    base = float(score_batch(pixels[None], target)[0])
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
        drops = base - np.asarray(score_batch(images, target), np.float64)
        invokes += 1
        if progress is not None:
            progress(i + len(chunk), len(boxes))
        for (t, l), d in zip(chunk, drops):
            total[t:t + ph, l:l + pw] += d
            count[t:t + ph, l:l + pw] += 1
    heat = (total / np.maximum(count, 1)).astype(np.float32)
    return Occlusion(heat, int(target), base, int(patch), int(stride), len(boxes), invokes, int(batch), unit,
                     int(fill))


def log_odds(logits: np.ndarray, target: int) -> np.ndarray:
    """Log-odds of class ``target`` under a softmax of ``logits``: ``z_t - log(sum_{j != t} exp(z_j))``, which is
    ``log(p_t / (1 - p_t))`` without computing p (so it does not saturate where p rounds to 1).

    Args:
        logits: (B, N) float.
    Returns:
        (B,) float64; for N == 1 the logit itself.
    """
    z = np.asarray(logits, np.float64)
    others = np.delete(z, target, axis=1)
    if others.shape[1] == 0:
        return z[:, target]
    m = others.max(axis=1, keepdims=True)
    return z[:, target] - (m[:, 0] + np.log(np.exp(others - m).sum(axis=1)))


class BatchScorer:
    """Scores batches of model-sized pixels for the occlusion map on an interpreter of its own, resized to
    ``batch`` images per invoke when the model allows it (a graph with a fixed batch of 1 inside, e.g. a RESHAPE
    to (1, N), does not: then one image per invoke).

    When the output comes from a SOFTMAX (through QUANTIZE/DEQUANTIZE/RESHAPE), or is a binary classifier's one
    LOGISTIC output, the measure is the target's log-odds from that op's input (the logits, dequantized): an int8
    softmax output saturates at 255/256, so on a confident prediction no single patch would move it. The logits
    are made an extra model output (:func:`edgecnn.layers.with_outputs`) so the backend's default kernels run the
    whole graph; without a TFLite schema to rewrite the model (tflite-runtime alone), the interpreter keeps every
    tensor instead, which is slower. Otherwise the measure is the output score as ``classify`` reports it.

    Args:
        classifier: a loaded :class:`edgecnn.runtime.Classifier` (its preprocessing, backend, threads and scores).
        model: the .tflite file's bytes.
        batch: images per invoke wanted (>= 1).
        rewrite: False reads the logits by keeping every tensor even when the model could be rewritten (the
            fallback path; for comparing the two).

    Attributes:
        batch: images per invoke in use; note: why batching was refused, or "".
        unit: "log-odds" or "score".
        keep_all: True when the logits are read by keeping every tensor.
    """

    def __init__(self, classifier, model: bytes, batch: int, rewrite: bool = True):
        self.clf = classifier
        self._model = model
        self.note = ""
        self.batch = 1
        producer = output_producer(classifier.interpreter, classifier.output.index)
        kind = producer["op_name"] if producer is not None else None
        self._sigmoid = kind == "LOGISTIC" and classifier.binary
        self._logits = int(producer["inputs"][0]) if kind == "SOFTMAX" or self._sigmoid else None
        self._per_image = 1 if classifier.binary else classifier.num_classes
        self.unit = "log-odds" if self._logits is not None else "score"
        self.keep_all = self._logits is not None and not rewrite
        if self._logits is not None and rewrite:
            try:
                self._model = with_outputs(model, [self._logits])
            except ImportError:  # tflite-runtime alone has no schema: keep every tensor instead (slower)
                self.keep_all = True
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
        kw = {**clf.interpreter_options, **({"experimental_preserve_all_tensors": True} if self.keep_all else {})}
        with warnings.catch_warnings():  # the "for debugging purposes only" notice
            warnings.simplefilter("ignore", UserWarning)
            it = clf.backend.interpreter_class(model_content=self._model, num_threads=clf.threads, **kw)
        if batch > 1:
            it.resize_tensor_input(clf.input.index, (batch, *clf.input.shape[1:]))
        it.allocate_tensors()
        out = it.get_output_details()[0]
        shape = tuple(int(x) for x in out["shape"])
        if shape[0] != batch or int(np.prod(shape)) != batch * self._per_image:
            raise ValueError(f"output shape {shape} for a batch of {batch}")
        self._out = int(out["index"])
        self._tensor = np.zeros((batch, *clf.input.shape[1:]), clf.input.dtype)
        return it

    def __call__(self, pixels: np.ndarray, target: int) -> np.ndarray:
        """(B, h, w, c) uint8 model-sized pixels, B <= batch -> (B,) float64 measure of class ``target`` (see
        ``unit``). One invoke; a short batch is padded with copies of its first image."""
        n = len(pixels)
        for k, p in enumerate(pixels):  # the classifier reuses one input array: copy each image out of it
            self._tensor[k] = self.clf.tensor_from_pixels(p)[0]
        self._tensor[n:] = self._tensor[0]
        self._it.set_tensor(self.clf.input.index, self._tensor)
        self._it.invoke()
        if self._logits is not None:
            z = read_tensor(self._it, self._logits).reshape(self.batch, -1)[:n]
            if self._sigmoid:  # one logit z of class 1: log-odds z for class 1, -z for class 0
                return z[:, 0].astype(np.float64) * (1.0 if target == 1 else -1.0)
            return log_odds(z, target)
        raw = self._it.get_tensor(self._out).reshape(self.batch, -1)[:n]
        return np.array([self.clf.scores(r)[target] for r in raw], np.float64)


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
        occlusion: :class:`Occlusion` or None.
        comparison: :class:`edgecnn.explain_compare.LayerError` rows, worst first, or None.
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
                "comparison": [r.to_dict() for r in self.comparison] if self.comparison is not None else None,
                "notes": list(self.notes or []),
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


def _occlusion(clf, model: bytes, pixels: np.ndarray, target: int, opts, notes: list[str],
               progress=None) -> Occlusion:
    auto_patch, auto_stride = default_patch(*pixels.shape[:2])
    patch = opts.patch or auto_patch
    stride = opts.stride or (max(1, patch // 2) if opts.patch else auto_stride)
    scorer = BatchScorer(clf, model, opts.batch)
    background = plain_background(pixels)
    if background is not None and abs(background - opts.fill) > PLAIN_BORDER_FAR:
        notes.append(f"The image has a plain background of pixel value {background}: a patch of {opts.fill} adds "
                     f"something there that the model may react to, so the map can light the background. "
                     f"--fill {background} hides regions with the background instead.")
    if scorer.note:
        notes.append(f"Occlusion ran one image per invoke: {scorer.note}.")
    return occlusion_map(scorer, pixels, target, patch, stride, opts.fill, scorer.batch, scorer.unit,
                         progress)


def _comparison(debug, float_it, tensor: np.ndarray, notes: list[str]) -> list:
    rows, paired, total = compare(debug, float_it, tensor)
    if paired < total:
        notes.append(f"Float vs int8: {paired} of {total} operators paired by op name and output shape; the "
                     f"others have no counterpart in the float model.")
    return rows


def explain_image(clf, model: bytes, image: np.ndarray, image_name: str, opts,
                  float_model: bytes | None = None,
                  progress: Callable[[int, int], None] | None = None, order: str = "rgb") -> Explanation:
    """Explain one image: layer table, feature maps, first-layer filters, top-k, the occlusion map and, with
    ``float_model``, the float-vs-int8 error of every layer (:func:`edgecnn.explain_compare.compare`).

    Args:
        clf: a loaded :class:`edgecnn.runtime.Classifier` (preprocessing, labels, scores).
        model: the same .tflite file's bytes (for the debug and batch interpreters).
        image: (H, W[, C]) uint8 of any size in channel ``order`` ("rgb", or "bgr" for camera frames); it goes
            through the model's own preprocessing.
        image_name: shown on the page.
        opts: :class:`edgecnn.config.ExplainOptions`.
        float_model: the float .tflite bytes of the same network, or None.
        progress: ``progress(images done, images in all)`` during the occlusion map (for a progress bar).
    Returns:
        :class:`Explanation`. When the backend cannot keep intermediate tensors the layer table comes from the
        classifier's interpreter, feature maps are left out and ``notes`` says why.
    Raises:
        ValueError: ``opts.layers`` names a layer the model does not have; ``opts.target`` out of range; the
            float model's input shape differs.
        ModelError: an invoke fails.
    """
    notes: list[str] = []
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    pixels = to_pixels(image, clf.preprocessing, order)
    tensor = clf.tensor_from_pixels(pixels).copy()  # the classifier reuses its input and output arrays
    scores = np.array(clf.scores(clf.invoke(tensor)))
    top = clf.rank(scores, opts.top_k)
    target = int(np.argmax(scores)) if opts.target is None else int(opts.target)
    if not 0 <= target < scores.size:
        raise ValueError(f"target class {target} is out of range, expected 0..{scores.size - 1}")
    try:
        debug = open_debug_interpreter(clf.backend, model, clf.threads, clf.interpreter_options)
    except ModelError as e:
        debug = None
        notes.append(f"No feature maps: {e}.")
    layers = layer_table(debug or clf.interpreter)
    maps = _feature_maps(debug, clf, tensor, layers, opts) if debug is not None else []
    filters = first_conv_filters(debug or clf.interpreter, layers)
    if filters is None:
        notes.append("No filters: the model has no CONV_2D operator.")
    seconds["layers_maps_filters"] = time.perf_counter() - t0
    comparison = None
    if float_model is not None and debug is None:
        notes.append("No float-vs-int8 comparison: it needs the intermediate tensors too.")
    if float_model is not None and debug is not None:
        t1 = time.perf_counter()
        float_it = open_debug_interpreter(clf.backend, float_model, clf.threads, clf.interpreter_options)
        comparison = _comparison(debug, float_it, tensor, notes)
        seconds["compare"] = time.perf_counter() - t1
    occ = None
    if opts.occlusion:
        t1 = time.perf_counter()
        occ = _occlusion(clf, model, pixels, target, opts, notes, progress)
        seconds["occlusion"] = time.perf_counter() - t1
    return Explanation(str(clf.path), image_name, f"{clf.backend.name} {clf.backend.version}", pixels, top,
                       clf.looks_like_probabilities(scores), layers, maps, filters, occ, comparison, notes, seconds)

