"""Build a real-size photo classifier .tflite: ImageNet MobileNetV2 (alpha 0.35) + a head fitted on flowers5.

    python tools/build_photo_model.py -o mnv2_224_uint8.tflite                      # 224x224 uint8 (the default)
    python tools/build_photo_model.py --size 96 --dtype int8 -o mnv2_96_int8.tflite
    python tools/build_photo_model.py --alpha 1.0 --random-backbone -o mnv2_1.0_224_uint8_timing.tflite

What it makes is what published TFLite classifiers look like: a full-integer model (uint8 or int8 input and
output, int8 inside) whose input is ``(pixel - 127.5) / 127.5`` (MobileNetV2's own preprocessing, inputs in
[-1, 1]) and that says so in **TFLite Support metadata** (``NormalizationOptions`` mean 127.5, std 127.5, the labels
in an appended zip), the form the ImageNet MobileNets on Kaggle/TF Hub and MediaPipe's classifiers take. Its scores
mean something: the backbone carries ImageNet weights (a local ``.h5``, nothing is downloaded) and a softmax
head is fitted on frozen features of the flowers5 train split (the photos whose number is not divisible by 5).
Photos reach the model through edgecnn's shared preprocessing (:func:`edgecnn.preprocess.to_pixels`, centre crop,
and :func:`edgecnn.preprocess.to_input` with mean/std 127.5), so training, calibration and the device agree.

Only alpha 0.35 ImageNet weights are at hand (nothing is downloaded), so another ``--alpha`` needs
``--random-backbone``: the same network with Keras' random initial weights, for timing only (same ops, shapes and
MACs as the ImageNet model, so the same invoke time; its top-1 means nothing).

Prints the head's top-1 on the flowers5 test split (float Keras) and that of the .tflite through
``edgecnn.runtime.Classifier`` on the same photos. Needs ``edgecnn[train]`` (TensorFlow); takes about a minute
at 96 px and a few at 224 px on two cores.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.outputs import write_bytes  # noqa: E402

from shared_data import FLOWERS5, MOBILENETV2_035_WEIGHTS  # noqa: E402  (tools/ is on sys.path)

WEIGHTS = MOBILENETV2_035_WEIGHTS
DATA = FLOWERS5
#: MobileNetV2's input normalisation (keras.applications.mobilenet_v2.preprocess_input: x / 127.5 - 1).
MEAN, STD = (127.5,), (127.5,)
ALPHA = 0.35
#: Calibration images for full-integer quantization (from the train split).
CALIBRATION = 200
HEAD_EPOCHS = 40
SEED = 0


def log(msg: str) -> None:
    click.echo(msg, err=True)


def is_test_photo(path: str | Path) -> bool:
    """flowers5's fixed split: test photos are those whose number is divisible by 5 (README of the data)."""
    return int(Path(path).stem) % 5 == 0


def load_photos(data: Path, size: int):
    """(x_train, y_train, x_test, y_test, labels, test paths): (n, size, size, 3) uint8 RGB through the shared
    preprocessing (centre crop, INTER_AREA-quality resize)."""
    from edgecnn.config import Preprocessing
    from edgecnn.train.data import scan_folder

    ds = scan_folder(data, Preprocessing(size, size, 3, resize="center-crop"), progress=False)
    if ds.paths is None or not len(ds.x):
        raise click.ClickException(f"{data}: no photos found (expected DATA/<class>/NNNN.jpg)")
    test = np.array([is_test_photo(p) for p in ds.paths])
    paths = [p for p, t in zip(ds.paths, test) if t]
    return ds.x[~test], ds.y[~test], ds.x[test], ds.y[test], list(ds.labels), paths


def normalise(pixels: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) uint8 -> float32 ``(pixel - 127.5) / 127.5``, by the device's own rule (to_input)."""
    from edgecnn.preprocess import to_input

    return to_input(pixels, pixels.shape, np.float32, mean=MEAN, std=STD)


def build_keras(size: int, classes: int, weights: Path | None, x_train: np.ndarray, y_train: np.ndarray,
                alpha: float = ALPHA):
    """MobileNetV2 ``alpha`` (ImageNet weights from ``weights``, or random when None; frozen) + global average
    pooling + a softmax Dense fitted on its features. Returns the Keras model."""
    import keras

    keras.utils.set_random_seed(SEED)
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False,
                                              weights=str(weights) if weights else None, pooling="avg")
    backbone.trainable = False
    feats = backbone.predict(normalise(x_train), batch_size=64, verbose=0)
    head = keras.Sequential([keras.Input(feats.shape[1:]), keras.layers.Dense(classes, activation="softmax")])
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    head.fit(feats, y_train, epochs=HEAD_EPOCHS, batch_size=64, verbose=0)
    inp = keras.Input((size, size, 3))
    return keras.Model(inp, head(backbone(inp)))


def convert(model, calibration: np.ndarray, dtype: str) -> bytes:
    """Full-integer TFLite conversion with ``dtype`` (uint8/int8) input and output, calibrated on normalised
    real photos."""
    import tensorflow as tf

    from edgecnn.nativelog import quiet_native_stderr

    samples = normalise(calibration)

    def rep():
        for s in samples:
            yield [s[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = {"uint8": tf.uint8, "int8": tf.int8}[dtype]
    # The converter exports the Keras model first, which prints its signature ("Saved artifact at ...") to stdout.
    with quiet_native_stderr(), contextlib.redirect_stdout(io.StringIO()):
        return bytes(conv.convert())


def tflite_top1(path: Path, photos: list[str], y: np.ndarray) -> float:
    """Top-1 of the .tflite on photo files through edgecnn's own reading and Classifier (1 thread)."""
    from edgecnn.config import RuntimeOptions
    from edgecnn.preprocess import read_image
    from edgecnn.runtime import Classifier

    clf = Classifier(path, RuntimeOptions(threads=1, resize="center-crop"))
    hits = [clf.classify(read_image(p), k=1).top[0].index == int(t) for p, t in zip(photos, y)]
    return float(np.mean(hits))


def build(size: int, dtype: str, out: Path, weights: Path | None, data: Path, alpha: float = ALPHA) -> dict:
    """Build the model and write it to ``out``. ``weights`` None: a random backbone (timing only). Returns what
    was measured (top-1s, seconds, bytes)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as edgecnn train (README: oneDNN crashes on some shapes)
    from edgecnn.metadata import embed_support_metadata

    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test, labels, test_paths = load_photos(data, size)
    log(f"{len(x_train)} train / {len(x_test)} test photos of {', '.join(labels)} at {size}x{size}")
    if weights is None:
        log(f"MobileNetV2 alpha {alpha} with a random backbone: for timing only, its top-1 means nothing")
    model = build_keras(size, len(labels), weights, x_train, y_train, alpha)
    keras_top1 = float(np.mean(np.argmax(model.predict(normalise(x_test), batch_size=64, verbose=0), 1) == y_test))
    log(f"float Keras top-1 on the test split: {keras_top1:.4f}; converting ...")
    cal = x_train[np.random.default_rng(SEED).permutation(len(x_train))[:CALIBRATION]]
    tflite = embed_support_metadata(convert(model, cal, dtype), labels, list(MEAN), list(STD))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(out, tflite)
    top1 = tflite_top1(out, test_paths, y_test)
    return {"path": str(out), "size": size, "dtype": dtype, "alpha": alpha, "imagenet": weights is not None,
            "bytes": len(tflite), "keras_top1": keras_top1, "tflite_top1": top1, "test_photos": len(test_paths),
            "seconds": time.perf_counter() - t0}


@click.command()
@click.option("--size", type=click.IntRange(32, 512), default=224, show_default=True, help="Input size in pixels.")
@click.option("--dtype", type=click.Choice(["uint8", "int8"]), default="uint8", show_default=True,
              help="Input and output dtype of the quantized model.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the .tflite (refused if it exists, unless --force).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=WEIGHTS,
              show_default=True, help="MobileNetV2 alpha 0.35 ImageNet no-top .h5 (Keras Applications' file).")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DATA,
              show_default=True, help="flowers5-style folder DATA/<class>/NNNN.jpg (test: NNNN divisible by 5).")
@click.option("--alpha", type=click.Choice(["0.35", "0.5", "0.75", "1.0", "1.3", "1.4"]), default=str(ALPHA),
              show_default=True, help="MobileNetV2 width multiplier; other than 0.35 needs --random-backbone.")
@click.option("--random-backbone", is_flag=True,
              help="Keras' random initial backbone weights instead of --weights: a model for timing only.")
@click.option("--force", is_flag=True, help="Overwrite --output.")
def main(size, dtype, output, weights, data, alpha, random_backbone, force):
    """Build a MobileNetV2 photo classifier with TFLite Support metadata (see the module docstring)."""
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")
    if float(alpha) != ALPHA and not random_backbone:
        raise click.ClickException(f"--alpha {alpha}: the ImageNet weights at hand are alpha {ALPHA} only; pass "
                                   "--random-backbone for a timing-only model")
    r = build(size, dtype, output, None if random_backbone else weights, data, float(alpha))
    click.echo(f"{r['path']}: {r['size']}x{r['size']} {r['dtype']}, {r['bytes']:,} B; top-1 on the "
               f"{r['test_photos']} flowers5 test photos: Keras {r['keras_top1']:.4f}, .tflite {r['tflite_top1']:.4f} "
               f"({r['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
