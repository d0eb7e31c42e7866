"""Session fixtures: tiny .tflite models (committed files, made by tools/make_tiny_models.py; reading them needs no
TensorFlow, nothing is downloaded), sample images, and the ``workstation`` marker: a test that needs TensorFlow is
skipped with the reason when TensorFlow is not installed (the device install).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

#: Labels embedded in the tiny models that carry metadata (tools/make_tiny_models.py writes the same).
LABELS = ["ant", "bee", "cat"]
#: The committed tiny models.
TINY_DIR = Path(__file__).resolve().parent / "fixtures" / "tiny"
TINY_NAMES = ("int8", "uint8", "float", "unit_int8", "logits", "gray", "support", "wide", "two_inputs", "vector")


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``workstation`` when TensorFlow cannot be imported, saying why."""
    if importlib.util.find_spec("tensorflow") is not None:
        return
    skip = pytest.mark.skip(reason="needs TensorFlow (pip install 'edgecnn[train]'); this is a device install")
    for item in items:
        if item.get_closest_marker("workstation"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Paths of tiny classifiers, 16x16 input, 3 classes, copied from tests/fixtures/tiny/ into a temporary folder
    (so no test can change the committed files); tools/make_tiny_models.py describes and regenerates them:

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
    out = tmp_path_factory.mktemp("models")
    paths = {}
    for name in TINY_NAMES:
        paths[name] = Path(shutil.copyfile(TINY_DIR / f"{name}.tflite", out / f"{name}.tflite"))
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
