"""Write the tiny .tflite fixtures of tests/test_explain.py (needs TensorFlow; the tests themselves do not).

    python tools/make_explain_fixtures.py [OUTDIR]      # default: tests/fixtures

- ``explain_edges.tflite``: 16x16x3 int8 input (raw pixels, Rescaling(1/255) inside), a Conv2D of two 3x3 kernels
  set by hand -- channel 0 a horizontal-edge kernel (rows +1 / 0 / -1, responds where brightness changes from
  one row to the next), channel 1 a vertical-edge kernel (columns +1 / 0 / -1) -- the same on all three input
  channels, zero bias, no activation, then global average pooling and a Dense(2) softmax.
- ``explain_edges_float.tflite``: the same Keras model converted without quantization (float32 in and out).
- ``explain_left.tflite``: 16x16x3 int8 input whose graph crops away the right half (columns 8..15) before a
  Conv2D/ReLU, pooling and Dense(3) softmax: nothing right of column 8 can change its output.

The int8 ones are full-integer (int8 input and output) calibrated on random pixels with a fixed seed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

SIZE = 16
HORIZONTAL_EDGE = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], np.float32)
VERTICAL_EDGE = HORIZONTAL_EDGE.T.copy()


def _convert(model, quantize: bool = True) -> bytes:
    import tensorflow as tf

    def rep():
        rng = np.random.default_rng(0)
        for _ in range(32):
            x = rng.uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
            x.flat[0], x.flat[1] = 0.0, 255.0
            yield [x]
        for stripes in (_stripes(0), _stripes(1)):  # the test images themselves, so their range is calibrated
            yield [stripes[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if not quantize:
        return conv.convert()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _stripes(axis: int) -> np.ndarray:
    """16x16x3 uint8 bands of 4 pixels, 0 and 255, across ``axis`` (0: horizontal stripes, 1: vertical)."""
    band = (np.arange(SIZE) // 4) % 2 * 255
    img = np.broadcast_to(band[:, None] if axis == 0 else band[None, :], (SIZE, SIZE))
    return np.repeat(img[:, :, None], 3, axis=2).astype(np.uint8)


def edges_model():
    """Conv2D with hand-set horizontal- and vertical-edge kernels (see the module docstring)."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    conv = keras.layers.Conv2D(2, 3, name="edges")
    x = conv(x)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, out)
    kernel = np.zeros((3, 3, 3, 2), np.float32)  # (kh, kw, in_c, out_c)
    kernel[:, :, :, 0] = HORIZONTAL_EDGE[:, :, None]
    kernel[:, :, :, 1] = VERTICAL_EDGE[:, :, None]
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    return model


def left_half_model():
    """A classifier that crops its input to the left half first (see the module docstring)."""
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Cropping2D(((0, 0), (0, SIZE // 2)))(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))


def main(outdir: str = "tests/fixtures") -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    edges = edges_model()
    for name, data in (("explain_edges.tflite", _convert(edges)), ("explain_edges_float.tflite", _convert(edges, False)),
                       ("explain_left.tflite", _convert(left_half_model()))):
        (out / name).write_bytes(data)
        print(f"{out / name}: {len(data):,} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:2])
