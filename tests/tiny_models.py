"""Tiny Keras models and their TFLite conversion (TensorFlow needed; nothing is downloaded): the recipes of the
committed tests/fixtures/tiny/ models (tools/make_tiny_models.py) and of tests that build a Keras model.

Each builder returns the .tflite bytes. Weights come from a fixed seed so outputs are repeatable.
"""

from __future__ import annotations

import numpy as np

SIZE = 16


def _tf():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def keras_classifier(shape=(SIZE, SIZE, 3), classes=3, softmax=True, rescale=True, seed=0):
    """A tiny Keras CNN: optional Rescaling(1/255) -> Conv 3x3x4 -> GAP -> Dense(classes) [-> softmax]."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    x = inp
    if len(shape) == 2:
        x = keras.layers.Reshape((*shape, 1))(x)
    if rescale:
        x = keras.layers.Rescaling(1 / 255.0)(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(classes, activation="softmax" if softmax else None)(x)
    return keras.Model(inp, out)


def representative(shape, low=0.0, high=255.0, n=16, seed=0):
    """Representative dataset: n random samples of (1, *shape) float32 in [low, high], including both ends."""
    def gen():
        rng = np.random.default_rng(seed)
        for i in range(n):
            x = rng.uniform(low, high, (1, *shape)).astype(np.float32)
            x.flat[0], x.flat[1] = low, high
            yield [x]
    return gen


def convert(model, io: str | None = "int8", rep=None) -> bytes:
    """Convert a Keras model: io=None gives a float32 model, else full-integer with that I/O dtype."""
    tf = _tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if io is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep or representative(tuple(model.input_shape[1:]))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io]
        conv.inference_output_type = conv.inference_input_type
    return conv.convert()


def two_input_model() -> bytes:
    """A float model with two inputs (not a single-image classifier)."""
    import keras

    a, b = keras.Input((SIZE, SIZE, 3)), keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))
    return convert(keras.Model([a, b], keras.layers.Dense(2)(x)), io=None)


def vector_input_model() -> bytes:
    """A float model whose input is (1, 10): not an image."""
    import keras

    a = keras.Input((10,))
    return convert(keras.Model(a, keras.layers.Dense(2, activation="softmax")(a)), io=None)


def with_support_metadata(model: bytes, labels: list[str], mean: list[float], std: list[float],
                          label_file: str = "labels.txt") -> bytes:
    """TFLite Support metadata the way published models carry it (see :func:`edgecnn.metadata.embed_support_metadata`)."""
    from edgecnn.metadata import embed_support_metadata

    return embed_support_metadata(model, labels, mean, std, label_file)
