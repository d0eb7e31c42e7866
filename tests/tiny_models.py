"""Tiny TFLite models built in the tests (TensorFlow needed; nothing is downloaded).

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
    """Attach TFLite Support metadata the way published models carry it: a ``TFLITE_METADATA`` entry holding a
    ``ModelMetadata`` flatbuffer (input NormalizationOptions, output TENSOR_AXIS_LABELS file) and the label file in
    a zip appended to the model. Field slots follow tflite-support's ``metadata_schema.fbs``."""
    import io
    import zipfile

    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    b = flatbuffers.Builder(0)

    def table(fields):  # fields: [(slot, kind, value)]
        b.StartObject(8)
        for slot, kind, value in fields:
            {"off": b.PrependUOffsetTRelativeSlot, "u8": b.PrependUint8Slot,
             "i8": b.PrependInt8Slot}[kind](slot, value, 0)
        return b.EndObject()

    def vector_of(offsets):
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def floats(values):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(v)
        return b.EndVector()

    af = table([(0, "off", b.CreateString(label_file)), (2, "i8", 2)])  # AssociatedFile TENSOR_AXIS_LABELS
    out_tm = table([(6, "off", vector_of([af]))])  # TensorMetadata.associated_files
    m, s = floats(mean), floats(std)
    norm = table([(0, "off", m), (1, "off", s)])  # NormalizationOptions
    pu = table([(0, "u8", 1), (1, "off", norm)])  # ProcessUnit options_type=NormalizationOptions
    in_tm = table([(4, "off", vector_of([pu]))])  # TensorMetadata.process_units
    sg = table([(2, "off", vector_of([in_tm])), (3, "off", vector_of([out_tm]))])  # SubGraphMetadata
    mm = table([(3, "off", vector_of([sg]))])  # ModelMetadata.subgraph_metadata
    b.Finish(mm, file_identifier=b"M001")
    payload = bytes(b.Output())

    obj = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    buf = schema.BufferT()
    buf.data = list(payload)
    obj.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(obj.buffers) - 1
    obj.metadata = [*(obj.metadata or []), entry]
    fb = flatbuffers.Builder(0)
    fb.Finish(obj.Pack(fb), file_identifier=b"TFL3")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr(label_file, "\n".join(labels) + "\n")
    return bytes(fb.Output()) + zipped.getvalue()
