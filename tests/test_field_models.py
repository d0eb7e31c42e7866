"""Models that are not what they seem: detection and multi-output models, one-sigmoid binary classifiers,
Select-TensorFlow (Flex) ops, the quantization kind, label files numbered from 1, the interpreter's INFO line.

The models are built as flatbuffers by :mod:`tests.tflite_builder` (no TensorFlow needed, milliseconds each).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from tests.tflite_builder import Spec, build


@pytest.fixture
def model(tmp_path):
    """Write a built model: ``model(name, **spec fields) -> path``."""
    def make(name, **kw):
        p = tmp_path / f"{name}.tflite"
        p.write_bytes(build(Spec(**kw)))
        return str(p)
    return make


@pytest.fixture
def image(tmp_path):
    import cv2

    p = tmp_path / "img.png"
    cv2.imwrite(str(p), np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    return str(p)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(res) -> str:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, res.output
    return lines[0]


@pytest.mark.parametrize("cmd", ["classify", "camera", "bench"])
def test_detection_model_is_refused_saying_what_it_has(model, image, cmd):
    det = model("ssd", classes=10, out_shapes=[(1, 10, 4), (1, 10), (1, 10), (1,)], activation=None)
    args = {"classify": ["classify", det, image], "camera": ["camera", det, "--source", image, "--headless"],
            "bench": ["bench", det, "--runs", "2"]}[cmd]
    line = one_line_error(run(*args, "--mean", "0", "--std", "1"))
    assert "4 outputs" in line and "(1, 10, 4)" in line and "(1,)" in line
    assert "one output of class scores" in line


def test_two_output_model_and_feature_map_are_refused(model, image):
    line = one_line_error(run("classify", model("two", out_shapes=[(1, 3), (1, 3)]), image, "--mean", "0",
                              "--std", "1"))
    assert "2 outputs" in line
    line = one_line_error(run("classify", model("fmap", classes=48, out_shapes=[(1, 4, 4, 3)], activation=None),
                              image, "--mean", "0", "--std", "1"))
    assert "(1, 4, 4, 3)" in line and "not one score vector" in line


@pytest.mark.parametrize("kw", [
    dict(out_shapes=[(1, 1)]),  # float (1, 1)
    dict(out_shapes=[(1,)]),  # float (1,)
    dict(in_dtype="int8", out_dtype="int8", out_shapes=[(1, 1)]),  # quantized
    dict(in_dtype="uint8", out_dtype="uint8", out_shapes=[(1,)]),
])
def test_one_sigmoid_output_is_a_binary_classifier(model, image, tmp_path, kw):
    from edgecnn.config import RuntimeOptions
    from edgecnn.preprocess import read_image
    from edgecnn.runtime import Classifier

    path = model("binary", classes=1, activation="sigmoid", **kw)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    res = run("classify", path, image, "--labels", labels, "--json", "--mean", "0", "--std", "255")
    assert res.exit_code == 0, res.output
    top = json.loads(res.output.splitlines()[-1])["top"]
    # the reference: P(class 1) straight from the interpreter
    clf = Classifier(path, RuntimeOptions(mean=(0.0,), std=(255.0,)))
    raw = clf.invoke(clf.preprocess(read_image(image)))
    o = clf.output
    p = float(o.scale * (int(raw[0]) - o.zero_point)) if o.quantized else float(raw[0])
    scores = {t["label"]: t["score"] for t in top}
    assert scores["dog"] == pytest.approx(p, abs=1e-5) and scores["cat"] == pytest.approx(1 - p, abs=1e-5)
    assert top[0]["label"] == ("dog" if p > 0.5 else "cat")


def test_binary_logit_output_needs_softmax(model, image):
    path = model("logit", classes=1, activation=None, out_shapes=[(1, 1)])
    line = one_line_error(run("classify", path, image, "--mean", "0", "--std", "255"))
    assert "FULLY_CONNECTED" in line and "--softmax" in line
    res = run("classify", path, image, "--mean", "0", "--std", "255", "--softmax", "--json")
    assert res.exit_code == 0, res.output
    top = json.loads(res.output.splitlines()[-1])["top"]
    assert sum(t["score"] for t in top) == pytest.approx(1.0, abs=1e-5) and len(top) == 2


@pytest.mark.parametrize("cmd", ["classify", "info", "bench"])
def test_flex_ops_lead_the_error(model, image, cmd):
    path = model("flex", custom_op="FlexErf")
    args = {"classify": ["classify", path, image, "--mean", "0", "--std", "1"], "info": ["info", path],
            "bench": ["bench", path, "--runs", "2"]}[cmd]
    line = one_line_error(run(*args))
    assert "Select TensorFlow (Flex) ops FlexErf" in line and "full TensorFlow" in line
    assert "TFLITE_BUILTINS" in line and "corrupt" not in line


def test_other_custom_op_is_named(model):
    line = one_line_error(run("info", model("custom", custom_op="MyPostProcess")))
    assert "MyPostProcess" in line and "corrupt" not in line


@pytest.mark.parametrize("kw, kind", [
    (dict(), "float32"),
    (dict(in_dtype="int8", out_dtype="int8"), "int8"),
    (dict(in_dtype="int8", out_dtype="float32"), "int8"),
    (dict(in_dtype="uint8", out_dtype="uint8"), "uint8"),
    (dict(in_dtype="int16", out_dtype="int16"), "int16x8"),
    (dict(weights="float16"), "float16 weights"),
    (dict(weights="int8"), "dynamic-range"),
])
def test_quantization_kind_in_info_and_bench(model, kw, kind):
    path = model("m", **kw)
    res = run("info", path, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["quantization"] == kind
    res = run("bench", path, "--runs", "3", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["kind"] == kind


def test_int16_model_classifies_with_mean_std(model, image):
    path = model("m16", in_dtype="int16", out_dtype="int16")
    one_line_error(run("classify", path, image))  # int16 input needs the normalisation, like float32
    res = run("classify", path, image, "--mean", "0", "--std", "1", "--json")
    assert res.exit_code == 0, res.output


def test_labels_numbered_from_one(model, image, tmp_path):
    path = model("m", out_shapes=[(1, 3)])
    labels = tmp_path / "labels.txt"
    labels.write_text("1 ant\n2 bee\n3 cat\n")
    res = CliRunner().invoke(main, ["classify", path, image, "--labels", str(labels), "--json", "--mean", "0",
                                    "--std", "255", "-k", "3"])
    assert res.exit_code == 0, res.output
    assert "numbered 1..3" in res.stderr
    top = json.loads(res.stdout.splitlines()[-1])["top"]
    assert {t["index"]: t["label"] for t in top} == {0: "ant", 1: "bee", 2: "cat"}


def test_xnnpack_info_line_hidden_real_errors_kept(model, image, tmp_path):
    """The interpreter prints its INFO line to the C++ stderr (fd 2): check in a real process."""
    good = model("good")
    res = subprocess.run([sys.executable, "-m", "edgecnn", "classify", good, image, "--mean", "0", "--std", "1"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "XNNPACK" not in res.stderr and res.stderr.strip() == ""
    flex = model("flex", custom_op="FlexErf")
    res = subprocess.run([sys.executable, "-m", "edgecnn", "info", flex], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "XNNPACK" not in res.stderr
    assert "Flex" in res.stderr.splitlines()[-1]
    # The filter drops only the INFO line: anything else the native code prints reaches the user, in order.
    code = ("import os; from edgecnn.nativelog import filtered_native_stderr\n"
            "with filtered_native_stderr():\n"
            "    os.write(2, b'ERROR: first\\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nERROR: second\\n')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr == "ERROR: first\nERROR: second\n"


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--csv"]])
def test_bench_keeps_good_rows_and_names_the_bad_model(model, tmp_path, fmt):
    good, good2 = model("good"), model("good2", in_dtype="int8", out_dtype="int8")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    det = model("det", classes=10, out_shapes=[(1, 10, 4), (1, 10), (1, 10), (1,)], activation=None)
    res = CliRunner().invoke(main, ["bench", good, str(bad), good2, det, "--runs", "3", *fmt])
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 2 and str(bad) in errors[0] and det in errors[1] and "4 outputs" in errors[1]
    if fmt == ["--json"]:
        assert [r["model"] for r in json.loads(res.stdout)] == [good, good2]
    else:
        assert good in res.stdout and good2 in res.stdout and str(bad) not in res.stdout


def test_input_without_a_fixed_size_is_refused(model, image):
    """A Keras Input(shape=(None, None, 3)) converts to shape (1, 1, 1, 3) with signature (1, -1, -1, 3): resizing
    images to 1 x 1 would be a silently wrong answer."""
    line = one_line_error(run("classify", model("dyn", in_shape=(1, 1, 1, 3), dynamic_hw=True), image, "--mean",
                              "0", "--std", "1"))
    assert "not fixed" in line and "(1, -1, -1, 3)" in line
    res = run("classify", model("batch", dynamic_batch=True), image, "--mean", "0", "--std", "1")
    assert res.exit_code == 0, res.output  # an unknown batch alone is fine
