"""Training: data pipeline with augmentation, fit with a learning-rate schedule and best-on-validation weights,
as named steps (:func:`prepare_data`, :func:`fit_model`, :func:`train_report`, then
:func:`edgecnn.train.outdir.write_outdir`) [train extra].
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgecnn.config import Preprocessing, TrainOptions
from edgecnn.errors import DataError
from edgecnn.train import data as D
from edgecnn.train import model as M
from edgecnn.train.outdir import check_outdir, write_outdir
from edgecnn.train.tfenv import import_tf


def make_augment(pre: Preprocessing, opts: TrainOptions):
    """A tf.data map function ``(x, y, seed) -> (x, y)`` for one image.

    x: (h, w, c) float32 pixels 0..255; seed: (2,) int64 from ``tf.data.Dataset.random``. Stateless random ops
    make the augmentation a pure function of the seed, so a run is repeatable.
    """
    tf = import_tf()
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
    tf = import_tf()
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


def prepare_data(spec: str, opts: TrainOptions, log=print) -> tuple[D.Dataset, D.Splits]:
    """Load DATA ``spec`` with the preprocessing a new model gets and split it (stratified, seeded); log the counts.

    Returns:
        (the dataset, its splits).

    Raises:
        DataError: unusable data, or nothing left for validation.
    """
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
    return ds, splits


def fit_model(splits: D.Splits, opts: TrainOptions, log=print, verbose: int | None = None):
    """Build the architecture of ``opts`` for ``splits`` and fit it (Adam, cosine decay, seeded and deterministic),
    keeping the best-on-validation weights.

    Returns:
        (model, layer costs, history: one dict per epoch, the best-weights callback with ``best`` and
        ``best_epoch``).
    """
    tf = import_tf()
    import keras

    pre = splits.pre
    keras.utils.set_random_seed(opts.seed)
    tf.config.experimental.enable_op_determinism()
    model = M.build(opts.arch, (pre.height, pre.width, pre.channels), len(splits.labels), opts.width)
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
    return model, costs, history, best


def train_report(spec: str, ds: D.Dataset, splits: D.Splits, opts: TrainOptions, costs, history: list[dict], best,
                 wall_time_s: float) -> dict:
    """The train report written as ``train_report.json`` (keys listed in :func:`train`)."""
    tf = import_tf()
    import keras

    pre = splits.pre
    return {
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
        "wall_time_s": round(wall_time_s, 1),
        "options": asdict(opts),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
    }


def train(spec: str, outdir: str | Path, opts: TrainOptions = TrainOptions(), force: bool = False,
          log=print, verbose: int | None = None) -> dict:
    """Train a model on DATA ``spec`` and write OUTDIR (:mod:`edgecnn.train.outdir`).

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
    ds, splits = prepare_data(spec, opts, log)
    model, costs, history, best = fit_model(splits, opts, log, verbose)
    report = train_report(spec, ds, splits, opts, costs, history, best, time.perf_counter() - t_start)
    write_outdir(outdir, model, splits.labels, splits.pre, report,
                 f"{opts.arch} x{opts.width} on {spec}: best val {100 * best.best:.2f}%")
    log(f"best validation accuracy {100 * best.best:.2f}% at epoch {report['best_epoch']}; "
        f"wrote {outdir} in {report['wall_time_s']:.0f} s")
    return report
