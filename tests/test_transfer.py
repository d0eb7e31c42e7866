"""Transfer learning with the ImageNet MobileNetV2 backbone: options, the weights file check, Keras' cache, the two
training phases, and train -> quantize -> classify on a tiny folder giving the Keras model's top-1 (the
normalisation applied exactly once). The weights file is read from ../shared/weights (tools/shared_data.py) or
$EDGECNN_TEST_WEIGHTS; tests that need it skip when it is absent. Nothing is downloaded."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.config import DEFAULT_FINE_TUNE_EPOCHS, DEFAULT_LABEL_SMOOTHING, PHOTO_AUGMENT, TrainOptions

from tests.test_data import CLASSES, make_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from shared_data import FLOWERS5, MOBILENETV2_035_WEIGHTS  # noqa: E402

WEIGHTS = Path(os.environ.get("EDGECNN_TEST_WEIGHTS", MOBILENETV2_035_WEIGHTS))
needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"ImageNet MobileNetV2 0.35 weights not at {WEIGHTS} "
                                   "(set EDGECNN_TEST_WEIGHTS)")


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# ------------------------------------------------------------------------------------------- options (no TF)

@pytest.mark.parametrize("kw, message", [
    ({"arch": "resnet8", "alpha": 0.35}, "alpha is for --arch mobilenetv2"),
    ({"arch": "mobilenetv2", "alpha": 0.6}, "alpha is 0.6, expected one of 0.35, 0.5, 0.75, 1.0"),
    ({"arch": "mobilenetv2", "width": 0.5}, "mobilenetv2 takes --alpha"),
    ({"arch": "cnn", "pretrained": "imagenet"}, "pretrained weights exist for --arch mobilenetv2"),
    ({"arch": "mobilenetv2", "pretrained": "places365"}, "expected one of imagenet"),
    ({"arch": "mobilenetv2", "fine_tune_from": 18}, "block 0..17"),
    ({"arch": "mobilenetv2", "label_smoothing": 1.0}, "label_smoothing is 1.0, expected a fraction in"),
])
def test_transfer_options_are_checked(kw, message):
    with pytest.raises(ValueError, match=message):
        TrainOptions(**kw)


def test_defaults_follow_the_pretrained_choice():
    scratch = TrainOptions(arch="mobilenetv2").resolved()
    assert (scratch.alpha, scratch.pretrained, scratch.epochs, scratch.augment) == (0.35, None, 30, "shift")
    tl = TrainOptions(arch="mobilenetv2", weights="w.h5").resolved()  # --weights implies --pretrained imagenet
    assert (tl.pretrained, tl.epochs, tl.lr, tl.augment, tl.transfer) == ("imagenet", DEFAULT_FINE_TUNE_EPOCHS, 1e-3,
                                                                         "photo", True)
    assert (scratch.label_smoothing, tl.label_smoothing) == (0.0, DEFAULT_LABEL_SMOOTHING)
    assert TrainOptions(arch="mobilenetv2", weights="w.h5", label_smoothing=0.0).resolved().label_smoothing == 0.0


@pytest.mark.workstation
def test_photo_augmentation_is_seeded_adds_pixel_noise_and_is_off_at_inference():
    from edgecnn.train.fit import photo_augmenter

    grey = np.full((2, 48, 48, 3), 128.0, np.float32)  # crops, flips, rotation and colour jitter keep it flat
    opts = TrainOptions(arch="mobilenetv2", pretrained="imagenet", seed=3)
    a, b = (np.asarray(photo_augmenter(opts)(grey, training=True)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    want = PHOTO_AUGMENT["noise"] * 255.0
    for img in a:  # only the pixel noise makes a flat image uneven
        assert 0.8 * want < float(img.std()) < 1.2 * want
    np.testing.assert_array_equal(np.asarray(photo_augmenter(opts)(grey, training=False)), grey)


def test_small_classes_are_named_with_their_count():
    from edgecnn.train.data import small_class_warnings

    w = small_class_warnings({"cat": 25, "dog": 7, "owl": 1}, 20)
    assert len(w) == 2 and "'dog' has only 7 images (fewer than 20)" in w[0] and "'owl' has only 1 image " in w[1]


def test_metrics_give_precision_and_recall_per_class():
    from edgecnn.train.evaluate import metrics

    y = np.array([0, 0, 0, 1, 1, 2])
    scores = np.eye(3)[[0, 0, 1, 1, 1, 1]]  # class 2 never predicted, class 1 over-predicted
    m = metrics(y, scores, ["a", "b", "c"])
    assert m["recall"] == {"a": 2 / 3, "b": 1.0, "c": 0.0}
    assert m["precision"] == {"a": 1.0, "b": 0.5, "c": None}
    assert m["support"] == {"a": 3, "b": 2, "c": 1} and m["confusion"][0] == [2, 1, 0]


# ------------------------------------------------------------------------------------ weights file and cache

@needs_weights
@pytest.mark.workstation
@pytest.mark.parametrize("alpha, message", [(0.5, "weights for alpha 0.35 (block_16_project has 112 filters), "
                                                  "expected alpha 0.5 (160 filters)"),
                                            (1.0, "expected alpha 1.0 (320 filters)")])
def test_a_weights_file_for_another_alpha_is_one_clear_error(tmp_path, alpha, message):
    data = make_folder(tmp_path / "images", per_class=3, bad_files=False)
    r = _cli("train", data, "-o", tmp_path / "run", "--arch", "mobilenetv2", "--alpha", alpha, "--weights", WEIGHTS)
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert r.output.startswith("Error: ") and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


@pytest.mark.workstation
def test_a_file_that_is_not_the_backbone_is_one_clear_error(tmp_path):
    import h5py

    from edgecnn.errors import ModelError
    from edgecnn.train.model import check_weights_file

    (tmp_path / "notes.h5").write_text("not hdf5")
    with pytest.raises(ModelError, match=r"notes.h5: cannot read as Keras .h5 weights .*alpha 0.35"):
        check_weights_file(tmp_path / "notes.h5", 0.35)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["layer_names"] = [b"conv", b"fc"]
    with pytest.raises(ModelError, match=r"other.h5: 2 layers, expected the 154 layers of MobileNetV2 without its "
                                         r"top \(alpha 0.35"):
        check_weights_file(tmp_path / "other.h5", 0.35)
    with pytest.raises(ModelError, match="missing.h5: no such weights file"):
        check_weights_file(tmp_path / "missing.h5", 0.35)


@needs_weights
@pytest.mark.workstation
def test_a_copy_in_keras_cache_is_used_without_downloading(tmp_path, monkeypatch):
    from edgecnn.train import model as M
    from edgecnn.train.fit import weights_source

    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    opts = TrainOptions(arch="mobilenetv2", pretrained="imagenet").resolved()
    assert weights_source(opts, 96) == "imagenet"  # nothing cached: Keras would download
    (cache / M.keras_weights_name(0.35)).symlink_to(WEIGHTS)
    assert weights_source(opts, 96) == str(cache / M.keras_weights_name(0.35))  # the 224 file fits any size
    (cache / M.keras_weights_name(0.35, 96)).symlink_to(WEIGHTS)
    assert weights_source(opts, 96) == str(cache / M.keras_weights_name(0.35, 96))  # Keras' own file for 96 px
    assert weights_source(opts, 100) == str(cache / M.keras_weights_name(0.35))
    local = TrainOptions(arch="mobilenetv2", weights=str(WEIGHTS)).resolved()
    assert weights_source(local, 96) == str(WEIGHTS)

    import keras

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    model = M.mobilenetv2((32, 32, 3), 2, 0.35, weights=weights_source(opts, 32))
    ref = M.mobilenetv2((32, 32, 3), 2, 0.35, weights=str(WEIGHTS))
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0], ref.get_layer("Conv1").get_weights()[0])


@needs_weights
@pytest.mark.workstation
def test_phases_choose_what_trains_and_batchnorm_stays_frozen():
    from edgecnn.train import model as M

    m = M.mobilenetv2((32, 32, 3), 3, 0.35, weights=str(WEIGHTS))
    head = M.set_phase(m, "head")
    assert head == 1280 * 3 + 3  # only fc: 1280 features x 3 classes + bias
    upper = M.set_phase(m, "fine-tune", 8)
    everything = M.set_phase(m, "fine-tune", 0)
    assert head < upper < everything
    assert all(not layer.trainable for layer in m.layers if type(layer).__name__ == "BatchNormalization")
    M.set_phase(m, "fine-tune", 8)
    assert not m.get_layer("block_7_project").trainable and m.get_layer("block_8_project").trainable
    assert not any(type(layer).__name__ == "Rescaling" for layer in m.layers)  # normalisation lives outside


@pytest.mark.workstation
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_the_loss_is_smoothed_by_label_smoothing(eps):
    """A model sure of the right class (p = 0.998) has almost no loss unsmoothed; smoothed, the target puts eps/K
    on each wrong class, so its loss is about (2 eps / 3) * -log(0.001)."""
    import keras
    import tensorflow as tf

    from edgecnn.train.fit import fit_phases

    sure = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros",
                                                                   bias_initializer=keras.initializers.Constant(
                                                                       [np.log(998.0), 0.0, 0.0]))])
    x, y = np.ones((8, 2), np.float32), tf.one_hot(np.zeros(8, np.int64), 3)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    opts = TrainOptions(arch="cnn", epochs=1, lr=1e-12, label_smoothing=eps).resolved()
    history, _, _ = fit_phases(sure, ds, ds, opts, steps_per_epoch=1, verbose=0, log=lambda s: None)
    p = np.array([0.998, 0.001, 0.001])
    target = (1 - eps) * np.eye(3)[0] + eps / 3
    assert history[0]["loss"] == pytest.approx(-(target * np.log(p)).sum(), rel=1e-3)
    assert history[0]["val_accuracy"] == 1.0


# ----------------------------------------------------------------------- end to end: train -> quantize -> classify

@pytest.fixture(scope="module")
def tl_run(tmp_path_factory):
    """A tiny pretrained MobileNetV2 (32x32, 3 colour-coded classes, 1 head + 1 fine-tune epoch), quantized with
    its float32 twin: (folder, OUTDIR, int8 path, float path, quantize report)."""
    if not WEIGHTS.is_file():
        pytest.skip(f"ImageNet MobileNetV2 0.35 weights not at {WEIGHTS}")
    base = tmp_path_factory.mktemp("tl")
    folder = make_folder(base / "images", per_class=12, bad_files=False)
    r = _cli("train", folder, "-o", base / "run", "--arch", "mobilenetv2", "--alpha", "0.35", "--pretrained",
             "imagenet", "--weights", WEIGHTS, "--img-size", "32", "--head-epochs", "2", "--epochs", "1",
             "--batch-size", "12", "--val-split", "0.25", "--lr", "0.01")
    assert r.exit_code == 0, r.output
    assert "phase head: 2 epochs" in r.output and "phase fine-tune: 1 epochs" in r.output
    assert f"label smoothing {DEFAULT_LABEL_SMOOTHING:g}" in r.output  # the pretrained default, said in the log
    assert "has only 12 images (fewer than 20)" in r.output and "precision" in r.output
    r = _cli("quantize", base / "run", "--data", folder, "-o", base / "m.tflite", "--float-out", base / "f.tflite",
             "--json")
    assert r.exit_code == 0, r.output
    return folder, base / "run", base / "m.tflite", base / "f.tflite", json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.workstation
def test_train_report_has_both_phases_and_per_class_results(tl_run):
    _, run, *_ = tl_run
    rep = json.loads((run / "train_report.json").read_text())
    assert [p["name"] for p in rep["phases"]] == ["head", "fine-tune"]
    assert [h["phase"] for h in rep["history"]] == ["head", "head", "fine-tune"]
    assert rep["phases"][0]["trainable_params"] < rep["phases"][1]["trainable_params"]
    assert rep["pretrained"] == {"name": "imagenet", "weights": str(WEIGHTS)}
    assert rep["options"]["label_smoothing"] == DEFAULT_LABEL_SMOOTHING
    assert set(rep["validation"]["precision"]) == set(CLASSES) and len(rep["validation"]["confusion"]) == 3
    assert len(rep["warnings"]) == 3
    pre = json.loads((run / "preprocessing.json").read_text())
    assert (pre["mean"], pre["std"]) == ([127.5], [127.5])  # MobileNetV2's [-1, 1], recorded, not inside
    for f in ("training_curve.png", "confusion.png"):
        assert (run / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.workstation
def test_int8_model_is_fully_integer_with_per_channel_weights(tl_run):
    *_, m_path, _, rep = tl_run
    assert rep["float_ops"] == [] and rep["input"]["dtype"] == "int8" and rep["output"]["dtype"] == "int8"
    assert abs(rep["input"]["scale"] - 2 / 255) < 1e-6  # calibrated on [-1, 1] inputs
    from edgecnn.runtime import load_backend

    it = load_backend().interpreter_class(model_path=str(m_path))
    convs = sum(v for k, v in rep["operators"].items() if k in ("CONV_2D", "DEPTHWISE_CONV_2D"))
    per_channel = [d for d in it.get_tensor_details() if len(d["quantization_parameters"]["scales"]) > 1
                   and np.dtype(d["dtype"]) == np.int8]
    assert convs >= 50 and len(per_channel) >= convs  # every conv / depthwise filter has one scale per channel


@pytest.mark.workstation
def test_classify_gives_the_keras_top1_normalising_once(tl_run):
    folder, run, m_path, f_path, _ = tl_run
    import keras

    from edgecnn.config import Preprocessing
    from edgecnn.preprocess import read_image, to_pixels
    from edgecnn.train.evaluate import predict_keras

    images = sorted(str(p) for p in Path(folder).rglob("*.*"))
    pre = Preprocessing.from_dict(json.loads((run / "preprocessing.json").read_text()))
    model = keras.models.load_model(run / "model.keras", compile=False)
    ref = predict_keras(model, np.stack([to_pixels(read_image(p), pre) for p in images]), pre)
    labels = (run / "labels.txt").read_text().split()
    results = {}
    for name, path in (("float", f_path), ("int8", m_path)):
        r = _cli("classify", path, *images, "--json", "-k", "3")
        assert r.exit_code == 0, r.output
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        assert [row["image"] for row in rows] == images
        results[name] = rows
    want = [labels[i] for i in ref.argmax(1)]
    assert [row["top"][0]["label"] for row in results["float"]] == want
    for row, scores in zip(results["float"], ref):
        assert abs(row["top"][0]["score"] - scores.max()) < 1e-4
    got = np.array([row["top"][0]["label"] for row in results["int8"]])
    top2 = np.sort(ref, axis=1)
    clear = top2[:, -1] - top2[:, -2] > 0.1  # where float is not a near tie, int8 must agree
    assert clear.sum() >= len(images) // 2, "the tiny model did not learn the colour-coded classes"
    assert (got[clear] == np.array(want)[clear]).all()
    assert ref.argmax(1).tolist().count(ref.argmax(1)[0]) < len(images)  # not one class for every image


# ------------------------------------------------------------------------------------------- real data (slow)



@pytest.mark.slow
@needs_weights
@pytest.mark.workstation
@pytest.mark.skipif(not FLOWERS5.is_dir(), reason=f"flowers5 not at {FLOWERS5}")
def test_flowers5_benchmark_meets_the_goals(tmp_path):
    """tools/flowers_benchmark.py end to end (make test-flowers): the goals of the README on the fixed test split."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(repo / "tools" / "flowers_benchmark.py"), "--weights", str(WEIGHTS),
                        "-o", str(tmp_path / "bench"), "--resnet8-epochs", "10"],
                       capture_output=True, text=True, cwd=repo)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["name"]: row for row in json.loads((tmp_path / "bench" / "results.json").read_text())["results"]}
    v2, r8 = rows["mobilenetv2_0.35_pretrained"], rows["resnet8_scratch"]
    assert v2["int8"]["n"] == 600 and v2["fully_integer"]
    assert v2["int8"]["top1"] >= 0.88, r.stdout
    assert v2["drop_pp"] <= 1.0, r.stdout
    assert v2["int8_bytes"] <= 1_000_000
    assert v2["int8"]["top1"] > r8["int8"]["top1"] + 0.05, r.stdout
