"""Training: data pipeline with augmentation, fit with a learning-rate schedule, best-on-validation weights,
and the training report and curve  [train extra].

``train(spec, outdir, options)`` writes into OUTDIR:

* ``model.keras``       the Keras model with the best validation accuracy (raw 0..255 pixels in, softmax out)
* ``labels.txt``        class names, one per line, output-index order
* ``preprocessing.json``  the :class:`edgecnn.config.Preprocessing` record (input size, channels, resize rule,
  mean 0 / std 1)
* ``train_report.json`` parameters, MACs, data counts and split, per-epoch metrics, best validation accuracy,
  wall time (see :func:`train` for the keys)
* ``training_curve.png`` loss and accuracy per epoch

Everything is written to a temporary sibling folder that replaces OUTDIR only when training has finished
(:func:`edgecnn.outputs.pending_dir`), so a failed or interrupted run leaves no half-written OUTDIR.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgecnn.train import data as D
from edgecnn.train import model as M
from edgecnn.config import Preprocessing, TrainOptions, apply_tensorflow_env
from edgecnn.errors import DataError, ModelError
from edgecnn.labels import read_labels, write_labels
from edgecnn.outputs import pending_dir, refuse_nonempty_dir, write_text

MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
PREPROCESSING_FILE = "preprocessing.json"
REPORT_FILE = "train_report.json"
CURVE_FILE = "training_curve.png"


@contextlib.contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 to a temporary file for the duration, and replay it only if an exception escapes.

    TensorFlow's C++ start-up and the TFLite converter print log lines (absl, oneDNN, "fully_quantize: 0 ...") to
    the process's stderr, past Python's ``sys.stderr`` and past ``TF_CPP_MIN_LOG_LEVEL``; this keeps them off the
    user's terminal without losing them when something fails.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some embedded interpreters): nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            os.write(2, capture.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _tf():
    apply_tensorflow_env()
    if "tensorflow" not in sys.modules:
        with quiet_native_stderr():
            import tensorflow  # noqa: F401
    import tensorflow as tf

    return tf


def check_outdir(outdir: str | Path, force: bool) -> None:
    """Raise OutputExistsError when ``outdir`` is an existing non-empty folder (or a file) and not ``force``
    (:func:`edgecnn.outputs.refuse_nonempty_dir`)."""
    refuse_nonempty_dir(outdir, force, "--force")


def make_augment(pre: Preprocessing, opts: TrainOptions):
    """A tf.data map function ``(x, y, seed) -> (x, y)`` for one image.

    x: (h, w, c) float32 pixels 0..255; seed: (2,) int64 from ``tf.data.Dataset.random``. Stateless random ops
    make the augmentation a pure function of the seed, so a run is repeatable.
    """
    tf = _tf()
    h, w, c = pre.height, pre.width, pre.channels
    pad_h, pad_w = int(round(h * opts.shift)), int(round(w * opts.shift))
    delta = float(opts.brightness) * 255.0

    def augment(x, y, seed):
        s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        if opts.flip:
            x = tf.image.stateless_random_flip_left_right(x, seed=s[0])
        if pad_h or pad_w:
            x = tf.pad(x, [[pad_h, pad_h], [pad_w, pad_w], [0, 0]])
            x = tf.image.stateless_random_crop(x, (h, w, c), seed=s[1])
        if delta:
            x = tf.clip_by_value(tf.image.stateless_random_brightness(x, delta, seed=s[2]), 0.0, 255.0)
        return x, y

    return augment


def make_datasets(splits: D.Splits, opts: TrainOptions):
    """tf.data pipelines: (train with shuffle + augmentation, validation). Batches are (B, h, w, c) float32."""
    tf = _tf()
    xt, yt = splits.train
    xv, yv = splits.val
    to_float = lambda x, y: (tf.cast(x, tf.float32), y)  # noqa: E731
    rnd = tf.data.Dataset.random(seed=opts.seed).batch(2)
    train = (tf.data.Dataset.from_tensor_slices((xt, yt))
             .shuffle(len(yt), seed=opts.seed, reshuffle_each_iteration=True)
             .map(to_float))
    train = tf.data.Dataset.zip((train, rnd)).map(lambda xy, s: (xy[0], xy[1], s))
    train = train.map(make_augment(splits.pre, opts), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    train = train.batch(opts.batch_size).prefetch(2)
    val = tf.data.Dataset.from_tensor_slices((xv, yv)).map(to_float).batch(max(256, opts.batch_size)).prefetch(2)
    return train, val


def _best_weights_callback():
    import keras

    class BestWeights(keras.callbacks.Callback):
        """Keep the weights of the epoch with the highest ``val_accuracy`` (first one on ties); restore at the end.
        Also records each epoch's wall time (s) and learning rate into the logs."""

        def __init__(self):
            super().__init__()
            self.best = -1.0
            self.best_epoch = -1
            self.weights = None
            self._t0 = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            logs["seconds"] = time.perf_counter() - self._t0
            lr = self.model.optimizer.learning_rate
            logs["lr"] = float(np.asarray(lr))
            acc = float(logs.get("val_accuracy", -1.0))
            if acc > self.best:
                self.best, self.best_epoch = acc, epoch
                self.weights = [np.copy(v) for v in self.model.get_weights()]

        def on_train_end(self, logs=None):
            if self.weights is not None:
                self.model.set_weights(self.weights)

    return BestWeights()


def plot_curve(history: list[dict], best_epoch: int, path: str | Path, title: str = "") -> None:
    """Write loss and accuracy per epoch (train and validation) as a PNG; the best epoch is marked.

    Args:
        history: one dict per epoch with ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``.
        best_epoch: 1-based epoch number whose weights were kept.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [h["loss"] for h in history], label="train")
    a1.plot(ep, [h["val_loss"] for h in history], label="validation")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss (cross-entropy + L2)")
    a1.legend()
    a2.plot(ep, [100 * h["accuracy"] for h in history], label="train (augmented)")
    a2.plot(ep, [100 * h["val_accuracy"] for h in history], label="validation")
    a2.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
    a2.set_xlabel("epoch")
    a2.set_ylabel("top-1 accuracy (%)")
    a2.legend()
    for a in (a1, a2):
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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


def train(spec: str, outdir: str | Path, opts: TrainOptions = TrainOptions(), force: bool = False,
          log=print, verbose: int | None = None) -> dict:
    """Train a model on DATA ``spec`` and write OUTDIR (see the module docstring).

    Args:
        spec: image folder, ``fashion-mnist``, ``fashion-mnist:PATH`` or ``idx:PATH`` (see :mod:`edgecnn.train.data`).
        outdir: output folder; must be new or empty unless ``force``.
        opts: training options.
        log: receives human-readable progress lines (data counts, skipped files, the parameter/MAC table).
        verbose: Keras fit verbosity; None = progress bar on a terminal, one line per epoch otherwise.
    Returns:
        The train report dict (as written to ``train_report.json``): ``arch``, ``width``, ``params``, ``macs``,
        ``layers`` (per layer: name, type, output_shape, params, macs), ``input`` (preprocessing record),
        ``labels``, ``data`` (source, counts, split sizes, seed, val_split, skipped files), ``epochs``,
        ``history`` (per epoch: loss, accuracy, val_loss, val_accuracy, lr, seconds), ``best_epoch`` (1-based),
        ``best_val_accuracy`` (0..1), ``wall_time_s``, ``options``, ``versions``.
    Raises:
        OutputExistsError, DataError, ValueError.
    """
    t_start = time.perf_counter()
    outdir = Path(outdir)
    check_outdir(outdir, force)
    pre = D.default_preprocessing(spec, opts.img_size, opts.channels, opts.resize)
    ds = D.load(spec, pre, strict=opts.strict)
    log(D.describe(ds))
    splits = D.make_splits(ds, opts.val_split, opts.seed)
    if len(splits.val[1]) == 0:
        raise DataError(f"{spec}: no image left for validation (every class has a single image?); "
                          "expected at least 2 images in some class")
    log(f"split: {len(splits.train[1])} train, {len(splits.val[1])} validation"
        + (f", {len(splits.test[1])} test (official, not used for training)" if splits.test else "")
        + f" (val_split {opts.val_split}, seed {opts.seed})")

    tf = _tf()
    import keras

    keras.utils.set_random_seed(opts.seed)
    tf.config.experimental.enable_op_determinism()
    model = M.build(opts.arch, (pre.height, pre.width, pre.channels), len(ds.labels), opts.width)
    costs = M.layer_costs(model)
    log(M.cost_table(costs))
    train_ds, val_ds = make_datasets(splits, opts)
    steps = int(np.ceil(len(splits.train[1]) / opts.batch_size)) * opts.epochs
    schedule = keras.optimizers.schedules.CosineDecay(opts.lr, decay_steps=steps, alpha=opts.lr_floor)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    best = _best_weights_callback()
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    hist = model.fit(train_ds, validation_data=val_ds, epochs=opts.epochs, callbacks=[best], verbose=verbose,
                     shuffle=False)  # the tf.data pipeline shuffles (seeded)
    history = [{"epoch": i + 1, **{k: float(v[i]) for k, v in hist.history.items()}}
               for i in range(len(hist.history["loss"]))]

    with pending_dir(outdir) as tmp:
        model.save(tmp / MODEL_FILE)
        write_labels(tmp / LABELS_FILE, ds.labels)
        write_text(tmp / PREPROCESSING_FILE, json.dumps(pre.to_dict(), indent=2) + "\n")
        report = {
            "arch": opts.arch, "width": opts.width,
            "params": sum(c.params for c in costs), "macs": sum(c.macs for c in costs),
            "layers": [asdict(c) for c in costs],
            "input": pre.to_dict(), "labels": list(ds.labels),
            "data": {"source": spec, "counts": ds.counts(), "train": len(splits.train[1]),
                     "val": len(splits.val[1]), "test": len(splits.test[1]) if splits.test else 0,
                     "seed": opts.seed, "val_split": opts.val_split,
                     "skipped": [asdict(s) for s in ds.skipped]},
            "epochs": opts.epochs, "history": history,
            "best_epoch": best.best_epoch + 1, "best_val_accuracy": best.best,
            "wall_time_s": round(time.perf_counter() - t_start, 1),
            "options": asdict(opts),
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        }
        write_text(tmp / REPORT_FILE, json.dumps(report, indent=2) + "\n")
        plot_curve(history, report["best_epoch"], tmp / CURVE_FILE,
                   f"{opts.arch} x{opts.width} on {spec}: best val {100 * best.best:.2f}%")
    log(f"best validation accuracy {100 * best.best:.2f}% at epoch {report['best_epoch']}; "
        f"wrote {outdir} in {report['wall_time_s']:.0f} s")
    return report
