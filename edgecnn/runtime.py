"""Interpreter backend choice and the Classifier: image -> input tensor -> invoke -> scores -> top-k.

Backends are tried in the order ``ai_edge_litert`` -> ``tflite_runtime`` -> ``tensorflow`` (``tf.lite``); TensorFlow
is imported only when it is asked for or nothing else imports. The interpreter is built once per
:class:`Classifier`; nothing here keeps module-level state.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.config import (BACKEND_PIP, BACKENDS, DEFAULT_RESIZE, DEFAULT_THRESHOLD, DEFAULT_TOP_K,
                            PROBABILITY_SUM_TOLERANCE, Preprocessing, RuntimeOptions, default_threads)
from edgecnn.errors import BackendError, LabelsError, ModelError
from edgecnn.labels import fit_labels, read_labels
from edgecnn.metadata import ModelMetadata, read_metadata
from edgecnn.modelinfo import TensorInfo, output_activation
from edgecnn.preprocess import dequantize, to_input, to_pixels


# ----------------------------------------------------------------------------------------------- backends
@dataclass(frozen=True)
class Backend:
    """An importable TFLite interpreter package.

    Attributes:
        name: one of :data:`edgecnn.config.BACKENDS`.
        version: the installed package's version.
        interpreter_class: its ``Interpreter`` class.
    """

    name: str
    version: str
    interpreter_class: type


def _import_backend(name: str) -> Backend:
    if name == "ai_edge_litert":
        from ai_edge_litert.interpreter import Interpreter

        return Backend(name, importlib.metadata.version("ai-edge-litert"), Interpreter)
    if name == "tflite_runtime":
        from tflite_runtime.interpreter import Interpreter

        return Backend(name, importlib.metadata.version("tflite-runtime"), Interpreter)
    if name == "tensorflow":
        tf = importlib.import_module("tensorflow")
        return Backend(name, tf.__version__, tf.lite.Interpreter)
    raise BackendError(f"backend is {name!r}, expected one of {', '.join(BACKENDS)}")


def load_backend(name: str | None = None) -> Backend:
    """Import the interpreter package ``name``, or the first of :data:`edgecnn.config.BACKENDS` that imports.

    Raises:
        BackendError: none imports; the message lists each package tried, its error and the pip package to install.
    """
    names = [name] if name else list(BACKENDS)
    failures = []
    for n in names:
        try:
            return _import_backend(n)
        except ImportError as e:
            failures.append(f"{n} ({e}; pip install {BACKEND_PIP.get(n, n)})")
    raise BackendError("no TFLite interpreter could be imported: tried " + "; ".join(failures))


# ----------------------------------------------------------------------------------------------- scores
def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis. Returns float32 of x's shape."""
    z = np.asarray(x, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def is_probability_vector(scores: np.ndarray, tol: float = PROBABILITY_SUM_TOLERANCE) -> bool:
    """True when every score is in [0, 1] (within tol) and they sum to 1 within ``tol``."""
    s = np.asarray(scores, dtype=np.float64)
    return bool(s.min() >= -tol and s.max() <= 1 + tol and abs(s.sum() - 1.0) <= tol)


def top_k(scores: np.ndarray, k: int = DEFAULT_TOP_K, threshold: float = DEFAULT_THRESHOLD) -> list[tuple[int, float]]:
    """The k highest scores at or above ``threshold``, best first; ties keep the lower index first.

    Args:
        scores: (N,) float.
        k: >= 1.
    Returns:
        [(index, score), ...] with at most k entries.
    """
    s = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-s, kind="stable")[:max(1, int(k))]
    return [(int(i), float(s[i])) for i in order if s[i] >= threshold]


@dataclass(frozen=True)
class Prediction:
    """One ranked class: output ``index``, its ``label`` (None when unknown) and ``score`` (0..1 for probabilities)."""

    index: int
    label: str | None
    score: float

    def to_dict(self) -> dict:
        """``{"index": int, "label": str|None, "score": float}``."""
        return {"index": self.index, "label": self.label, "score": round(self.score, 6)}


@dataclass(frozen=True)
class Classification:
    """Result of :meth:`Classifier.classify`: ranked predictions, stage latencies in ms (``preprocess``,
    ``invoke``, ``postprocess``), and whether the scores formed a probability vector
    (:func:`is_probability_vector`; False suggests logits that want ``--softmax``)."""

    top: list[Prediction]
    latency_ms: dict[str, float]
    probabilities: bool = True


# ----------------------------------------------------------------------------------------------- classifier
def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_input(info: TensorInfo, name: str) -> tuple[int, int, int]:
    shape = info.shape
    if len(shape) == 4 and shape[0] == 1 and shape[3] in (1, 3) and shape[1] > 0 and shape[2] > 0:
        h, w, c = shape[1:]
    elif len(shape) == 3 and shape[0] == 1 and shape[1] > 0 and shape[2] > 0:
        (h, w), c = shape[1:], 1
    else:
        raise ModelError(f"{name}: input shape {shape} is not an image (expected (1, H, W, C) NHWC with C 1 or 3, "
                         f"or (1, H, W) grayscale)")
    if info.dtype not in (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32)):
        raise ModelError(f"{name}: input dtype is {info.dtype}, expected uint8, int8 or float32")
    return h, w, c


def resolve_preprocessing(info: TensorInfo, meta: ModelMetadata, options: RuntimeOptions, name: str,
                          require_normalisation: bool = True) -> Preprocessing:
    """The preprocessing a model gets: size and channels from its input tensor; resize rule and mean/std from the
    options (``--resize``, ``--mean/--std``) first, else the model's metadata, else defaults.

    An integer input without quantization parameters (scale 0) takes raw pixel bytes: metadata mean/std are
    ignored for it and ``--mean/--std`` are an error.

    Raises:
        ModelError: a float32 input with no mean/std anywhere (unless ``require_normalisation`` is False),
            mean/std that do not fit the input, or metadata values that are invalid.
    """
    h, w, c = _check_input(info, name)
    recorded = meta.preprocessing or {}
    mean, std = options.mean, options.std
    raw_bytes_only = info.dtype.kind in "iu" and not info.quantized
    if raw_bytes_only and mean is not None:
        raise ModelError(f"{name}: input is {info.dtype} without quantization parameters (scale 0), so it takes raw "
                         f"pixel bytes and --mean/--std cannot apply; leave them out")
    if mean is None and not raw_bytes_only and recorded.get("mean") is not None and recorded.get("std") is not None:
        mean, std = recorded["mean"], recorded["std"]
    resize = options.resize or recorded.get("resize") or DEFAULT_RESIZE
    try:
        pre = Preprocessing.from_dict({"height": h, "width": w, "channels": c, "resize": resize,
                                       "mean": mean, "std": std})
    except ValueError as e:
        raise ModelError(f"{name}: {e}") from None
    if info.dtype == np.float32 and pre.mean is None and require_normalisation:
        raise ModelError(f"{name}: float32 input and no normalisation in the model's metadata: give --mean and --std "
                         f"(e.g. --mean 127.5 --std 127.5 for inputs in [-1, 1], --mean 0 --std 255 for [0, 1])")
    return pre


class Classifier:
    """A single-input TFLite image classifier, interpreter built once.

    Args:
        model_path: path to a .tflite file.
        options: backend, threads, labels, normalisation overrides (:class:`edgecnn.config.RuntimeOptions`).
        require_normalisation: False lets a float32 model with unknown mean/std load (for describing it; its
            :meth:`preprocess` then raises ValueError).

    Attributes:
        path, size_bytes: the model file and its size in bytes.
        backend: the :class:`Backend` in use; threads: interpreter threads.
        input, output: :class:`TensorInfo` of the image input and the (first) output.
        num_classes: number of output scores; num_outputs: output tensors in the model (the first is used).
        softmax_in_graph: the output is made by a SOFTMAX/LOGISTIC op (through any QUANTIZE/DEQUANTIZE/RESHAPE).
        background_added: the labels were one short of the output and index 0 was taken as background.
        preprocessing: the resolved :class:`edgecnn.config.Preprocessing`.
        labels: labels by output index (None entries for unknown), or None.
        metadata: what the file says (:class:`edgecnn.metadata.ModelMetadata`).
        interpreter: the backend's Interpreter, tensors allocated.

    Raises:
        ModelError: missing/unreadable file, not a TFLite flatbuffer, truncated, several inputs, a non-image input
            shape, an unsupported dtype, a float input with unknown normalisation.
        LabelsError: labels (file or embedded) that fit neither the output size nor output size minus one.
        BackendError: no interpreter package imports.
    """

    def __init__(self, model_path: str | Path, options: RuntimeOptions | None = None,
                 require_normalisation: bool = True):
        options = options or RuntimeOptions()
        self.path = Path(model_path)
        name = str(self.path)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{name}: no such file (expected a .tflite model)") from None
        except OSError as e:
            raise ModelError(f"{name}: cannot read ({e.strerror or e})") from None
        self.size_bytes = len(data)
        self.metadata = read_metadata(data, name)
        self.backend = load_backend(options.backend)
        self.threads = int(options.threads or default_threads())
        try:
            self.interpreter = self.backend.interpreter_class(model_content=data, num_threads=self.threads)
            self.interpreter.allocate_tensors()
            inputs = self.interpreter.get_input_details()
            outputs = self.interpreter.get_output_details()
        except (ValueError, RuntimeError, UnicodeDecodeError) as e:
            raise ModelError(f"{name}: cannot load the model, truncated or corrupt? ({_first_line(e)})") from None
        if len(inputs) != 1:
            raise ModelError(f"{name}: model has {len(inputs)} inputs, expected 1 image input")
        if not outputs:
            raise ModelError(f"{name}: model has no outputs")
        self.input = TensorInfo.from_detail(inputs[0])
        self.output = TensorInfo.from_detail(outputs[0])
        self.num_outputs = len(outputs)
        if len(self.output.shape) > 1 and self.output.shape[0] != 1:
            raise ModelError(f"{name}: output shape {self.output.shape}, expected batch 1 such as (1, N)")
        if self.output.dtype.kind in "iu" and not self.output.quantized:
            raise ModelError(f"{name}: output is {self.output.dtype} without quantization parameters: class "
                             f"indices, not scores? (expected float32 scores or quantized uint8/int8 scores)")
        self.num_classes = int(np.prod(self.output.shape)) if self.output.shape else 1
        self.preprocessing = resolve_preprocessing(self.input, self.metadata, options, name, require_normalisation)
        self.softmax = options.softmax
        self.softmax_in_graph = output_activation(self.interpreter, self.output.index) in ("SOFTMAX", "LOGISTIC")
        self.background_added = False
        self.labels = self._labels(options.labels_path, name)
        self._in_shape = self.input.shape

    def _labels(self, labels_path: str | None, name: str) -> list[str | None] | None:
        if labels_path:
            raw, where = read_labels(labels_path), str(labels_path)
        elif self.metadata.labels:
            raw, where = self.metadata.labels, f"{name}: embedded labels"
        else:
            return None
        try:
            labels = fit_labels(raw, self.num_classes, where)
        except LabelsError as e:
            if labels_path:
                raise
            raise ModelError(str(e)) from None
        self.background_added = len(raw) == self.num_classes - 1
        return labels

    # -- stages (kept separate so the camera loop can time each) --
    def tensor_from_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(h, w, c) uint8 model-sized pixels -> input tensor of the input's shape and dtype."""
        pre = self.preprocessing
        return to_input(pixels, self._in_shape, self.input.dtype, self.input.scale, self.input.zero_point,
                        pre.mean, pre.std)

    def preprocess(self, image: np.ndarray, order: str = "rgb") -> np.ndarray:
        """Image of any size ((H, W) / (H, W, 1|3|4) uint8 in ``order``) -> input tensor (shared preprocessing)."""
        return self.tensor_from_pixels(to_pixels(image, self.preprocessing, order))

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run the model on one input tensor. Returns the raw first output, flattened to (N,), a copy.

        Raises:
            ModelError: the interpreter's invoke failed.
        """
        it = self.interpreter
        try:
            it.set_tensor(self.input.index, tensor)
            it.invoke()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.path}: invoke failed ({_first_line(e)})") from None
        return it.get_tensor(self.output.index).reshape(-1)

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """Raw output -> (N,) float32 scores: dequantized if quantized, softmax applied if asked for."""
        out = self.output
        s = dequantize(raw, out.scale, out.zero_point) if out.quantized else np.asarray(raw, dtype=np.float32)
        return softmax(s) if self.softmax else s

    def looks_like_probabilities(self, scores: np.ndarray) -> bool:
        """True when the scores are a probability vector: made by a softmax (in the graph or by ``--softmax``), or
        within [0, 1] summing to 1, allowing each quantized score half a quantization step of error."""
        if self.softmax or self.softmax_in_graph:
            return True
        tol = PROBABILITY_SUM_TOLERANCE + (0.5 * self.output.scale * scores.size if self.output.quantized else 0.0)
        return is_probability_vector(scores, tol)

    def rank(self, scores: np.ndarray, k: int = DEFAULT_TOP_K,
             threshold: float = DEFAULT_THRESHOLD) -> list[Prediction]:
        """(N,) float scores -> the top-k :class:`Prediction` list (labels attached)."""
        labels = self.labels
        return [Prediction(i, labels[i] if labels and i < len(labels) else None, s)
                for i, s in top_k(scores, k, threshold)]

    def postprocess(self, raw: np.ndarray, k: int = DEFAULT_TOP_K,
                    threshold: float = DEFAULT_THRESHOLD) -> list[Prediction]:
        """Raw output -> the top-k :class:`Prediction` list: :meth:`scores` then :meth:`rank`."""
        return self.rank(self.scores(raw), k, threshold)

    def classify(self, image: np.ndarray, k: int = DEFAULT_TOP_K, threshold: float = DEFAULT_THRESHOLD,
                 order: str = "rgb") -> Classification:
        """Classify one image ((H, W[, C]) uint8 in ``order``), timing each stage in ms."""
        t0 = time.perf_counter()
        tensor = self.preprocess(image, order)
        t1 = time.perf_counter()
        raw = self.invoke(tensor)
        t2 = time.perf_counter()
        scores = self.scores(raw)
        top = self.rank(scores, k, threshold)
        t3 = time.perf_counter()
        return Classification(top, {"preprocess": (t1 - t0) * 1e3, "invoke": (t2 - t1) * 1e3,
                                    "postprocess": (t3 - t2) * 1e3}, self.looks_like_probabilities(scores))
