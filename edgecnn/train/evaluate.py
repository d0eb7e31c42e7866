"""Accuracy on held-out data: scores of a Keras or .tflite model on a split of DATA, top-1/top-k, per-class
accuracy, the confusion matrix and collapse warnings [train extra].

A .tflite model runs through :class:`edgecnn.runtime.Classifier`, exactly as on the device. Accuracies are measured
on held-out data: the official test split when the dataset has one, else the validation split (recreated from the
seed and fraction recorded at training).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgecnn.config import DEFAULT_SEED, DEFAULT_TOP_K, DEFAULT_VAL_SPLIT, Preprocessing
from edgecnn.errors import DataError, ModelError
from edgecnn.metadata import read_metadata
from edgecnn.preprocess import normalize
from edgecnn.runtime import Classifier
from edgecnn.train import data as D
from edgecnn.train.outdir import load_trained

#: Int8 predictions are called collapsed when one class takes at least this share of them while being at most
#: half as common in the true labels.
COLLAPSE_SHARE = 0.5


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


def predict_keras(model, x: np.ndarray, pre: Preprocessing | None = None, batch_size: int = 256) -> np.ndarray:
    """Keras model scores. x: (N, h, w, c) uint8, normalised by ``pre`` (mean/std; None = raw pixels) as in
    training. Returns (N, classes) float32.

    Converted to float32 one chunk at a time, so a large split is never held as float32 all at once.
    """
    chunk = 16 * batch_size
    mean, std = (pre.mean, pre.std) if pre is not None else (None, None)
    parts = [np.asarray(model.predict(normalize(x[i:i + chunk], mean, std), batch_size=batch_size, verbose=0),
                        dtype=np.float32) for i in range(0, len(x), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, int(model.output_shape[-1])), np.float32)


def predict_tflite(path: str | Path, x: np.ndarray, progress: bool = True, name: str | None = None) -> np.ndarray:
    """Scores of a .tflite model through :class:`edgecnn.runtime.Classifier`, exactly as on the device.

    x: (N, h, w, c) uint8 pixels already at the model size. Returns (N, classes) float32 (dequantized).
    """
    from tqdm import tqdm

    clf = Classifier(path)
    out = np.empty((len(x), clf.num_classes), np.float32)
    for i in tqdm(range(len(x)), desc=f"run {name or Path(path).name}", unit="img", disable=not progress, leave=False):
        out[i] = clf.scores(clf.invoke(clf.tensor_from_pixels(x[i])))
    return out


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
        {"accuracy": float 0..1, "n": int, "top_k": {"k": int, "accuracy": float}, "per_class": {label: recall,
        float or None when the class has no sample}, "recall" (the same), "precision": {label: float or None when
        nothing was predicted as it}, "support": {label: int}, "confusion": [[int]] (rows true, columns
        predicted), "labels": [...]}
    """
    y = np.asarray(y, np.int64)
    n_cls = scores.shape[1]
    pred = scores.argmax(axis=1)
    k = max(1, min(k, n_cls))
    topk = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    cm = confusion(y, pred, n_cls)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    names = [str(labels[i]) if i < len(labels) else str(i) for i in range(n_cls)]
    per_class = {names[i]: (float(cm[i, i] / support[i]) if support[i] else None) for i in range(n_cls)}
    precision = {names[i]: (float(cm[i, i] / predicted[i]) if predicted[i] else None) for i in range(n_cls)}
    return {"accuracy": float((pred == y).mean()) if len(y) else 0.0, "n": int(len(y)),
            "top_k": {"k": k, "accuracy": float((topk == y[:, None]).any(axis=1).mean()) if len(y) else 0.0},
            "per_class": per_class, "recall": dict(per_class), "precision": precision,
            "support": {names[i]: int(support[i]) for i in range(n_cls)},
            "confusion": cm.tolist(), "labels": [str(x) for x in labels]}


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


def training_record(model_bytes: bytes) -> dict:
    """The ``training`` entry (data, seed, val_split) that quantize embeds in edgecnn's metadata record, or {}
    (:attr:`edgecnn.metadata.ModelMetadata.training`)."""
    return read_metadata(model_bytes).training


def _tflite_split(path: Path, spec: str, split: str | None, seed: int | None, val_split: float | None,
                  progress: bool) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(y, scores, labels, split name) of a .tflite model on a split of DATA, split as recorded in its metadata."""
    clf = Classifier(path)
    labels = [str(x) if x is not None else str(i) for i, x in enumerate(clf.labels)] if clf.labels else None
    trained = clf.metadata.training
    seed = int(trained.get("seed", DEFAULT_SEED)) if seed is None else seed
    val_split = float(trained.get("val_split", DEFAULT_VAL_SPLIT)) if val_split is None else val_split
    splits = load_splits(spec, clf.preprocessing, labels, seed, val_split, progress)
    if labels is None:
        if clf.num_classes != len(splits.labels):
            raise DataError(f"{spec}: {len(splits.labels)} classes, the model outputs {clf.num_classes}")
        labels = splits.labels
    split = split or splits.held_out
    x, y = splits.get(split)
    return y, predict_tflite(path, x, progress), labels, split


def _keras_split(path: Path, spec: str, split: str | None, seed: int | None, val_split: float | None,
                 progress: bool) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(y, scores, labels, split name) of a Keras model (or OUTDIR) on a split of DATA, split as in training."""
    tm = load_trained(path)
    seed = tm.seed if seed is None else seed
    val_split = tm.val_split if val_split is None else val_split
    splits = load_splits(spec, tm.pre, tm.labels, seed, val_split, progress)
    split = split or splits.held_out
    x, y = splits.get(split)
    return y, predict_keras(tm.model, x, tm.pre), tm.labels, split


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
    scores_of = _tflite_split if p.suffix == ".tflite" else _keras_split
    y, scores, labels, split = scores_of(p, spec, split, seed, val_split, progress)
    m = metrics(y, scores, labels, k)
    m.update({"model": str(p), "data": spec, "split": split, "seconds": round(time.perf_counter() - t0, 1)})
    return m
