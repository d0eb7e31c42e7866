"""`edgecnn quantize` / `evaluate` on a tiny trained model: representative-data shape check, int8 verification
and float-op detection, metadata round trip, the report and its quality gate, no partial outputs.
A `slow` test runs the real Fashion-MNIST path and checks the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.train import convert as Q
from edgecnn.train import evaluate as E
from edgecnn.cli import main
from edgecnn.config import TrainOptions
from edgecnn.errors import QuantizationError

from tests.test_data import CLASSES, make_folder

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.workstation


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(image folder, OUTDIR) of a tiny model: 16x16x3, 3 classes, cnn x0.25, 2 epochs."""
    from edgecnn.train.fit import train

    base = tmp_path_factory.mktemp("q")
    folder = make_folder(base / "images")
    opts = TrainOptions(arch="cnn", width=0.25, img_size=16, epochs=2, batch_size=8, val_split=0.25)
    train(str(folder), base / "run", opts, log=lambda s: None, verbose=0)
    return folder, base / "run"


@pytest.fixture(scope="module")
def quantized(trained, tmp_path_factory):
    """Report dict and paths of the tiny model quantized through the CLI with --float-out and --json."""
    folder, run = trained
    out = tmp_path_factory.mktemp("qo")
    r = CliRunner().invoke(main, ["quantize", str(run), "--data", str(folder), "-o", str(out / "m.tflite"),
                                  "--float-out", str(out / "f.tflite"), "--calib-samples", "12", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1]), out


def _quantize(trained, out, *extra):
    folder, run = trained
    return CliRunner().invoke(main, ["quantize", str(run), "--data", str(folder), "-o", str(out),
                                     "--calib-samples", "8", *extra])


# --------------------------------------------------------------------------------------- representative data

def test_representative_samples_must_match_the_input_exactly():
    ok = [np.zeros((1, 16, 16, 3), np.float32)]
    Q.check_representative(ok, (1, 16, 16, 3))
    with pytest.raises(ValueError, match=r"sample 1 has shape \(1, 16, 16, 1\), model input is \(1, 16, 16, 3\)"):
        Q.check_representative(ok + [np.zeros((1, 16, 16, 1), np.float32)], (1, 16, 16, 3))
    with pytest.raises(ValueError, match="dtype uint8, expected float32"):
        Q.check_representative([np.zeros((1, 16, 16, 3), np.uint8)], (1, 16, 16, 3))
    with pytest.raises(ValueError, match="empty"):
        Q.check_representative([], (1, 16, 16, 3))
    dim = np.full((2, 4, 4, 3), 100, np.uint8)
    full = Q.full_range(dim)
    assert full.min() == 0 and full.max() == 255 and (full != dim).sum() == 2 and dim.max() == 100
    gen = Q.representative_dataset(np.full((3, 16, 16, 3), 7, np.uint8), (1, 16, 16, 3))
    samples = [s[0] for s in gen()]
    assert len(samples) == 3 and samples[0].dtype == np.float32 and float(samples[0].max()) == 7.0


def test_wrong_calibration_shape_fails_before_converting(monkeypatch):
    from edgecnn.train.model import build

    monkeypatch.setattr(Q, "_saved_model", lambda *a: pytest.fail("exported before the shape check"))
    with pytest.raises(ValueError, match="model input is"):
        Q.convert(build("cnn", (16, 16, 3), 3, 0.25), np.zeros((4, 16, 16, 1), np.uint8))


@pytest.mark.parametrize("arch", ["resnet8", "mobilenet", "cnn"])
def test_every_architecture_converts_to_fully_integer(arch):
    from edgecnn.train.model import build

    rng = np.random.default_rng(0)
    tflite = Q.convert(build(arch, (16, 16, 3), 3, 0.25), rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8))
    check = Q.verify_integer(tflite, "int8")
    assert check["float_ops"] == [] and check["float_tensors"] == []
    assert check["input"]["dtype"] == "int8" and check["input"]["zero_point"] == -128
    assert abs(check["input"]["scale"] - 1.0) < 0.01  # raw 0..255 pixels: scale ~1 (255/255 levels)


# ------------------------------------------------------------------------------------------- verification

def test_float_ops_are_detected_and_named(quantized):
    _, out = quantized
    float_bytes = (out / "f.tflite").read_bytes()
    with pytest.raises(QuantizationError, match="float ops: .*CONV_2D"):
        Q.verify_integer(float_bytes, "float32")
    assert "CONV_2D" in Q.verify_integer(float_bytes, "float32", allow_float=True)["float_ops"]
    with pytest.raises(QuantizationError, match="input .* is int8, expected uint8"):
        Q.verify_integer((out / "m.tflite").read_bytes(), "uint8")


def test_resize_rule_can_be_recorded_differently(trained, tmp_path):
    from edgecnn.metadata import read_metadata

    r = _quantize(trained, tmp_path / "m.tflite", "--resize", "letterbox", "--json")
    assert r.exit_code == 0, r.output
    assert read_metadata((tmp_path / "m.tflite").read_bytes()).preprocessing["resize"] == "letterbox"
    assert json.loads(r.stdout.strip().splitlines()[-1])["preprocessing"]["resize"] == "letterbox"


@pytest.mark.parametrize("io", ["uint8", "float32"])
def test_io_types(trained, tmp_path, io):
    from edgecnn.modelinfo import float_ops
    from edgecnn.runtime import Classifier

    r = _quantize(trained, tmp_path / "m.tflite", "--io", io)
    assert r.exit_code == 0, r.output
    clf = Classifier(tmp_path / "m.tflite")
    assert clf.input.dtype == np.dtype(io) and clf.output.dtype == np.dtype(io)
    assert float_ops(clf.interpreter) == []  # float32 I/O: only QUANTIZE/DEQUANTIZE at the edges


# ---------------------------------------------------------------------------------------- outputs + report

def test_metadata_round_trip(trained, quantized):
    from edgecnn.metadata import read_metadata
    from edgecnn.runtime import Classifier

    _, run = trained
    _, out = quantized
    pre = json.loads((run / "preprocessing.json").read_text())
    for name in ("m.tflite", "f.tflite"):
        meta = read_metadata((out / name).read_bytes())
        assert meta.source == "edgecnn" and meta.labels == list(CLASSES) and meta.preprocessing == pre
    assert E.training_record((out / "m.tflite").read_bytes()) == {"data": str(trained[0]), "seed": 0,
                                                                   "val_split": 0.25}
    clf = Classifier(out / "m.tflite")
    assert clf.labels == list(CLASSES) and clf.preprocessing.resize == "center-crop"
    assert (clf.input.scale, clf.input.zero_point) == (1.0, -128)  # raw pixel bytes, nothing clipped
    r = CliRunner().invoke(main, ["classify", str(out / "m.tflite"), str(trained[0] / "red" / "img00.png")])
    assert r.exit_code == 0 and any(c in r.output for c in CLASSES)
    r = CliRunner().invoke(main, ["info", str(out / "m.tflite")])
    assert "fully integer" in r.output and "blue" in r.output


def test_report_contents(trained, quantized):
    from edgecnn.runtime import Classifier

    rep, out = quantized
    train_rep = json.loads((trained[1] / "train_report.json").read_text())
    assert rep["split"] == "val" and rep["n"] == train_rep["data"]["val"]
    for side in ("float", "int8"):
        m = rep[side]
        assert 0.0 <= m["accuracy"] <= 1.0 and set(m["per_class"]) == set(CLASSES)
        assert np.asarray(m["confusion"]).sum() == rep["n"]
        assert np.trace(np.asarray(m["confusion"])) == round(m["accuracy"] * rep["n"])
    assert 0.0 <= rep["agreement"] <= 1.0
    from edgecnn.train.report import summary
    assert rep["one_image_pp"] == pytest.approx(100 / rep["n"], abs=1e-3)  # what one photo weighs in the drop
    assert f"(one image = {100 / rep['n']:.2f} points)" in summary(rep)
    assert rep["drop_pp"] == pytest.approx(100 * (rep["float"]["accuracy"] - rep["int8"]["accuracy"]), abs=1e-3)
    assert rep["sizes"]["int8_bytes"] == (out / "m.tflite").stat().st_size
    assert rep["sizes"]["float32_bytes"] == (out / "f.tflite").stat().st_size
    assert rep["sizes"]["int8_to_float32"] < 0.5
    assert sum(rep["calibration"]["per_class"].values()) == 12 and set(rep["calibration"]["per_class"].values()) == {4}
    assert json.loads((out / "m_report.json").read_text())["int8"] == rep["int8"]
    assert (out / "m_confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the reported int8 accuracy is what the device runtime gives on the same images
    from edgecnn.train.evaluate import load_splits
    from edgecnn.train.outdir import load_trained

    tm = load_trained(trained[1])
    x, y = load_splits(str(trained[0]), tm.pre, tm.labels, tm.seed, tm.val_split, progress=False).get("val")
    clf = Classifier(out / "m.tflite")
    pred = [int(np.argmax(clf.scores(clf.invoke(clf.tensor_from_pixels(p))))) for p in x]
    assert np.mean(np.asarray(pred) == y) == pytest.approx(rep["int8"]["accuracy"])


def test_metrics_pure():
    y = np.array([0, 0, 1, 2])
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]])
    m = E.metrics(y, scores, ["a", "b", "c"], k=2)
    assert m["accuracy"] == 0.5 and m["n"] == 4 and m["top_k"] == {"k": 2, "accuracy": 1.0}
    assert m["per_class"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert E.collapse_warning(np.array([0, 1, 2, 0]), np.array([1, 1, 1, 1]), ["a", "b", "c"]) is not None
    y = np.repeat([0, 1, 2], 10)
    pred = y.copy()
    pred[:3] = 1  # a few mistakes are not a collapse
    assert E.collapse_warning(y, pred, ["a", "b", "c"]) is None
    # int8 collapses while float does not: calibration is suspect
    ones = np.ones_like(y)
    assert "calibration" in E.collapse_warning(y, ones, ["a", "b", "c"], float_pred=y)
    # the float model collapses too: the message says so and does not blame calibration
    w = E.collapse_warning(y, ones, ["a", "b", "c"], float_pred=ones)
    assert "float model's predictions already collapse onto class 'b'" in w and "calibration" not in w


def test_max_drop_gate_and_collapse_warning(trained, tmp_path, monkeypatch):
    def perfect(model, x, batch_size=256):
        # the float model is right on every image: one-hot of the true labels of the evaluated split
        return np.eye(3, dtype=np.float32)[monkeypatch.true_labels]

    real_get = Q.D.Splits.get

    def get(self, name):
        x, y = real_get(self, name)
        monkeypatch.true_labels = y
        return x, y

    monkeypatch.setattr(Q.D.Splits, "get", get)
    monkeypatch.setattr(Q, "predict_keras", perfect)
    monkeypatch.setattr(Q, "predict_tflite", lambda path, x, *a, **k: np.tile([1.0, 0.0, 0.0], (len(x), 1)))
    r = _quantize(trained, tmp_path / "m.tflite", "--max-drop", "1")
    assert r.exit_code == 1
    assert "more than --max-drop 1" in r.output and "collapse onto class 'blue'" in r.output
    rep = json.loads((tmp_path / "m_report.json").read_text())
    # how much one image weighs, so a gate decided by one photo of a small validation split shows as such
    assert f"on {rep['n']} {rep['split']} images, one image is {100 / rep['n']:.2f} points" in r.output
    assert rep["passed"] is False and rep["float"]["accuracy"] == 1.0 and rep["drop_pp"] > 1


def test_no_partial_output_on_failure(trained, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise QuantizationError("simulated failure while evaluating")

    monkeypatch.setattr(Q, "predict_tflite", boom)
    r = _quantize(trained, tmp_path / "m.tflite", "--float-out", str(tmp_path / "f.tflite"))
    assert r.exit_code == 1 and "simulated failure" in r.output
    assert list(tmp_path.iterdir()) == []


def test_wrong_data_or_existing_output_is_refused(trained, tmp_path):
    other = make_folder(tmp_path / "other", per_class=3, bad_files=False)
    (other / "red").rename(other / "yellow")
    folder, run = trained
    r = CliRunner().invoke(main, ["quantize", str(run), "--data", str(other), "-o", str(tmp_path / "m.tflite")])
    assert r.exit_code == 1 and "differ from the model's labels" in r.output
    assert not (tmp_path / "m.tflite").exists()
    (tmp_path / "m.tflite").write_bytes(b"keep me")
    r = _quantize(trained, tmp_path / "m.tflite")
    assert r.exit_code == 1 and "--overwrite" in r.output and (tmp_path / "m.tflite").read_bytes() == b"keep me"
    r = _quantize(trained, tmp_path / "m.onnx")
    assert r.exit_code == 2 and ".tflite" in r.output
    r = CliRunner().invoke(main, ["quantize", str(tmp_path / "m.tflite"), "--data", str(folder),
                                  "-o", str(tmp_path / "n.tflite")])
    assert r.exit_code == 1 and "expected an OUTDIR" in r.output


# ----------------------------------------------------------------------------------------------- evaluate

def test_evaluate_keras_and_tflite(trained, quantized):
    folder, run = trained
    rep, out = quantized
    res = {}
    for model in (run, run / "model.keras", out / "m.tflite"):
        r = CliRunner().invoke(main, ["evaluate", str(model), str(folder), "--json"])
        assert r.exit_code == 0, r.output
        res[model] = json.loads(r.stdout.strip().splitlines()[-1])
        assert isinstance(res[model]["accuracy"], float) and res[model]["n"] == rep["n"]
        assert res[model]["split"] == "val"
    assert res[run]["accuracy"] == pytest.approx(rep["float"]["accuracy"])
    assert res[out / "m.tflite"]["accuracy"] == pytest.approx(rep["int8"]["accuracy"])
    r = CliRunner().invoke(main, ["evaluate", str(run), str(folder), "--split", "train", "--json", "-k", "2"])
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["n"] == 36 - rep["n"] and m["top_k"]["k"] == 2 and m["top_k"]["accuracy"] >= m["accuracy"]
    r = CliRunner().invoke(main, ["evaluate", str(run), str(folder), "--split", "test"])
    assert r.exit_code == 1 and "no test split" in r.output
    r = CliRunner().invoke(main, ["evaluate", str(out / "m.tflite"), str(folder), "--split", "all", "--json"])
    assert json.loads(r.stdout.strip().splitlines()[-1])["n"] == 36
    r = CliRunner().invoke(main, ["evaluate", str(out / "m.tflite"), str(folder)])
    assert r.exit_code == 0 and "top-1" in r.output and "confusion" in r.output
    r = CliRunner().invoke(main, ["evaluate", str(out / "m.tflite"), str(folder), "-k", "5", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout.strip().splitlines()[-1])["top_k"]["k"] == 3
    assert "-k 5 is more than the model's 3 classes: reporting top-3" in r.stderr


# ------------------------------------------------------------------------------------------ real data (slow)

FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.is_dir(), reason="needs the Debian package dataset-fashion-mnist")
def test_shipped_fashion_mnist_models_meet_their_goals():
    ship = REPO / "models" / "fashion_mnist"
    res = {}
    for name in ("int8.tflite", "float32.tflite"):
        r = CliRunner().invoke(main, ["evaluate", str(ship / name), "fashion-mnist", "--json"])
        assert r.exit_code == 0, r.output
        res[name] = json.loads(r.stdout.strip().splitlines()[-1])
        assert res[name]["n"] == 10_000 and res[name]["split"] == "test"
    assert res["int8.tflite"]["accuracy"] >= 0.925
    assert res["float32.tflite"]["accuracy"] - res["int8.tflite"]["accuracy"] <= 0.005
    assert (ship / "int8.tflite").stat().st_size <= 128 * 1024
    assert json.loads((ship / "train_report.json").read_text())["params"] <= 100_000


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.is_dir(), reason="needs the Debian package dataset-fashion-mnist")
def test_fashion_mnist_train_quantize_evaluate(tmp_path):
    r = CliRunner().invoke(main, ["train", "fashion-mnist", "-o", str(tmp_path / "run"), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["quantize", str(tmp_path / "run"), "--data", "fashion-mnist",
                                  "-o", str(tmp_path / "int8.tflite"), "--max-drop", "1.5", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["split"] == "test" and rep["n"] == 10_000 and rep["float"]["accuracy"] > 0.7
    assert rep["float_ops"] == [] and rep["input"]["dtype"] == "int8"


def test_evaluate_names_what_model_it_expects(trained, tmp_path):
    folder, _ = trained
    (tmp_path / "photo.png").write_bytes(b"not a model")
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "photo.png"), str(folder)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "photo.png: expected a .tflite model, a .keras model or an OUTDIR" in r.output
