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
from edgecnn.install import INTERPRETER_EXTRAS, interpreter_advice, userland
from edgecnn.labels import fit_labels, is_one_based, read_labels
from edgecnn.metadata import ModelMetadata, read_metadata
from edgecnn.modelinfo import (FLEX_PREFIX, TensorInfo, biasless_per_channel_dense, custom_ops,
                               output_activation)
from edgecnn.nativelog import filtered_native_stderr
from edgecnn.preprocess import apply_input_table, dequantize, input_table, to_pixels


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

    @property
    def op_resolver(self):
        """The backend's ``OpResolverType`` enum (which kernels: ``BUILTIN``, ``BUILTIN_REF``,
        ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``), from the module of its Interpreter class or of a base class; None
        where there is none (tflite-runtime before 2.5)."""
        for c in self.interpreter_class.__mro__:
            resolver = getattr(importlib.import_module(c.__module__), "OpResolverType", None)
            if resolver is not None:
                return resolver
        return None


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
        BackendError: none imports; the message lists each package tried with its error, and what to install on
            this userland (:func:`edgecnn.install.interpreter_advice`).
    """
    names = [name] if name else list(BACKENDS)
    failures = []
    for n in names:
        try:
            return _import_backend(n)
        except ImportError as e:
            failures.append(f"{n} ({e})")
    advice = interpreter_advice(userland())
    if name and name in INTERPRETER_EXTRAS:
        advice = f"pip install 'edgecnn[{INTERPRETER_EXTRAS[name]}]'"
    elif name:
        advice = f"pip install {BACKEND_PIP.get(name, name)}"
    raise BackendError("no TFLite interpreter could be imported: tried " + "; ".join(failures) + "; " + advice)


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

    A threshold of 0 (the default) filters nothing: raw logits below 0 are still reported, since 0 is the floor
    of a probability and not a meaningful cut for scores that are not probabilities.

    Args:
        scores: (N,) float.
        k: >= 1.
        threshold: minimum score (0..1) reported when > 0.
    Returns:
        [(index, score), ...] with at most k entries.
    """
    s = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-s, kind="stable")[:max(1, int(k))]
    return [(int(i), float(s[i])) for i in order if threshold <= 0 or s[i] >= threshold]


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


#: Ops whose output is unbounded: a single output made by one of them is a logit, not a probability.
LINEAR_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "SUB", "MUL", "MEAN", "BATCH_MATMUL")


def binary_scores(p: np.ndarray, sigmoid: bool = False, name: str = "<model>", producer: str | None = None
                  ) -> np.ndarray:
    """A binary classifier's single output -> (2,) float32 ``[1 - p, p]`` (p = P(class 1), the Keras
    ``Dense(1, activation="sigmoid")`` convention).

    Args:
        p: (1,) float, the dequantized output.
        sigmoid: apply ``1 / (1 + exp(-p))`` first (the output is a logit).
        name: the model, for messages. producer: the op that makes the output (:func:`output_activation`).
    Raises:
        ModelError: without ``sigmoid``, an output made by one of :data:`LINEAR_OPS` (a logit), or p outside [0, 1]
            (beyond :data:`PROBABILITY_SUM_TOLERANCE`).
    """
    v = float(np.asarray(p, dtype=np.float64).reshape(-1)[0])
    if sigmoid:
        v = float(1.0 / (1.0 + np.exp(-np.clip(v, -500, 500))))
    elif producer in LINEAR_OPS or not -PROBABILITY_SUM_TOLERANCE <= v <= 1 + PROBABILITY_SUM_TOLERANCE:
        why = f"made by {producer}, not a sigmoid" if producer in LINEAR_OPS else f"{v:.4g}, not in [0, 1]"
        raise ModelError(f"{name}: the single output (read as P(class 1)) is {why}: a logit? Pass --softmax to "
                         f"apply a sigmoid")
    v = min(max(v, 0.0), 1.0)
    return np.array([1.0 - v, v], dtype=np.float32)


# ----------------------------------------------------------------------------------------------- classifier
def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _describe_tensors(tensors: list[TensorInfo]) -> str:
    return ", ".join(f"{t.shape} {t.dtype}" for t in tensors)


def score_output(outputs: list[TensorInfo], name: str) -> TensorInfo:
    """The one output of an image classifier: a vector of class scores.

    Accepted: exactly one output whose shape has at most one dimension above 1 ((1, N), (N,), (1, 1, 1, N); N = 1
    is a binary classifier's P(class 1)), of float32 or quantized int8/uint8/int16.

    Raises:
        ModelError: no output, several outputs (detection models: boxes, classes, scores, count), an output that
            is not one vector (a feature map, a segmentation mask), an empty one, or integers without quantization
            parameters (class indices); the message says what the model has and what edgecnn expects.
    """
    expect = "edgecnn expects an image classifier with one output of class scores, shape (1, N)"
    if len(outputs) != 1:
        what = "detection model? " if len(outputs) >= 3 else ""
        raise ModelError(f"{name}: model has {len(outputs)} outputs ({_describe_tensors(outputs) or 'none'}); "
                         f"{what}{expect}")
    out = outputs[0]
    if sum(d > 1 for d in out.shape) > 1 or int(np.prod(out.shape)) < 1:
        raise ModelError(f"{name}: output shape {out.shape} is not one score vector (a feature map, mask or "
                         f"boxes?); {expect}")
    if out.dtype.kind in "iu" and not out.quantized:
        raise ModelError(f"{name}: output is {out.dtype} without quantization parameters: class indices, not "
                         f"scores? ({expect}, float32 or quantized int8/uint8/int16)")
    if not (out.dtype == np.float32 or (out.quantized and out.dtype in (np.int8, np.uint8, np.int16))):
        raise ModelError(f"{name}: output dtype is {out.dtype}; {expect}, float32 or quantized int8/uint8/int16")
    return out


def check_fixed_size(detail: dict, name: str) -> None:
    """Refuse an input whose height or width is not fixed (``shape_signature`` -1, e.g. a Keras
    ``Input(shape=(None, None, 3))``): the interpreter then reports a placeholder size such as 1 x 1, and resizing
    images to it would give silently wrong answers. A batch dimension of -1 is fine (edgecnn uses batch 1).

    Raises:
        ModelError: naming the signature and what to do.
    """
    sig = detail.get("shape_signature")
    if sig is None or len(sig) < 3:
        return
    sig = tuple(int(v) for v in sig)
    if any(v < 0 for v in sig[1:3]):
        raise ModelError(f"{name}: input height/width are not fixed (shape signature {sig}); edgecnn needs a fixed "
                         f"input size: convert the model with one, e.g. keras.Input(shape=(224, 224, 3))")


def reference_kernels_reason(backend: Backend, interpreter, arch: str, name: str) -> str | None:
    """Why this model must run on the interpreter's reference kernels here, or None when the optimized ones are safe.

    tflite-runtime on 32-bit Arm (armv7l; built without ruy) multiplies per-channel int8 FULLY_CONNECTED layers
    with gemmlowp's NEON path, which reads the layer's bias through a null pointer when there is none: the process
    dies with SIGSEGV at the first invoke, from any thread count, with or without XNNPACK. Measured with
    tflite-runtime 2.14 (the last 32-bit Arm release) in a Debian bookworm armhf userland: a Dense layer without
    bias crashes; the same layer with a bias, per-tensor weights, or ``OpResolverType.BUILTIN_REF`` runs (source:
    ``GemmImplUsingGemmlowp<..., kIntegerWithPerRowMultiplier>`` in TFLite's cpu_backend_gemm_gemmlowp.h, which
    maps ``params.bias`` unchecked). The reference kernels give the same answers, many times slower (about 40x
    for the shipped models on x86).

    Args:
        arch: the userland's architecture (:func:`edgecnn.install.userland` ``.arch``), e.g. "armv7l".
    Returns:
        One warning sentence naming the layers, the cost and the cure, or None.
    """
    if backend.name != "tflite_runtime" or not arch.startswith("armv"):
        return None
    layers = biasless_per_channel_dense(interpreter)
    if not layers:
        return None
    return (f"{name}: {', '.join(layers[:3])}: int8 fully-connected layer without a bias, on which {backend.name} "
            f"{backend.version} crashes on 32-bit Arm (SIGSEGV); running on its reference kernels instead: the same "
            f"answers, but many times slower. Give the Dense layer a bias (a trained, non-zero one) before "
            f"converting, or use Raspberry Pi OS 64-bit")


def reference_kernel_options(backend: Backend) -> dict:
    """Interpreter keyword arguments that select the backend's reference kernels (no delegate, no optimized ops).

    Raises:
        BackendError: the backend's Interpreter has no ``OpResolverType`` (tflite-runtime before 2.5).
    """
    resolver = backend.op_resolver
    if resolver is None:
        raise BackendError(f"{backend.name} {backend.version} cannot select its reference kernels (no "
                           f"OpResolverType): install tflite-runtime>=2.5")
    return {"experimental_op_resolver_type": resolver.BUILTIN_REF}


def _load_interpreter(backend: Backend, data: bytes, threads: int, name: str, options: dict | None = None):
    """Build and allocate the interpreter, holding back its start-up INFO line (real errors still show).

    Args:
        options: further Interpreter keyword arguments (:func:`reference_kernel_options`).
    Raises:
        ModelError: the interpreter refuses the model; Select TensorFlow (Flex) or other custom ops this
            interpreter lacks are named first, with what to do about them.
    """
    try:
        with filtered_native_stderr():
            interpreter = backend.interpreter_class(model_content=data, num_threads=threads, **(options or {}))
            interpreter.allocate_tensors()
        return interpreter
    except (ValueError, RuntimeError, UnicodeDecodeError) as e:
        detail = _first_line(e)
        flex = [op for op in custom_ops(data) if op.startswith(FLEX_PREFIX)]
        if flex:
            raise ModelError(
                f"{name}: uses Select TensorFlow (Flex) ops {', '.join(flex)}, which only the full TensorFlow build "
                f"runs ({backend.name} has none): run it with --backend tensorflow (pip install tensorflow), or "
                f"convert it without them (TFLiteConverter with target_spec.supported_ops = [TFLITE_BUILTINS] "
                f"only, replacing those ops with TFLite builtins)") from None
        others = [op for op in custom_ops(data) if op in str(e)]
        if others:
            raise ModelError(f"{name}: uses custom op(s) {', '.join(others)} that {backend.name} does not provide "
                             f"({detail}); edgecnn runs models made of TFLite builtin ops") from None
        raise ModelError(f"{name}: cannot load the model, truncated or corrupt? ({detail})") from None


def _check_input(info: TensorInfo, name: str) -> tuple[int, int, int]:
    shape = info.shape
    if len(shape) == 4 and shape[0] == 1 and shape[3] in (1, 3) and shape[1] > 0 and shape[2] > 0:
        h, w, c = shape[1:]
    elif len(shape) == 3 and shape[0] == 1 and shape[1] > 0 and shape[2] > 0:
        (h, w), c = shape[1:], 1
    else:
        raise ModelError(f"{name}: input shape {shape} is not an image (expected (1, H, W, C) NHWC with C 1 or 3, "
                         f"or (1, H, W) grayscale)")
    if not (info.dtype in (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32))
            or (info.dtype == np.int16 and info.quantized)):
        raise ModelError(f"{name}: input dtype is {info.dtype}{'' if info.quantized else ' (not quantized)'}, "
                         f"expected uint8, int8, float32 or quantized int16 (a 16x8 model)")
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
    if info.dtype in (np.float32, np.int16) and pre.mean is None and require_normalisation:
        raise ModelError(f"{name}: {info.dtype} input and no normalisation in the model's metadata: give --mean and --std "
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
        num_classes: number of output scores (2 for a binary classifier's single output); num_outputs: 1.
        binary: the output is one value, P(class 1); :meth:`scores` gives ``[1 - p, p]``.
        output_producer: the op that makes the output (through any QUANTIZE/DEQUANTIZE/RESHAPE/SQUEEZE), or None.
        softmax_in_graph: the output is made by a SOFTMAX/LOGISTIC op.
        background_added: the labels were one short of the output and index 0 was taken as background.
        labels_one_based: the label file was numbered 1..N for N outputs and was shifted to 0..N-1.
        preprocessing: the resolved :class:`edgecnn.config.Preprocessing`.
        labels: labels by output index (None entries for unknown), or None.
        metadata: what the file says (:class:`edgecnn.metadata.ModelMetadata`).
        interpreter: the backend's Interpreter, tensors allocated.
        kernel_note: why it runs on the backend's reference kernels (a known crash of the optimized ones with
            this model, :func:`reference_kernels_reason`), or None; kernels: "reference" or "optimized".
        interpreter_options: keyword arguments any other Interpreter of this model must get (empty normally).

    Raises:
        ModelError: missing/unreadable file, not a TFLite flatbuffer, truncated, Select TensorFlow ops the
            backend lacks, several inputs, a non-image input shape, an unsupported dtype, outputs that are not one
            score vector (:func:`score_output`), a float input with unknown normalisation.
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
        self.interpreter = _load_interpreter(self.backend, data, self.threads, name)
        #: why this model runs on the reference kernels (:func:`reference_kernels_reason`), or None
        self.kernel_note = reference_kernels_reason(self.backend, self.interpreter, userland().arch, name)
        #: Interpreter keyword arguments every interpreter of this model must get (explain's, too)
        self.interpreter_options = reference_kernel_options(self.backend) if self.kernel_note else {}
        if self.kernel_note:
            self.interpreter = _load_interpreter(self.backend, data, self.threads, name, self.interpreter_options)
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelError(f"{name}: model has {len(inputs)} inputs, expected 1 image input")
        self.input = TensorInfo.from_detail(inputs[0])
        check_fixed_size(inputs[0], name)
        self.output = score_output([TensorInfo.from_detail(d) for d in self.interpreter.get_output_details()], name)
        self.num_outputs = 1
        #: one output value: a binary classifier's P(class 1); scores become [1 - p, p]
        self.binary = int(np.prod(self.output.shape)) == 1
        self.num_classes = 2 if self.binary else int(np.prod(self.output.shape))
        self.preprocessing = resolve_preprocessing(self.input, self.metadata, options, name, require_normalisation)
        self.softmax = options.softmax
        self.output_producer = output_activation(self.interpreter, self.output.index)
        self.softmax_in_graph = self.output_producer in ("SOFTMAX", "LOGISTIC")
        self.background_added = self.labels_one_based = False
        self.labels = self._labels(options.labels_path, name)
        self._build_buffers()

    @property
    def kernels(self) -> str:
        """"reference" when the model runs on the backend's reference kernels (see ``kernel_note``), else
        "optimized"."""
        return "reference" if self.kernel_note else "optimized"

    def _build_buffers(self) -> None:
        """Per-frame state made once: the input lookup table, the input array preprocessing writes into, the
        output array invoke copies into, and a view function onto the interpreter's output tensor."""
        pre, inp = self.preprocessing, self.input
        try:
            self._table = input_table(inp.dtype, pre.channels, inp.scale, inp.zero_point, pre.mean, pre.std)
            self._table_error = None
        except ValueError as e:  # a float input with unknown normalisation (require_normalisation=False)
            self._table, self._table_error = None, str(e)
        self._tensor = np.zeros(inp.shape, inp.dtype)
        self._raw = np.zeros(int(np.prod(self.output.shape)), self.output.dtype)  # raw values, 1 for binary
        self._output_view = self.interpreter.tensor(self.output.index)

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
        self.labels_one_based = is_one_based(raw, self.num_classes)
        return labels

    # -- stages (kept separate so the camera loop can time each) --
    def tensor_from_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(h, w, c) uint8 model-sized pixels -> input tensor of the input's shape and dtype.

        :func:`edgecnn.preprocess.to_input`'s rule, applied as the lookup table made when the classifier was built
        (bit-identical, one ``cv2.LUT``). Returns the classifier's own input array, reused: the next call
        overwrites it (copy it to keep it).

        Raises:
            ValueError: pixels that do not fit the input; a float32 input with unknown normalisation.
        """
        if self._table_error:
            raise ValueError(self._table_error)
        return apply_input_table(pixels, self._table, self._tensor)

    def preprocess(self, image: np.ndarray, order: str = "rgb") -> np.ndarray:
        """Image of any size ((H, W) / (H, W, 1|3|4) uint8 in ``order``) -> input tensor (shared preprocessing).

        Returns the classifier's own input array, overwritten by the next call (see :meth:`tensor_from_pixels`).
        """
        return self.tensor_from_pixels(to_pixels(image, self.preprocessing, order))

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run the model on one input tensor. Returns the raw first output, flattened to (N,): the classifier's own
        output array, overwritten by the next call (copy it to keep it).

        Raises:
            ModelError: the interpreter's invoke failed.
        """
        it = self.interpreter
        try:
            it.set_tensor(self.input.index, tensor)
            it.invoke()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.path}: invoke failed ({_first_line(e)})") from None
        np.copyto(self._raw, self._output_view().reshape(-1))  # the view is dropped at once: invoke needs that
        return self._raw

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """Raw output -> (N,) float32 scores, a new array: dequantized if quantized, softmax applied if asked for.

        A binary classifier's single output p (P(class 1), after a sigmoid when ``--softmax`` is given, the
        one-output form of a softmax) becomes ``[1 - p, p]``.

        Raises:
            ModelError: a single output outside [0, 1] (a logit) without ``--softmax``.
        """
        out = self.output
        s = dequantize(raw, out.scale, out.zero_point) if out.quantized else np.array(raw, dtype=np.float32)
        if self.binary:
            return binary_scores(s, self.softmax, str(self.path), self.output_producer)
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
