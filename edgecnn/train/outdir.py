"""The training output folder (OUTDIR) contract: its file names, refusing to overwrite it, writing it complete or
not at all, and loading it back [train extra].

``edgecnn train`` writes into OUTDIR:

* ``model.keras``       the Keras model with the best validation accuracy (raw 0..255 pixels in, softmax out)
* ``labels.txt``        class names, one per line, output-index order (:mod:`edgecnn.labels`)
* ``preprocessing.json``  the :class:`edgecnn.config.Preprocessing` record (input size, channels, resize rule,
  mean 0 / std 1)
* ``train_report.json`` parameters, MACs, data counts and split, per-epoch metrics, best validation accuracy,
  wall time (see :func:`edgecnn.train.fit.train` for the keys)
* ``training_curve.png`` loss and accuracy per epoch

Everything is written to a temporary sibling folder that replaces OUTDIR only when it is complete
(:func:`edgecnn.outputs.pending_dir`), so a failed or interrupted run leaves no half-written OUTDIR.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from pathlib import Path

from edgecnn.config import DEFAULT_SEED, DEFAULT_VAL_SPLIT, Preprocessing
from edgecnn.errors import DataError, ModelError
from edgecnn.labels import read_labels, write_labels
from edgecnn.outputs import pending_dir, refuse_nonempty_dir, write_text
from edgecnn.train.report import plot_confusions, plot_curve
from edgecnn.train.tfenv import import_tf

#: File names inside OUTDIR.
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
PREPROCESSING_FILE = "preprocessing.json"
REPORT_FILE = "train_report.json"
CURVE_FILE = "training_curve.png"
CONFUSION_FILE = "confusion.png"


def check_outdir(outdir: str | Path, force: bool) -> None:
    """Raise OutputExistsError when ``outdir`` is an existing non-empty folder (or a file) and not ``force``
    (:func:`edgecnn.outputs.refuse_nonempty_dir`)."""
    refuse_nonempty_dir(outdir, force, "--force")


def write_outdir(outdir: str | Path, model, labels: list[str], pre: Preprocessing, report: dict,
                 curve_title: str = "") -> None:
    """Write a complete OUTDIR (see the module docstring), replacing ``outdir`` only when every file is written.

    Args:
        model: the trained Keras model.
        labels: class names in output-index order.
        pre: the preprocessing record.
        report: the train report (its ``history`` and ``best_epoch`` draw the curve).
        curve_title: title of the training curve.
    Raises:
        OSError: the folder cannot be written.
    """
    with pending_dir(outdir) as tmp:
        model.save(tmp / MODEL_FILE)
        write_labels(tmp / LABELS_FILE, labels)
        write_text(tmp / PREPROCESSING_FILE, json.dumps(pre.to_dict(), indent=2) + "\n")
        write_text(tmp / REPORT_FILE, json.dumps(report, indent=2) + "\n")
        plot_curve(report["history"], report["best_epoch"], tmp / CURVE_FILE, curve_title)
        val = report.get("validation")
        if val:  # the validation confusion matrix of the kept weights
            plot_confusions({f"validation ({100 * val['accuracy']:.2f}%)": np.array(val["confusion"])}, labels,
                            tmp / CONFUSION_FILE)


def load_outdir(path: str | Path) -> tuple[Path, list[str], Preprocessing, dict]:
    """Find a trained model: an OUTDIR or its ``model.keras``.

    Returns:
        (path of model.keras, labels, preprocessing, train report dict or {} when absent)
    Raises:
        ModelError: no model file; DataError: labels or preprocessing file missing beside it.
    """
    p = Path(path)
    if not p.is_dir() and p.suffix != ".keras":
        raise ModelError(f"{p}: expected an OUTDIR of edgecnn train or its model.keras (a .tflite is already "
                         "converted: use edgecnn evaluate / info on it)")
    folder = p if p.is_dir() else p.parent
    model_path = p / MODEL_FILE if p.is_dir() else p
    if not model_path.is_file():
        raise ModelError(f"{model_path}: no such file, expected a .keras model or an OUTDIR from edgecnn train")
    for f in (LABELS_FILE, PREPROCESSING_FILE):
        if not (folder / f).is_file():
            raise DataError(f"{folder / f}: missing; expected beside {model_path.name} (written by edgecnn train)")
    labels = read_labels(folder / LABELS_FILE, plain=True)
    pre = Preprocessing.from_dict(json.loads((folder / PREPROCESSING_FILE).read_text(encoding="utf-8")))
    rep = folder / REPORT_FILE
    report = json.loads(rep.read_text(encoding="utf-8")) if rep.is_file() else {}
    return model_path, labels, pre, report


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
    model_path, labels, pre, report = load_outdir(path)
    import_tf()
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

