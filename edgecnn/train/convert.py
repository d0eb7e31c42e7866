"""Full-integer post-training quantization, int8 verification, the float-vs-int8 report, and evaluation
[train extra].

Conversion exports the Keras model as a SavedModel with a fixed (1, h, w, c) float32 signature
(``keras.Model.export``) and converts that with ``tf.lite.TFLiteConverter.from_saved_model``. That path works for
Keras 3 models on TF >= 2.16, where ``from_keras_model`` fails for some models (it expects the Keras 2 tracing
API) and a bare concrete function leaves unfrozen READ_VARIABLE ops.

Quantization follows the TFLite 8-bit scheme (https://ai.google.dev/edge/litert/models/quantization_spec):
int8 activations with per-tensor scale / zero point, int8 weights with per-channel scales, int32 biases.
The calibration (representative) data are training-split images, drawn class-balanced, preprocessed by the shared
:func:`edgecnn.preprocess.to_pixels`, fed as raw 0..255 float32 exactly as in training (the model normalises
inside), each sample shaped like the model input.

Accuracies in reports are measured on held-out data: the official test split when the dataset has one, else the
validation split (recreated from the seed and fraction recorded by ``edgecnn train``).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgecnn.train import data as D
from edgecnn.config import DEFAULT_SEED, DEFAULT_TOP_K, DEFAULT_VAL_SPLIT, IO_TYPES, Preprocessing, QuantizeOptions
from edgecnn.errors import DataError, ModelError, QualityGateError, QuantizationError
from edgecnn.outputs import pending_files, refuse_existing

#: Int8 predictions are called collapsed when one class takes at least this share of them while being at most
#: half as common in the true labels.
COLLAPSE_SHARE = 0.5


def _tf():
    from edgecnn.train.fit import _tf as train_tf

    return train_tf()


# ------------------------------------------------------------------------------------------------ model + data

@dataclass
class TrainedModel:
    """A Keras model with what edgecnn train saved beside it."""

    path: Path
    model: object
    labels: list[str]
    pre: Preprocessing
    report: dict

    @property
    def seed(self) -> int:
        return int(self.report.get("data", {}).get("seed", DEFAULT_SEED))

    @property
    def val_split(self) -> float:
        return float(self.report.get("data", {}).get("val_split", DEFAULT_VAL_SPLIT))


def load_trained(path: str | Path) -> TrainedModel:
    """Load an OUTDIR of ``edgecnn train`` (or its model.keras). Raises DataError / ModelError."""
    from edgecnn.train.fit import load_outdir

    model_path, labels, pre, report = load_outdir(path)
    _tf()
    import keras

    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        raise ModelError(f"{model_path}: cannot load the Keras model ({str(e).splitlines()[0][:200]})") from None
    shape = tuple(model.input_shape[1:])
    if shape != (pre.height, pre.width, pre.channels):
        raise ModelError(f"{model_path}: model input is {shape}, preprocessing.json says "
                         f"{(pre.height, pre.width, pre.channels)}")
    n_out = int(model.output_shape[-1])
    if n_out != len(labels):
        raise ModelError(f"{model_path}: model has {n_out} outputs, labels.txt has {len(labels)} labels")
    return TrainedModel(Path(model_path), model, labels, pre, report)


def load_splits(spec: str, pre: Preprocessing, labels: list[str] | None, seed: int, val_split: float,
                progress: bool = True) -> D.Splits:
    """Load DATA preprocessed for a model and split it as training did.

    Raises:
        DataError: the data's classes differ from the model's labels (names or order).
    """
    ds = D.load(spec, pre, progress=progress)
    if labels is not None and [str(x) for x in labels] != list(ds.labels):
        raise DataError(f"{spec}: classes {ds.labels} differ from the model's labels {list(labels)}; "
                          "expected the same classes in the same order")
    return D.make_splits(ds, val_split, seed)


# -------------------------------------------------------------------------------------------- calibration

def full_range(pixels: np.ndarray) -> np.ndarray:
    """Copy of calibration pixels whose first image holds one 0 and one 255 value.

    The converter sets the input tensor's quantization from the smallest and largest calibration value. Photos
    without pure black or white would give a scale below 1 and clip brighter pixels on the device; with the full
    0..255 range present the input gets scale 1.0 and zero point -128 (int8) or 0 (uint8), i.e. the raw pixel
    bytes, exactly. Two values in one image barely move the other layers' ranges.

    Args:
        pixels: (n, h, w, c) uint8, n >= 1.
    Returns:
        (n, h, w, c) uint8.
    """
    out = np.array(pixels, dtype=np.uint8, copy=True)
    out[0].flat[0] = 0
    out[0].flat[-1] = 255
    return out


def check_representative(samples: list[np.ndarray], input_shape: tuple[int, ...]) -> None:
    """Check every representative sample before converting: a float32 array of exactly ``input_shape``.

    Args:
        samples: the arrays the converter will be given, one per calibration step.
        input_shape: the model input shape including the batch dimension, e.g. (1, 28, 28, 1).
    Raises:
        ValueError: no samples, or a sample whose shape or dtype differs (actual vs expected, with its index).
    """
    if not samples:
        raise ValueError("representative dataset is empty, expected at least one sample")
    want = tuple(int(d) for d in input_shape)
    for i, s in enumerate(samples):
        if tuple(s.shape) != want:
            raise ValueError(f"representative sample {i} has shape {tuple(s.shape)}, model input is {want}")
        if s.dtype != np.float32:
            raise ValueError(f"representative sample {i} has dtype {s.dtype}, expected float32")


def representative_dataset(pixels: np.ndarray, input_shape: tuple[int, ...]):
    """The converter's ``representative_dataset``: a callable yielding ``[sample]`` lists.

    Args:
        pixels: (n, h, w, c) uint8 calibration images.
        input_shape: (1, h, w, c) model input shape.
    Returns:
        a zero-argument generator function; each sample is (1, h, w, c) float32 raw pixels 0..255.
    Raises:
        ValueError: from :func:`check_representative`, before anything is converted.
    """
    samples = [p[None].astype(np.float32) for p in pixels]
    check_representative(samples, input_shape)

    def gen():
        for s in samples:
            yield [s]

    return gen


# ----------------------------------------------------------------------------------------------- conversion

def _saved_model(model, folder: Path) -> tuple[int, ...]:
    """Export ``model`` as a SavedModel with one (1, h, w, c) float32 ``serving_default`` signature.

    ``keras.Model.export`` writes variables as constants the converter can freeze; converting a bare concrete
    function of a Keras 3 model leaves READ_VARIABLE ops that fail at calibration time.
    Returns the input shape (batch 1).
    """
    tf = _tf()
    shape = (1, *[int(d) for d in model.input_shape[1:]])
    model.export(str(folder), format="tf_saved_model", verbose=False,
                 input_signature=[tf.TensorSpec(shape, tf.float32, name="input")])
    return shape


def convert(model, rep_pixels: np.ndarray | None = None, io: str = "int8") -> bytes:
    """Convert a Keras model to TFLite.

    Args:
        model: Keras model, (None, h, w, c) float32 0..255 in, (None, classes) softmax out.
        rep_pixels: (n, h, w, c) uint8 calibration images for full-integer quantization; None = a float32 model.
        io: interface dtype for a quantized model: int8, uint8 or float32 (float interface, int8 inside).
    Returns:
        the .tflite flatbuffer bytes (batch size 1).
    Raises:
        ValueError: bad ``io`` or calibration data not shaped like the input.
        QuantizationError: the converter failed (first line of its message).
    """
    tf = _tf()
    if io not in IO_TYPES:
        raise ValueError(f"io is {io!r}, expected one of {', '.join(IO_TYPES)}")
    shape = (1, *[int(d) for d in model.input_shape[1:]])
    # Checked before anything is exported or converted.
    rep = representative_dataset(rep_pixels, shape) if rep_pixels is not None else None
    with tempfile.TemporaryDirectory(prefix="edgecnn-export-") as folder:
        _saved_model(model, Path(folder))
        conv = tf.lite.TFLiteConverter.from_saved_model(folder)
        return _run_converter(tf, conv, rep, io)


def _run_converter(tf, conv, rep, io: str) -> bytes:
    if rep is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        # Builtins are allowed as a fallback so that an op without an int8 kernel does not abort conversion:
        # verify_integer() then names it, which is a clearer message than the converter's.
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        dt = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io]
        conv.inference_input_type = dt
        conv.inference_output_type = dt
    from edgecnn.train.fit import quiet_native_stderr

    try:
        with quiet_native_stderr():
            return bytes(conv.convert())
    except Exception as e:  # the converter raises ConverterError, RuntimeError, ValueError ...
        msg = next((ln for ln in str(e).splitlines() if "error" in ln.lower()), str(e).splitlines()[0] if str(e) else "")
        raise QuantizationError(f"TFLite conversion failed: {msg.strip()[:300]}") from None


def shorten_tensor_names(model_bytes: bytes) -> bytes:
    """Rename every tensor except the model inputs and outputs to ``t<index>``.

    The converter names tensors after every TF op fused into them (often 100-300 characters each); in a 100k
    parameter model those strings are ~4% of the file. The interpreter does not use names (signatures refer to
    tensor indices), so this changes nothing at run time. Returns the new flatbuffer bytes.
    """
    import flatbuffers

    from edgecnn.metadata import TFLITE_IDENTIFIER

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    for g in model.subgraphs or []:
        keep = set(int(i) for i in list(g.inputs if g.inputs is not None else []) +
                   list(g.outputs if g.outputs is not None else []))
        for i, t in enumerate(g.tensors or []):
            if i not in keep:
                t.name = f"t{i}"
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _interpreter(model_bytes: bytes):
    from edgecnn.runtime import load_backend

    it = load_backend().interpreter_class(model_content=model_bytes)
    it.allocate_tensors()
    return it


def verify_integer(model_bytes: bytes, io: str, allow_float: bool = False) -> dict:
    """Check a converted model: interface dtypes as asked and every activation tensor integer.

    Args:
        model_bytes: the .tflite flatbuffer.
        io: the interface dtype asked for (int8, uint8 or float32).
        allow_float: report float ops instead of failing on them.
    Returns:
        {"input": {...}, "output": {...} (name, shape, dtype, scale, zero_point), "operators": {name: count},
        "float_ops": [names], "float_tensors": [names of float activation tensors]}
    Raises:
        QuantizationError: an interface dtype differs from ``io``; float ops left and not ``allow_float``.
    """
    from edgecnn.modelinfo import float_ops, operator_counts
    from edgecnn.runtime import TensorInfo

    it = _interpreter(model_bytes)
    ins = [TensorInfo.from_detail(d) for d in it.get_input_details()]
    outs = [TensorInfo.from_detail(d) for d in it.get_output_details()]
    for kind, infos in (("input", ins), ("output", outs)):
        for t in infos:
            if t.dtype != np.dtype(io):
                raise QuantizationError(f"converted model {kind} {t.name!r} is {t.dtype}, expected {io}")
    io_idx = {t.index for t in ins + outs}
    # Float tensors that are not the model interface: activations (or dequantized weights) computed in float.
    float_tensors = sorted(d["name"] for d in it.get_tensor_details()
                           if np.dtype(d["dtype"]).kind == "f" and d["index"] not in io_idx)
    f_ops = float_ops(it)
    if f_ops and not allow_float:
        raise QuantizationError(f"the converter left float ops: {', '.join(f_ops)} "
                                f"({len(float_tensors)} float tensors); expected a fully integer model "
                                "(use --allow-float to accept them)")
    return {"input": ins[0].to_dict(), "output": outs[0].to_dict(), "operators": operator_counts(it),
            "float_ops": f_ops, "float_tensors": float_tensors}


# ---------------------------------------------------------------------------------------------- prediction

def predict_keras(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Keras model scores. x: (N, h, w, c) uint8. Returns (N, classes) float32.

    Converted to float32 one chunk at a time, so a large split is never held as float32 all at once.
    """
    chunk = 16 * batch_size
    parts = [np.asarray(model.predict(x[i:i + chunk].astype(np.float32), batch_size=batch_size, verbose=0),
                        dtype=np.float32) for i in range(0, len(x), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, int(model.output_shape[-1])), np.float32)


def predict_tflite(path: str | Path, x: np.ndarray, progress: bool = True, name: str | None = None) -> np.ndarray:
    """Scores of a .tflite model through :class:`edgecnn.runtime.Classifier`, exactly as on the device.

    x: (N, h, w, c) uint8 pixels already at the model size. Returns (N, classes) float32 (dequantized).
    """
    from tqdm import tqdm

    from edgecnn.runtime import Classifier

    clf = Classifier(path)
    out = np.empty((len(x), clf.num_classes), np.float32)
    for i in tqdm(range(len(x)), desc=f"run {name or Path(path).name}", unit="img", disable=not progress, leave=False):
        out[i] = clf.scores(clf.invoke(clf.tensor_from_pixels(x[i])))
    return out


# -------------------------------------------------------------------------------------------------- metrics

def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) int64 confusion matrix: rows true class, columns predicted class."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (np.asarray(y, np.int64), np.asarray(pred, np.int64)), 1)
    return m


def metrics(y: np.ndarray, scores: np.ndarray, labels: list[str], k: int = DEFAULT_TOP_K) -> dict:
    """Top-1 / top-k accuracy, per-class accuracy and the confusion matrix (pure function).

    Args:
        y: (N,) int true classes; scores: (N, C) float.
        k: the k of top-k (clipped to C).
    Returns:
        {"accuracy": float 0..1, "n": int, "top_k": {"k": int, "accuracy": float}, "per_class": {label: float or
        None when the class has no sample}, "confusion": [[int]], "labels": [...]}
    """
    y = np.asarray(y, np.int64)
    n_cls = scores.shape[1]
    pred = scores.argmax(axis=1)
    k = max(1, min(k, n_cls))
    topk = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    cm = confusion(y, pred, n_cls)
    support = cm.sum(axis=1)
    per_class = {str(labels[i]) if i < len(labels) else str(i):
                 (float(cm[i, i] / support[i]) if support[i] else None) for i in range(n_cls)}
    return {"accuracy": float((pred == y).mean()) if len(y) else 0.0, "n": int(len(y)),
            "top_k": {"k": k, "accuracy": float((topk == y[:, None]).any(axis=1).mean()) if len(y) else 0.0},
            "per_class": per_class, "confusion": cm.tolist(), "labels": [str(x) for x in labels]}


def collapsed_class(y: np.ndarray, pred: np.ndarray, n_classes: int) -> tuple[int, float, float] | None:
    """(class, its share of the predictions, its share of the true labels) when predictions collapse onto one
    class, else None.

    Collapsed: one class takes at least :data:`COLLAPSE_SHARE` of the predictions while it is at most half as
    common among the true labels.
    """
    if len(pred) == 0:
        return None
    counts = np.bincount(pred, minlength=n_classes)
    top = int(counts.argmax())
    share = counts[top] / len(pred)
    true_share = float((np.asarray(y) == top).mean())
    return (top, float(share), true_share) if share >= COLLAPSE_SHARE and share >= 2 * true_share else None


def collapse_warning(y: np.ndarray, pred: np.ndarray, labels: list[str],
                     float_pred: np.ndarray | None = None) -> str | None:
    """A warning when the int8 predictions ``pred`` collapse onto one class (:func:`collapsed_class`), else None.

    The cause it names depends on the float model's predictions ``float_pred``: when they collapse as well, the
    trained model (or the data) is at fault, not the calibration; when only int8 collapses, a broken calibration
    range or input scaling typically is.
    """
    q = collapsed_class(y, pred, len(labels))
    f = collapsed_class(y, float_pred, len(labels)) if float_pred is not None else None
    if f is not None:
        return (f"the float model's predictions already collapse onto class {labels[f[0]]!r} ({100 * f[1]:.1f}% of "
                f"predictions, {100 * f[2]:.1f}% of true labels){', and so do the int8 ones' if q else ''}: the "
                f"trained model or the data is at fault, not the quantization (train longer, check the labels and "
                f"the class balance)")
    if q is not None:
        return (f"int8 predictions collapse onto class {labels[q[0]]!r}: {100 * q[1]:.1f}% of predictions, "
                f"{100 * q[2]:.1f}% of true labels, while the float model's do not (calibration range or input "
                f"scaling wrong?)")
    return None


def plot_confusions(mats: dict[str, np.ndarray], labels: list[str], path: str | Path) -> None:
    """Write side-by-side confusion matrices (rows true, columns predicted; colour = row share) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    fig, axes = plt.subplots(1, len(mats), figsize=(1.2 + 0.55 * n * len(mats) + 2, 0.55 * n + 2), squeeze=False)
    for ax, (title, m) in zip(axes[0], mats.items()):
        m = np.asarray(m)
        rows = np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(m / rows, cmap="Blues", vmin=0, vmax=1)
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    if m[i, j]:
                        ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if m[i, j] / rows[i, 0] > 0.5 else "black")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ file output

def report_paths(out: str | Path) -> tuple[Path, Path]:
    """(report JSON, confusion PNG) written beside MODEL.tflite: ``<stem>_report.json``, ``<stem>_confusion.png``."""
    out = Path(out)
    return out.with_name(out.stem + "_report.json"), out.with_name(out.stem + "_confusion.png")


def check_outputs(paths: list[Path], overwrite: bool) -> None:
    """Raise OutputExistsError naming the first existing output when not ``overwrite``
    (:func:`edgecnn.outputs.refuse_existing`)."""
    for p in paths:
        refuse_existing(p, overwrite)


# -------------------------------------------------------------------------------------------------- quantize

def quantize(model_path: str | Path, spec: str, out: str | Path, opts: QuantizeOptions = QuantizeOptions(),
             log=print, progress: bool = True) -> dict:
    """Quantize a trained model to full-integer TFLite, verify it, and report float vs int8 on held-out data.

    Writes (each through a temporary file in the same folder, renamed only when everything succeeded):
    ``out`` (labels + preprocessing embedded), ``<stem>_report.json``, ``<stem>_confusion.png`` and, when asked,
    the float32 .tflite (also with metadata).

    Args:
        model_path: OUTDIR of edgecnn train, or its model.keras.
        spec: the DATA the model was trained on (calibration from its training split, accuracy on its held-out
            split).
        out: the .tflite path.
    Returns:
        the report dict: model, float_model, data, split, n, io, calibration {split, n, per_class}, input/output
        tensor info, operators, float_ops, float {metrics}, int8 {metrics}, agreement (0..1), drop_pp,
        sizes {int8_bytes, float32_bytes, keras_bytes, int8_to_float32}, warnings, max_drop, passed, seconds.
    Raises:
        DataError, ModelError, QuantizationError, OutputExistsError; QualityGateError after writing everything
        when the drop exceeds ``max_drop``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix != ".tflite":
        raise ValueError(f"output is {out}, expected a path ending in .tflite")
    rep_json, rep_png = report_paths(out)
    float_out = Path(opts.float_out) if opts.float_out else None
    check_outputs([out, rep_json, rep_png] + ([float_out] if float_out else []), opts.overwrite)
    if opts.io not in IO_TYPES:
        raise ValueError(f"io is {opts.io!r}, expected one of {', '.join(IO_TYPES)}")
    for p in [out] + ([float_out] if float_out else []):
        if not p.parent.is_dir():
            raise DataError(f"{p.parent}: no such folder for {p.name}")

    tm = load_trained(model_path)
    seed = tm.seed if opts.seed is None else opts.seed
    val_split = tm.val_split if opts.val_split is None else opts.val_split
    pre = tm.pre if opts.resize is None else replace(tm.pre, resize=opts.resize)
    splits = load_splits(spec, pre, tm.labels, seed, val_split, progress)
    xt, yt = splits.train
    calib_idx = D.balanced_sample(yt, opts.calib_samples, seed)
    calib = xt[calib_idx]
    log(f"calibrating on {len(calib)} training images (class-balanced), io {opts.io}")
    int8_bytes = convert(tm.model, full_range(calib), opts.io)
    float_bytes = convert(tm.model, None)
    if not opts.keep_names:
        int8_bytes, float_bytes = shorten_tensor_names(int8_bytes), shorten_tensor_names(float_bytes)
    from edgecnn.metadata import embed_metadata

    extra = {"training": {"data": tm.report.get("data", {}).get("source"), "seed": seed, "val_split": val_split}}
    int8_bytes = embed_metadata(int8_bytes, tm.labels, pre, extra=extra)
    float_bytes = embed_metadata(float_bytes, tm.labels, pre, extra=extra)
    check = verify_integer(int8_bytes, opts.io, opts.allow_float)

    split = splits.held_out
    xe, ye = splits.get(split)
    with pending_files() as files:
        tmp_model = files.path(out)
        tmp_model.write_bytes(int8_bytes)
        log(f"evaluating float Keras and int8 TFLite on the {split} split ({len(ye)} images)")
        f_scores = predict_keras(tm.model, xe)
        q_scores = predict_tflite(tmp_model, xe, progress, out.name)
        fm = metrics(ye, f_scores, tm.labels)
        qm = metrics(ye, q_scores, tm.labels)
        f_pred, q_pred = f_scores.argmax(1), q_scores.argmax(1)
        warnings = [w for w in [collapse_warning(ye, q_pred, tm.labels, f_pred)] if w]
        if check["float_ops"]:
            warnings.append(f"float ops left (allowed by --allow-float): {', '.join(check['float_ops'])}")
        drop = 100.0 * (fm["accuracy"] - qm["accuracy"])
        passed = opts.max_drop is None or drop <= opts.max_drop
        report = {
            "model": str(out), "float_model": str(tm.path), "data": spec, "split": split, "n": int(len(ye)),
            "io": opts.io,
            "calibration": {"split": "train", "n": int(len(calib)),
                            "per_class": {tm.labels[c]: int(v) for c, v in
                                          enumerate(np.bincount(yt[calib_idx], minlength=len(tm.labels)))}},
            "seed": seed, "val_split": val_split, "preprocessing": pre.to_dict(),
            "input": check["input"], "output": check["output"], "operators": check["operators"],
            "float_ops": check["float_ops"],
            "float": fm, "int8": qm,
            "agreement": float((f_pred == q_pred).mean()),
            "drop_pp": round(drop, 3),
            "sizes": {"int8_bytes": len(int8_bytes), "float32_bytes": len(float_bytes),
                      "keras_bytes": tm.path.stat().st_size,
                      "int8_to_float32": round(len(int8_bytes) / len(float_bytes), 4)},
            "params": tm.report.get("params"), "macs": tm.report.get("macs"),
            "warnings": warnings, "max_drop": opts.max_drop, "passed": passed,
        }
        plot_confusions({f"float Keras ({100 * fm['accuracy']:.2f}%)": np.array(fm["confusion"]),
                         f"int8 TFLite ({100 * qm['accuracy']:.2f}%)": np.array(qm["confusion"])},
                        tm.labels, files.path(rep_png))
        if float_out:
            files.path(float_out).write_bytes(float_bytes)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        files.path(rep_json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for w in warnings:
        log(f"Warning: {w}")
    if not passed:
        raise QualityGateError(f"int8 top-1 {100 * qm['accuracy']:.2f}% is {drop:.2f} points below float "
                               f"{100 * fm['accuracy']:.2f}%, more than --max-drop {opts.max_drop}", report)
    return report


def summary(report: dict) -> str:
    """Human-readable lines for a quantize report."""
    s = report["sizes"]
    f, q = report["float"], report["int8"]
    lines = [f"{report['model']}: {s['int8_bytes']:,} bytes ({100 * s['int8_to_float32']:.1f}% of the float32 "
             f".tflite, {s['float32_bytes']:,} bytes); input {report['input']['dtype']} "
             f"scale={report['input']['scale']:.6g} zero_point={report['input']['zero_point']}",
             f"{report['split']} split, {report['n']} images:",
             f"  float Keras  top-1 {100 * f['accuracy']:.2f}%  top-{f['top_k']['k']} "
             f"{100 * f['top_k']['accuracy']:.2f}%",
             f"  int8 TFLite  top-1 {100 * q['accuracy']:.2f}%  top-{q['top_k']['k']} "
             f"{100 * q['top_k']['accuracy']:.2f}%",
             f"  drop {report['drop_pp']:.2f} points, top-1 agreement {100 * report['agreement']:.2f}%"]
    w = max(len(k) for k in f["per_class"])
    lines.append(f"  {'class':<{w}}  float   int8")
    for k in f["per_class"]:
        a, b = f["per_class"][k], q["per_class"][k]
        lines.append(f"  {k:<{w}}  " + "  ".join(f"{100 * v:5.1f}" if v is not None else "    -" for v in (a, b)))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- evaluate

def training_record(model_bytes: bytes) -> dict:
    """The ``training`` entry (data, seed, val_split) that quantize embeds in edgecnn's metadata record, or {}."""
    from edgecnn.config import METADATA_NAME
    from edgecnn.metadata import metadata_entries

    raw = metadata_entries(model_bytes).get(METADATA_NAME)
    try:
        return dict(json.loads(raw.decode("utf-8")).get("training") or {}) if raw else {}
    except (ValueError, AttributeError, TypeError):
        return {}


def evaluate(model_path: str | Path, spec: str, split: str | None = None, k: int = DEFAULT_TOP_K,
             seed: int | None = None, val_split: float | None = None, progress: bool = True) -> dict:
    """Accuracy of a .keras model (or OUTDIR) or a .tflite model on a split of DATA.

    Args:
        model_path: .tflite file, .keras file or OUTDIR of edgecnn train.
        spec: DATA (see :mod:`edgecnn.train.data`), preprocessed by the model's own record.
        split: test, val or train; None = test where the dataset has one, else val.
        k: top-k.
        seed, val_split: recreate the training split; None = the values recorded at training (train_report.json
            for .keras, the ``training`` metadata entry for .tflite files made by edgecnn quantize), else defaults.
    Returns:
        {"accuracy", "n", "top_k", "per_class", "confusion", "labels", "model", "data", "split", "seconds"}
    Raises:
        DataError, ModelError.
    """
    t0 = time.perf_counter()
    p = Path(model_path)
    if not p.is_dir() and p.suffix not in (".tflite", ".keras"):
        raise ModelError(f"{p}: expected a .tflite model, a .keras model or an OUTDIR of edgecnn train")
    if p.suffix == ".tflite":
        from edgecnn.runtime import Classifier

        clf = Classifier(p)
        labels = [str(x) if x is not None else str(i) for i, x in enumerate(clf.labels)] if clf.labels else None
        pre = clf.preprocessing
        trained = training_record(p.read_bytes())
        seed = int(trained.get("seed", DEFAULT_SEED)) if seed is None else seed
        val_split = float(trained.get("val_split", DEFAULT_VAL_SPLIT)) if val_split is None else val_split
        splits = load_splits(spec, pre, labels, seed, val_split, progress)
        if labels is None:
            if clf.num_classes != len(splits.labels):
                raise DataError(f"{spec}: {len(splits.labels)} classes, the model outputs {clf.num_classes}")
            labels = splits.labels
        split = split or splits.held_out
        x, y = splits.get(split)
        scores = predict_tflite(p, x, progress)
    else:
        tm = load_trained(p)
        labels = tm.labels
        seed = tm.seed if seed is None else seed
        val_split = tm.val_split if val_split is None else val_split
        splits = load_splits(spec, tm.pre, labels, seed, val_split, progress)
        split = split or splits.held_out
        x, y = splits.get(split)
        scores = predict_keras(tm.model, x)
    m = metrics(y, scores, labels, k)
    m.update({"model": str(p), "data": spec, "split": split, "seconds": round(time.perf_counter() - t0, 1)})
    return m


def float_tflite(model_path: str | Path) -> bytes:
    """A Keras model file (.keras / .h5) converted to a float32 .tflite in memory (for ``explain --compare``).

    Raises:
        ModelError: the file cannot be loaded as a Keras model.
        QuantizationError: the converter failed.
    """
    _tf()
    import keras

    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        raise ModelError(f"{model_path}: cannot load the Keras model ({str(e).splitlines()[0][:200]})") from None
    return convert(model)
