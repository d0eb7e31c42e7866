"""Session fixtures: tiny .tflite models written once per test run (built with TensorFlow, nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

LABELS = ["ant", "bee", "cat"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Paths of tiny classifiers, 16x16 input, 3 classes:

    - ``int8``: int8 I/O, raw-pixel input (Rescaling inside), edgecnn metadata with :data:`LABELS`
    - ``uint8``: uint8 I/O, no metadata
    - ``unit_int8``: int8 I/O whose input is pixel/255 (input scale 1/255, zero_point -128), metadata mean 0 std 255
    - ``float``: float32 I/O, no metadata (needs --mean/--std)
    - ``logits``: float32, no softmax at the end, metadata mean 0 std 1
    - ``gray``: int8, (1, 16, 16) grayscale input, metadata
    - ``support``: float32 I/O with TFLite Support metadata (mean 127.5, std 127.5, a zipped labels.txt whose
      first label is a background class)
    - ``wide``: int8, 500 classes ending in softmax (quantized scores do not sum to 1)
    - ``two_inputs``, ``vector``: models that are not single-image classifiers
    """
    from edgecnn.config import Preprocessing
    from edgecnn.metadata import embed_metadata

    from tests import tiny_models as tm

    out = tmp_path_factory.mktemp("models")
    raw = Preprocessing(tm.SIZE, tm.SIZE, 3, mean=(0.0,), std=(1.0,))
    m = tm.keras_classifier()
    models = {
        "int8": embed_metadata(tm.convert(m, "int8"), LABELS, raw),
        "uint8": tm.convert(m, "uint8"),
        "float": tm.convert(m, None),
        "unit_int8": embed_metadata(
            tm.convert(tm.keras_classifier(rescale=False), "int8", tm.representative((tm.SIZE, tm.SIZE, 3), 0.0, 1.0)),
            LABELS, Preprocessing(tm.SIZE, tm.SIZE, 3, mean=(0.0,), std=(255.0,))),
        "logits": embed_metadata(tm.convert(tm.keras_classifier(softmax=False), None), LABELS, raw),
        "gray": embed_metadata(tm.convert(tm.keras_classifier(shape=(tm.SIZE, tm.SIZE)), "int8"), LABELS,
                               Preprocessing(tm.SIZE, tm.SIZE, 1, mean=(0.0,), std=(1.0,))),
        "support": tm.with_support_metadata(
            tm.convert(tm.keras_classifier(classes=4, rescale=False), None), LABELS, [127.5], [127.5]),
        "wide": tm.convert(tm.keras_classifier(classes=500), "int8"),
        "two_inputs": tm.two_input_model(),
        "vector": tm.vector_input_model(),
    }
    paths = {}
    for name, data in models.items():
        p = out / f"{name}.tflite"
        p.write_bytes(data)
        paths[name] = p
    return paths


@pytest.fixture
def image_dir(tmp_path) -> Path:
    """A folder with two real PNG/JPEG images (40x30 RGB, 20x20 gray) and one corrupt file."""
    import cv2

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "colour.png"), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "gray.jpg"), rng.integers(0, 256, (20, 20), dtype=np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a jpeg")
    return tmp_path
