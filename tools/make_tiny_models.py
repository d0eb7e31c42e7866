"""Write the tiny .tflite models the device tests use (the ``tiny_models`` fixture in tests/conftest.py) into
tests/fixtures/tiny/. Needs TensorFlow (``pip install edgecnn[train]``); the tests themselves do not, so they run
on a board with only the device install.

    python tools/make_tiny_models.py [OUTDIR]      # default: tests/fixtures/tiny

Every model has a 16x16 input and 3 classes unless said otherwise; weights come from fixed seeds
(tests/tiny_models.py builds them with Keras), nothing is downloaded:

- ``int8``: int8 I/O, raw-pixel input (Rescaling inside), edgecnn metadata with the labels ant, bee, cat
- ``uint8``: uint8 I/O, no metadata
- ``unit_int8``: int8 I/O whose input is pixel/255 (input scale 1/255, zero_point -128), metadata mean 0 std 255
- ``float``: float32 I/O, no metadata (needs --mean/--std)
- ``logits``: float32, no softmax at the end, metadata mean 0 std 1
- ``gray``: int8, (1, 16, 16) grayscale input, metadata
- ``support``: float32 I/O with TFLite Support metadata (mean 127.5, std 127.5, a zipped labels.txt whose first
  label is a background class)
- ``wide``: int8, 500 classes ending in softmax (quantized scores do not sum to 1)
- ``two_inputs``, ``vector``: models that are not single-image classifiers

Run it again after changing the recipes below or tests/tiny_models.py, and commit the files it writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.config import Preprocessing  # noqa: E402
from edgecnn.metadata import embed_metadata  # noqa: E402
from edgecnn.outputs import write_bytes  # noqa: E402

#: Where the device tests find the models (tests/conftest.py reads the same folder).
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "tiny"
#: Labels embedded in the models that carry metadata.
LABELS = ["ant", "bee", "cat"]


def build_all() -> dict[str, bytes]:
    """{name: .tflite bytes} of every tiny model (see the module docstring)."""
    from tests import tiny_models as tm

    raw = Preprocessing(tm.SIZE, tm.SIZE, 3, mean=(0.0,), std=(1.0,))
    m = tm.keras_classifier()
    unit = tm.convert(tm.keras_classifier(rescale=False), "int8", tm.representative((tm.SIZE, tm.SIZE, 3), 0.0, 1.0))
    return {
        "int8": embed_metadata(tm.convert(m, "int8"), LABELS, raw),
        "uint8": tm.convert(m, "uint8"),
        "float": tm.convert(m, None),
        "unit_int8": embed_metadata(unit, LABELS, Preprocessing(tm.SIZE, tm.SIZE, 3, mean=(0.0,), std=(255.0,))),
        "logits": embed_metadata(tm.convert(tm.keras_classifier(softmax=False), None), LABELS, raw),
        "gray": embed_metadata(tm.convert(tm.keras_classifier(shape=(tm.SIZE, tm.SIZE)), "int8"), LABELS,
                               Preprocessing(tm.SIZE, tm.SIZE, 1, mean=(0.0,), std=(1.0,))),
        "support": tm.with_support_metadata(
            tm.convert(tm.keras_classifier(classes=4, rescale=False), None), LABELS, [127.5], [127.5]),
        "wide": tm.convert(tm.keras_classifier(classes=500), "int8"),
        "two_inputs": tm.two_input_model(),
        "vector": tm.vector_input_model(),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    for name, data in build_all().items():
        write_bytes(out / f"{name}.tflite", data)
        print(f"{out / name}.tflite: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
