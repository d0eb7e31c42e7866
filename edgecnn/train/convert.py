"""Full-integer post-training quantization: the representative dataset, conversion, int8 verification, and
``edgecnn quantize`` as named steps [train extra].

Conversion exports the Keras model as a SavedModel with a fixed (1, h, w, c) float32 signature
(``keras.Model.export``) and converts that with ``tf.lite.TFLiteConverter.from_saved_model``. That path works for
Keras 3 models on TF >= 2.16, where ``from_keras_model`` fails for some models (it expects the Keras 2 tracing
API) and a bare concrete function leaves unfrozen READ_VARIABLE ops.

Quantization follows the TFLite 8-bit scheme (https://ai.google.dev/edge/litert/models/quantization_spec):
int8 activations with per-tensor scale / zero point, int8 weights with per-channel scales, int32 biases.
The calibration (representative) data are training-split images, drawn class-balanced, preprocessed by the shared
:func:`edgecnn.preprocess.to_pixels` and normalised by the model's recorded mean/std exactly as in training
(:func:`edgecnn.preprocess.normalize`: raw 0..255 for edgecnn's own networks, which rescale inside; [-1, 1] for
MobileNetV2), each sample shaped like the model input.

The float-vs-int8 comparison is measured by :mod:`edgecnn.train.evaluate` and reported by
:mod:`edgecnn.train.report`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgecnn.config import IO_TYPES, Preprocessing, QuantizeOptions
from edgecnn.errors import DataError, ModelError, QualityGateError, QuantizationError
from edgecnn.metadata import TFLITE_IDENTIFIER, embed_metadata, tflite_schema
from edgecnn.modelinfo import TensorInfo, float_ops, operator_counts
from edgecnn.outputs import pending_files, refuse_existing
from edgecnn.runtime import load_backend
from edgecnn.train import data as D
from edgecnn.preprocess import normalize
from edgecnn.train.evaluate import collapse_warning, load_splits, metrics, predict_keras, predict_tflite
from edgecnn.train.outdir import TrainedModel, load_trained
from edgecnn.train.report import plot_quantize_confusions, quantize_report, report_paths
from edgecnn.nativelog import quiet_native_stderr
from edgecnn.train.tfenv import import_tf


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


def representative_dataset(pixels: np.ndarray, input_shape: tuple[int, ...], pre: Preprocessing | None = None):
    """The converter's ``representative_dataset``: a callable yielding ``[sample]`` lists.

    Args:
        pixels: (n, h, w, c) uint8 calibration images.
        input_shape: (1, h, w, c) model input shape.
        pre: the model's preprocessing record; its mean/std normalise the samples exactly as in training
            (:func:`edgecnn.preprocess.normalize`). None = raw pixels.
    Returns:
        a zero-argument generator function; each sample is (1, h, w, c) float32: raw pixels 0..255 for edgecnn's
        own networks (mean 0, std 1), [-1, 1] for MobileNetV2.
    Raises:
        ValueError: from :func:`check_representative`, before anything is converted.
    """
    mean, std = (pre.mean, pre.std) if pre is not None else (None, None)
    samples = [normalize(p[None], mean, std) for p in pixels]
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
    tf = import_tf()
    shape = (1, *[int(d) for d in model.input_shape[1:]])
    model.export(str(folder), format="tf_saved_model", verbose=False,
                 input_signature=[tf.TensorSpec(shape, tf.float32, name="input")])
    return shape


def convert(model, rep_pixels: np.ndarray | None = None, io: str = "int8", pre: Preprocessing | None = None) -> bytes:
    """Convert a Keras model to TFLite.

    Args:
        model: Keras model, (None, h, w, c) float32 normalised pixels in (``pre``), (None, classes) softmax out.
        rep_pixels: (n, h, w, c) uint8 calibration images for full-integer quantization; None = a float32 model.
        io: interface dtype for a quantized model: int8, uint8 or float32 (float interface, int8 inside).
        pre: the model's preprocessing record (normalises the calibration images); None = raw pixels.
    Returns:
        the .tflite flatbuffer bytes (batch size 1).
    Raises:
        ValueError: bad ``io`` or calibration data not shaped like the input.
        QuantizationError: the converter failed (first line of its message).
    """
    tf = import_tf()
    if io not in IO_TYPES:
        raise ValueError(f"io is {io!r}, expected one of {', '.join(IO_TYPES)}")
    shape = (1, *[int(d) for d in model.input_shape[1:]])
    # Checked before anything is exported or converted.
    rep = representative_dataset(rep_pixels, shape, pre) if rep_pixels is not None else None
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

    schema = tflite_schema()
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


def _interpreter(model_bytes: bytes):
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


# -------------------------------------------------------------------------------------------------- quantize

def check_outputs(paths: list[Path], overwrite: bool) -> None:
    """Raise OutputExistsError naming the first existing output when not ``overwrite``
    (:func:`edgecnn.outputs.refuse_existing`)."""
    for p in paths:
        refuse_existing(p, overwrite)


@dataclass(frozen=True)
class Targets:
    """The files ``edgecnn quantize`` writes: the int8 model, its report JSON and confusion PNG
    (:func:`edgecnn.train.report.report_paths`), and the float32 model when asked for."""

    model: Path
    report: Path
    confusion: Path
    float_model: Path | None = None

    def all(self) -> list[Path]:
        return [self.model, self.report, self.confusion] + ([self.float_model] if self.float_model else [])


def check_targets(out: str | Path, opts: QuantizeOptions) -> Targets:
    """The files quantize will write, checked before any work: a .tflite name, nothing overwritten without
    ``opts.overwrite``, a known ``opts.io``, folders that exist.

    Raises:
        ValueError: not a .tflite name, or an unknown io; OutputExistsError; DataError: a missing folder.
    """
    out = Path(out)
    if out.suffix != ".tflite":
        raise ValueError(f"output is {out}, expected a path ending in .tflite")
    targets = Targets(out, *report_paths(out), Path(opts.float_out) if opts.float_out else None)
    check_outputs(targets.all(), opts.overwrite)
    if opts.io not in IO_TYPES:
        raise ValueError(f"io is {opts.io!r}, expected one of {', '.join(IO_TYPES)}")
    for p in [out] + ([targets.float_model] if targets.float_model else []):
        if not p.parent.is_dir():
            raise DataError(f"{p.parent}: no such folder for {p.name}")
    return targets


def convert_pair(tm: TrainedModel, calib: np.ndarray, pre: Preprocessing, training: dict,
                 opts: QuantizeOptions) -> tuple[bytes, bytes]:
    """(int8, float32) .tflite bytes of ``tm.model``, calibrated on ``calib`` ((n, h, w, c) uint8), tensor names
    shortened unless ``opts.keep_names``, labels, preprocessing and the ``training`` record embedded."""
    int8_bytes = convert(tm.model, full_range(calib), opts.io, tm.pre)
    float_bytes = convert(tm.model, None)
    if not opts.keep_names:
        int8_bytes, float_bytes = shorten_tensor_names(int8_bytes), shorten_tensor_names(float_bytes)
    extra = {"training": training}
    return (embed_metadata(int8_bytes, tm.labels, pre, extra=extra),
            embed_metadata(float_bytes, tm.labels, pre, extra=extra))


def compare(tm: TrainedModel, int8_path: Path, x: np.ndarray, y: np.ndarray, name: str,
            progress: bool) -> tuple[dict, dict, float, list[str]]:
    """Float Keras vs the int8 .tflite at ``int8_path`` on (x, y): (float metrics, int8 metrics, top-1 agreement
    0..1, collapse warnings)."""
    f_scores = predict_keras(tm.model, x, tm.pre)
    q_scores = predict_tflite(int8_path, x, progress, name)
    f_pred, q_pred = f_scores.argmax(1), q_scores.argmax(1)
    warnings = [w for w in [collapse_warning(y, q_pred, tm.labels, f_pred)] if w]
    return (metrics(y, f_scores, tm.labels), metrics(y, q_scores, tm.labels), float((f_pred == q_pred).mean()),
            warnings)


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
        tensor info, operators, float_ops, float {metrics}, int8 {metrics}, agreement (0..1), drop_pp, one_image_pp
        (what one held-out image weighs in the accuracies, points),
        sizes {int8_bytes, float32_bytes, keras_bytes, int8_to_float32}, warnings, max_drop, passed, seconds.
    Raises:
        DataError, ModelError, QuantizationError, OutputExistsError; QualityGateError after writing everything
        when the drop exceeds ``max_drop``.
    """
    t0 = time.perf_counter()
    targets = check_targets(out, opts)
    tm = load_trained(model_path)
    seed = tm.seed if opts.seed is None else opts.seed
    val_split = tm.val_split if opts.val_split is None else opts.val_split
    pre = tm.pre if opts.resize is None else replace(tm.pre, resize=opts.resize)
    splits = load_splits(spec, pre, tm.labels, seed, val_split, progress)
    xt, yt = splits.train
    calib_idx = D.balanced_sample(yt, opts.calib_samples, seed)
    log(f"calibrating on {len(calib_idx)} training images (class-balanced), io {opts.io}")
    training = {"data": tm.report.get("data", {}).get("source"), "seed": seed, "val_split": val_split}
    int8_bytes, float_bytes = convert_pair(tm, xt[calib_idx], pre, training, opts)
    check = verify_integer(int8_bytes, opts.io, opts.allow_float)
    split = splits.held_out
    xe, ye = splits.get(split)
    with pending_files() as files:
        tmp_model = files.path(targets.model)
        tmp_model.write_bytes(int8_bytes)
        log(f"evaluating float Keras and int8 TFLite on the {split} split ({len(ye)} images)")
        fm, qm, agreement, warnings = compare(tm, tmp_model, xe, ye, targets.model.name, progress)
        report = quantize_report(
            targets, tm, spec, split, opts, check, fm, qm, agreement, warnings,
            calibration={"split": "train", "n": int(len(calib_idx)),
                         "per_class": {tm.labels[c]: int(v) for c, v in
                                       enumerate(np.bincount(yt[calib_idx], minlength=len(tm.labels)))}},
            split_record={"seed": seed, "val_split": val_split, "preprocessing": pre.to_dict()},
            sizes=(len(int8_bytes), len(float_bytes)))
        plot_quantize_confusions(report, tm.labels, files.path(targets.confusion))
        if targets.float_model:
            files.path(targets.float_model).write_bytes(float_bytes)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        files.path(targets.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for w in report["warnings"]:
        log(f"Warning: {w}")
    if not report["passed"]:
        raise QualityGateError(f"int8 top-1 {100 * qm['accuracy']:.2f}% is {report['drop_pp']:.2f} points below "
                               f"float {100 * fm['accuracy']:.2f}%, more than --max-drop {opts.max_drop} (on "
                               f"{report['n']} {report['split']} images, one image is {report['one_image_pp']:.2f} "
                               f"points)", report)
    return report


def float_tflite(model_path: str | Path) -> bytes:
    """A Keras model file (.keras / .h5) converted to a float32 .tflite in memory (for ``explain --compare``).

    Raises:
        ModelError: the file cannot be loaded as a Keras model.
        QuantizationError: the converter failed.
    """
    import_tf()
    import keras

    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as e:  # Keras raises many types for a bad file
        raise ModelError(f"{model_path}: cannot load the Keras model ({str(e).splitlines()[0][:200]})") from None
    return convert(model)
