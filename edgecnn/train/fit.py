"""Training: data pipeline with augmentation, fit with a learning-rate schedule and best-on-validation weights,
as named steps (:func:`prepare_data`, :func:`fit_model`, :func:`train_report`, then
:func:`edgecnn.train.outdir.write_outdir`) [train extra].
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from edgecnn.config import PHOTO_AUGMENT, SMALL_CLASS_IMAGES, Preprocessing, TrainOptions
from edgecnn.errors import DataError, TrainingError
from edgecnn.train import data as D
from edgecnn.train import model as M
from edgecnn.train.evaluate import metrics, predict_keras
from edgecnn.train.outdir import check_outdir, write_outdir
from edgecnn.preprocess import normalize
from edgecnn.nativelog import quiet_native_stderr
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


def photo_augmenter(opts: TrainOptions):
    """The ``photo`` augmentation as Keras preprocessing layers, seeded from ``opts.seed``.

    Random resized crop (``RandomZoom`` zooming in by up to :data:`PHOTO_AUGMENT` ``zoom`` of each side,
    independently, then ``RandomTranslation``), horizontal flip (``opts.flip``), small rotation, colour jitter
    (brightness, contrast, saturation; ``RandomColorJitter``), reflecting at the borders, then Gaussian pixel noise
    (``GaussianNoise``, :data:`PHOTO_AUGMENT` ``noise``). Called with
    ``training=True`` in the training pipeline only: it is not part of the saved model, so nothing of it runs at
    inference.

    Returns:
        keras.Sequential mapping (B, h, w, 3) float32 0..255 to the same shape (values may leave 0..255 slightly;
        :func:`make_datasets` clips).
    """
    keras = M._keras()
    L = keras.layers
    a, s = PHOTO_AUGMENT, opts.seed
    z = (-a["zoom"], 0.0)
    layers = [L.RandomZoom(z, z, fill_mode="reflect", seed=s + 1),
              L.RandomTranslation(a["translate"], a["translate"], fill_mode="reflect", seed=s + 2)]
    if opts.flip:
        layers.append(L.RandomFlip("horizontal", seed=s + 3))
    sat = (0.5 - a["saturation"] / 2, 0.5 + a["saturation"] / 2)  # Keras' scale: 0.5 = unchanged
    layers += [L.RandomRotation(a["rotation"], fill_mode="reflect", seed=s + 4),
               L.RandomColorJitter((0, 255), brightness_factor=a["brightness"], contrast_factor=a["contrast"],
                                   saturation_factor=sat, seed=s + 5)]
    if a.get("noise"):
        # Keras' GaussianNoise takes a stddev <= 1: applied in 0..1 units.
        layers += [L.Rescaling(1 / 255.0), L.GaussianNoise(a["noise"], seed=s + 6), L.Rescaling(255.0)]
    return keras.Sequential(layers, name="augment")


def make_datasets(splits: D.Splits, opts: TrainOptions):
    """tf.data pipelines: (train with shuffle + augmentation, validation), both normalised by the preprocessing
    record (:func:`edgecnn.preprocess.normalize`: raw pixels for edgecnn's networks, [-1, 1] for MobileNetV2).

    Batches are (B, h, w, c) float32 images and (B, K) float32 one-hot labels (K classes; the loss smooths them);
    ``opts.augment`` picks :func:`make_augment` (``shift``) or :func:`photo_augmenter` (``photo``).
    """
    tf = import_tf()
    pre = splits.pre
    xt, yt = splits.train
    xv, yv = splits.val
    to_float = lambda x, y: (tf.cast(x, tf.float32), y)  # noqa: E731
    norm = lambda x, y: (normalize(x, pre.mean, pre.std), y)  # noqa: E731
    train = (tf.data.Dataset.from_tensor_slices((xt, yt))
             .shuffle(len(yt), seed=opts.seed, reshuffle_each_iteration=True)
             .map(to_float))
    if opts.augment == "photo":
        aug = photo_augmenter(opts)
        train = train.batch(opts.batch_size).map(
            lambda x, y: (tf.clip_by_value(aug(x, training=True), 0.0, 255.0), y))
    else:
        rnd = tf.data.Dataset.random(seed=opts.seed).batch(2)
        train = tf.data.Dataset.zip((train, rnd)).map(lambda xy, s: (xy[0], xy[1], s))
        train = train.map(make_augment(splits.pre, opts), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        train = train.batch(opts.batch_size)
    one_hot = lambda x, y: (x, tf.one_hot(y, len(splits.labels)))  # noqa: E731
    train = train.map(norm).map(one_hot).prefetch(2)
    val = (tf.data.Dataset.from_tensor_slices((xv, yv)).map(to_float).batch(max(256, opts.batch_size))
           .map(norm).map(one_hot).prefetch(2))
    return train, val


def _best_weights_callback():
    import keras

    class BestWeights(keras.callbacks.Callback):
        """Keep the weights of the epoch with the highest ``val_accuracy`` (first one on ties), counted over every
        fit it is given to (both phases of transfer learning); restore them at the end of each fit. Also records
        each epoch's wall time (s) and learning rate into the logs."""

        def __init__(self):
            super().__init__()
            self.best = -1.0
            self.best_epoch = -1  # 0-based over all fits
            self.epochs_seen = 0
            self.saved = None  # [(variable, value)]: by variable, so trainable-flag changes cannot reorder them
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
                self.best, self.best_epoch = acc, self.epochs_seen
                self.saved = [(v, np.copy(v.numpy())) for v in self.model.weights]
            self.epochs_seen += 1

        def on_train_end(self, logs=None):
            for v, value in self.saved or []:
                v.assign(value)

    return BestWeights()


def prepare_data(spec: str, opts: TrainOptions, log=print) -> tuple[D.Dataset, D.Splits, list[str]]:
    """Load and split DATA for training; log the counts and the split. Returns (dataset, splits, warnings)."""
    mean, std = M.input_normalisation(opts.arch)
    pre = replace(D.default_preprocessing(spec, opts.img_size, opts.channels, opts.resize), mean=(mean,), std=(std,))
    ds = D.load(spec, pre, strict=opts.strict)
    log(D.describe(ds))
    warnings = D.small_class_warnings(ds.counts(), SMALL_CLASS_IMAGES)
    for w in warnings:
        log(f"Warning: {w}")
    splits = D.make_splits(ds, opts.val_split, opts.seed)
    if len(splits.val[1]) == 0:
        raise DataError(f"{spec}: no image left for validation (every class has a single image?); "
                          "expected at least 2 images in some class")
    log(f"split: {len(splits.train[1])} train, {len(splits.val[1])} validation"
        + (f", {len(splits.test[1])} test (official, not used for training)" if splits.test else "")
        + f" (val_split {opts.val_split}, seed {opts.seed})")
    return ds, splits, warnings


def weights_source(opts: TrainOptions, size: int) -> str | None:
    """Where the pretrained weights come from: ``opts.weights``; else a copy in Keras' cache
    (:func:`edgecnn.train.model.find_cached_weights`); else ``"imagenet"`` (Keras downloads and caches them). None when
    training from random weights."""
    if not opts.transfer:
        return None
    if opts.weights:
        return str(opts.weights)
    cached = M.find_cached_weights(opts.alpha, size)
    return str(cached) if cached else "imagenet"


def phase_plan(opts: TrainOptions) -> list[tuple[str, int, float]]:
    """[(phase, epochs, peak learning rate)]: ``head`` then ``fine-tune`` for a pretrained model (a phase with 0
    epochs is left out), else one ``train`` phase."""
    if not opts.transfer:
        return [("train", opts.epochs, opts.lr)]
    plan = [("head", opts.head_epochs, opts.lr), ("fine-tune", opts.epochs, opts.fine_tune_lr)]
    return [p for p in plan if p[1] > 0]


def fit_phases(model, train_ds, val_ds, opts: TrainOptions, steps_per_epoch: int, verbose: int, log):
    """Run :func:`phase_plan`: per phase choose the trainable layers (:func:`edgecnn.train.model.set_phase`), compile
    Adam with a cosine decay over the phase and cross-entropy with ``opts.label_smoothing``, fit. One
    best-on-validation callback spans all phases.

    Returns:
        (history: per epoch {epoch (1-based over all phases), phase, loss, accuracy, val_loss, val_accuracy, lr,
        seconds}, phases: per phase {name, epochs, first_epoch, lr, trainable_params, best_val_accuracy,
        seconds}, the callback (``best``, ``best_epoch``)).
    """
    import keras

    best = _best_weights_callback()
    history, phases = [], []
    for name, epochs, lr in phase_plan(opts):
        t0 = time.perf_counter()
        if name != "train":
            n_train = M.set_phase(model, name, opts.fine_tune_from)
        else:
            n_train = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
        log(f"phase {name}: {epochs} epochs, peak lr {lr:g}, {n_train:,} trainable parameters"
            + (f" (blocks {opts.fine_tune_from}.. of the backbone, BatchNorm frozen)" if name == "fine-tune" else "")
            + (f", label smoothing {opts.label_smoothing:g}" if opts.label_smoothing else ""))
        schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps_per_epoch * epochs,
                                                          alpha=opts.lr_floor)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=opts.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                         callbacks=[keras.callbacks.TerminateOnNaN(), best], verbose=verbose,
                         shuffle=False)  # the tf.data pipeline shuffles (seeded)
        first = len(history) + 1
        check_finite_loss(hist.history["loss"], name, first, lr)
        history += [{"epoch": first + i, "phase": name, **{k: float(v[i]) for k, v in hist.history.items()}}
                    for i in range(len(hist.history["loss"]))]
        phases.append({"name": name, "epochs": epochs, "first_epoch": first, "lr": lr,
                       "trainable_params": n_train,
                       "best_val_accuracy": max(h["val_accuracy"] for h in history[first - 1:]),
                       "seconds": round(time.perf_counter() - t0, 1)})
    return history, phases, best


def check_finite_loss(losses: list[float], phase: str, first_epoch: int, lr: float) -> None:
    """Raise TrainingError when a phase's loss became NaN or infinite (Keras' ``TerminateOnNaN`` has stopped it).

    Args:
        losses: the phase's per-epoch training loss; first_epoch: 1-based number of its first epoch over all
            phases; lr: the phase's peak learning rate, named in the message.
    """
    bad = next((i for i, v in enumerate(losses) if not np.isfinite(v)), None)
    if bad is not None:
        flag = "--fine-tune-lr" if phase == "fine-tune" else "--lr"
        raise TrainingError(f"training diverged: the loss became {losses[bad]} in epoch {first_epoch + bad} "
                            f"({phase} phase, peak learning rate {lr:g}); nothing was written. Expected a finite "
                            f"loss: try a lower {flag}")


def validation_report(model, splits: D.Splits) -> dict:
    """Metrics of the kept weights on the validation split (:func:`edgecnn.train.evaluate.metrics`: accuracy,
    per-class precision and recall, confusion matrix)."""
    xv, yv = splits.val
    return metrics(yv, predict_keras(model, xv, splits.pre), splits.labels)


def per_class_text(m: dict) -> str:
    """Lines: per class, its validation images, precision and recall (%), the weakest recall marked."""
    names = list(m["recall"])
    w = max(len(k) for k in names + ["class"])
    rec = {k: v for k, v in m["recall"].items() if v is not None}
    weak = min(rec, key=rec.get) if rec else None
    fmt = lambda v: f"{100 * v:6.1f}" if v is not None else "     -"  # noqa: E731
    lines = [f"  {'class':<{w}}  {'images':>6}  {'precision':>9}  {'recall':>6}"]
    lines += [f"  {k:<{w}}  {m['support'][k]:>6}  {fmt(m['precision'][k]):>9}  {fmt(m['recall'][k])}"
              + ("  <- weakest" if k == weak and len(rec) > 1 else "") for k in names]
    return "\n".join(lines)


def train(spec: str, outdir: str | Path, opts: TrainOptions = TrainOptions(), force: bool = False,
          log=print, verbose: int | None = None) -> dict:
    """Train a model on DATA ``spec`` and write OUTDIR (see the module docstring).

    Args:
        spec: image folder, ``fashion-mnist``, ``fashion-mnist:PATH`` or ``idx:PATH`` (see :mod:`edgecnn.data`).
        outdir: output folder; must be new or empty unless ``force``.
        opts: training options (None fields get their defaults, :meth:`TrainOptions.resolved`).
        log: receives human-readable progress lines (data counts, skipped files, the parameter/MAC table).
        verbose: Keras fit verbosity; None = progress bar on a terminal, one line per epoch otherwise.
    Returns:
        The train report dict (as written to ``train_report.json``): ``arch``, ``width`` (alpha for mobilenetv2),
        ``pretrained`` (None or {name, weights}), ``params``, ``macs``, ``layers`` (per layer: name, type,
        output_shape, params, macs), ``input`` (preprocessing record), ``labels``, ``data`` (source, counts,
        split sizes, seed, val_split, skipped files), ``epochs``, ``phases`` (see :func:`fit_phases`),
        ``history`` (per epoch: phase, loss, accuracy, val_loss, val_accuracy, lr, seconds), ``best_epoch``
        (1-based), ``best_val_accuracy`` (0..1), ``validation`` (metrics of the kept weights: per-class precision,
        recall, confusion), ``warnings``, ``wall_time_s``, ``options``, ``versions``.
    Raises:
        OutputExistsError, DataError, edgecnn.errors.ModelError (pretrained weights), TrainingError (the loss
        became NaN or infinite), ValueError.
    """
    t_start = time.perf_counter()
    opts = opts.resolved()
    outdir = Path(outdir)
    check_outdir(outdir, force)
    if opts.weights:  # a wrong file is reported before the data are read
        M.check_weights_file(opts.weights, opts.alpha)
    ds, splits, warnings = prepare_data(spec, opts, log)
    pre = ds.pre

    tf = import_tf()
    import keras

    keras.utils.set_random_seed(opts.seed)
    tf.config.experimental.enable_op_determinism()
    weights = weights_source(opts, pre.height)
    if weights:
        log(f"pretrained: ImageNet weights from {weights if weights != 'imagenet' else 'Keras (download)'}")
    width = opts.alpha if opts.arch == "mobilenetv2" else opts.width
    with quiet_native_stderr():
        model = M.build(opts.arch, (pre.height, pre.width, pre.channels), len(ds.labels), width, weights=weights)
    costs = M.layer_costs(model)
    log(M.cost_table(costs))
    train_ds, val_ds = make_datasets(splits, opts)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    steps = int(np.ceil(len(splits.train[1]) / opts.batch_size))
    history, phases, best = fit_phases(model, train_ds, val_ds, opts, steps, verbose, log)
    val = validation_report(model, splits)
    log(f"validation split, kept weights (epoch {best.best_epoch + 1}): top-1 {100 * val['accuracy']:.2f}%\n"
        + per_class_text(val))

    report = {
        "arch": opts.arch, "width": width,
        "pretrained": {"name": opts.pretrained, "weights": weights} if weights else None,
        "params": sum(c.params for c in costs), "macs": sum(c.macs for c in costs),
        "layers": [asdict(c) for c in costs],
        "input": pre.to_dict(), "labels": list(ds.labels),
        "data": {"source": spec, "counts": ds.counts(), "train": len(splits.train[1]),
                 "val": len(splits.val[1]), "test": len(splits.test[1]) if splits.test else 0,
                 "seed": opts.seed, "val_split": opts.val_split,
                 "skipped": [asdict(s) for s in ds.skipped]},
        "epochs": len(history), "phases": phases, "history": history,
        "best_epoch": best.best_epoch + 1, "best_val_accuracy": best.best,
        "validation": val, "warnings": warnings,
        "wall_time_s": round(time.perf_counter() - t_start, 1),
        "options": asdict(opts),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
    }
    write_outdir(outdir, model, splits.labels, pre, report,
                 f"{opts.arch} x{width} on {spec}: best val {100 * best.best:.2f}%")
    log(f"best validation accuracy {100 * best.best:.2f}% at epoch {report['best_epoch']}; "
        f"wrote {outdir} in {report['wall_time_s']:.0f} s")
    return report
