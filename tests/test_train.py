"""Architectures (parameters, MACs), and `edgecnn train` end to end on tiny folders: outputs, determinism,
refusal to overwrite, bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.config import ARCHITECTURES, TrainOptions

from tests.test_data import CLASSES, make_folder, write_idx_folder

pytestmark = pytest.mark.workstation

TINY = ["--img-size", "16", "--arch", "cnn", "--width", "0.25", "--epochs", "2", "--batch-size", "8",
        "--val-split", "0.25"]


def _train(args):
    return CliRunner().invoke(main, ["train", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data") / "images")


def test_layer_costs_match_the_formulas():
    import keras

    from edgecnn.train.model import cost_table, layer_costs

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)                      # 8*8*3*3*3*4
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)          # 4*4*3*3*4
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(5, name="fc")(x)                                              # 4*5
    costs = {c.name: c for c in layer_costs(keras.Model(inp, out))}
    assert costs["conv"].macs == 8 * 8 * 3 * 3 * 3 * 4 and costs["conv"].params == 3 * 3 * 3 * 4 + 4
    assert costs["dw"].macs == 4 * 4 * 3 * 3 * 4 and costs["dw"].output_shape == (4, 4, 4)
    assert costs["fc"].macs == 4 * 5 and costs["fc"].params == 4 * 5 + 5
    assert cost_table(list(costs.values())).splitlines()[-1].split()[-1] == f"{sum(c.macs for c in costs.values()):,}"


@pytest.mark.parametrize("arch", [a for a in ARCHITECTURES if a != "mobilenetv2"])
def test_architectures_take_raw_pixels_and_scale_with_width(arch):
    from edgecnn.train.model import build, layer_costs

    small, big = build(arch, (32, 32, 3), 4, 0.5), build(arch, (32, 32, 3), 4, 1.0)
    assert small.input_shape == (None, 32, 32, 3) and small.output_shape == (None, 4)
    assert small.layers[1].__class__.__name__ == "Rescaling"  # the only preprocessing inside the model
    assert not any("Random" in type(layer).__name__ for layer in big.layers)  # augmentation stays out
    assert sum(c.params for c in layer_costs(small)) < sum(c.params for c in layer_costs(big))
    p = small.predict(np.full((2, 32, 32, 3), 255.0, np.float32), verbose=0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_resnet8_is_the_mlperf_tiny_size():
    from edgecnn.train.model import build, layer_costs

    m = build("resnet8", (32, 32, 3), 10)
    trainable = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    # MLPerf Tiny reports 78k parameters and 12.5M MACs for ResNet-8 on 32x32x3 CIFAR-10.
    assert 77_000 <= trainable <= 79_000
    assert 12.0e6 <= sum(c.macs for c in layer_costs(m)) <= 12.8e6


def test_train_writes_outdir_and_lists_skipped_files(folder, tmp_path):
    out = tmp_path / "run"
    r = _train([str(folder), "-o", str(out), *TINY])
    assert r.exit_code == 0, r.output
    for name in ("model.keras", "labels.txt", "preprocessing.json", "train_report.json", "training_curve.png"):
        assert (out / name).is_file(), name
    assert (out / "labels.txt").read_text().split() == list(CLASSES)
    pre = json.loads((out / "preprocessing.json").read_text())
    assert pre == {"height": 16, "width": 16, "channels": 3, "resize": "center-crop", "mean": [0.0], "std": [1.0]}
    rep = json.loads((out / "train_report.json").read_text())
    assert rep["params"] == sum(layer["params"] for layer in rep["layers"]) and rep["macs"] > 0
    assert len(rep["history"]) == 2 and {"loss", "val_accuracy", "lr", "seconds"} <= set(rep["history"][0])
    assert rep["best_val_accuracy"] == max(h["val_accuracy"] for h in rep["history"])
    assert rep["data"]["counts"] == {c: 12 for c in CLASSES} and rep["data"]["train"] + rep["data"]["val"] == 36
    assert {s["path"].rsplit("/", 1)[-1] for s in rep["data"]["skipped"]} >= {"empty.png", "truncated.jpg"}
    assert "truncated.jpg" in r.output and "total" in r.output  # skipped list and the parameter/MAC table
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_same_seed_same_weights(folder, tmp_path):
    import keras

    weights = []
    for name in ("a", "b"):
        assert _train([str(folder), "-o", str(tmp_path / name), *TINY, "--seed", "3"]).exit_code == 0
        weights.append(keras.models.load_model(tmp_path / name / "model.keras").get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    h = [json.loads((tmp_path / n / "train_report.json").read_text())["history"] for n in ("a", "b")]
    assert [e["val_accuracy"] for e in h[0]] == [e["val_accuracy"] for e in h[1]]


def test_refuses_non_empty_outdir_unless_force(folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    r = _train([str(folder), "-o", str(out), *TINY])
    assert r.exit_code == 1 and "--force" in r.output and (out / "precious.txt").exists()
    r = _train([str(folder), "-o", str(out), *TINY, "--epochs", "1", "--force"])
    assert r.exit_code == 0 and (out / "model.keras").exists() and not (out / "precious.txt").exists()


def test_a_diverging_run_is_one_error_and_writes_nothing(folder, tmp_path):
    """A learning rate far too high makes the loss NaN: before, train said "best validation accuracy 20%", exited
    0 and wrote a model of NaN weights."""
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(folder), "-o", str(out), *TINY, "--lr", "1e12"])
    assert r.exit_code == 1, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("Error: training diverged: the loss became nan in epoch 1") and "--lr" in last, last
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("option, value", [("--lr", "nan"), ("--lr", "inf"), ("--fine-tune-lr", "inf")])
def test_a_learning_rate_that_is_not_a_finite_number_is_refused(folder, tmp_path, option, value):
    r = CliRunner().invoke(main, ["train", str(folder), "-o", str(tmp_path / "o"), *TINY, option, value])
    assert r.exit_code == 2 and "expected a finite number > 0" in r.output and not (tmp_path / "o").exists()


def test_bad_data_is_one_clear_line(tmp_path, folder):
    r = CliRunner().invoke(main, ["train", str(tmp_path / "nothing"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "no such folder" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["train", str(folder), "-o", str(tmp_path / "o"), "--strict", *TINY])
    assert r.exit_code == 1 and "--strict" in r.output and not (tmp_path / "o").exists()
    r = CliRunner().invoke(main, ["train", str(folder), "-o", str(tmp_path / "o"), "--val-split", "1.5"])
    assert r.exit_code == 2 and "--val-split" in r.output


def test_idx_source_trains_grayscale(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", size=12)
    out = tmp_path / "run"
    r = _train([f"idx:{folder}", "-o", str(out), "--arch", "mobilenet", "--width", "0.25", "--epochs", "1",
                "--batch-size", "16", "--no-flip", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)  # stdout holds the JSON alone (epoch lines go to stderr)
    assert "val_accuracy" in r.stderr
    assert rep["input"]["channels"] == 1 and rep["input"]["height"] == 12 and rep["data"]["test"] == 20
    assert rep["options"]["flip"] is False


def test_options_validate():
    with pytest.raises(ValueError, match="arch"):
        TrainOptions(arch="vgg16")
    with pytest.raises(ValueError, match="val_split"):
        TrainOptions(val_split=0.0)


@pytest.mark.parametrize("cmd", ["train", "quantize", "evaluate"])
def test_help(cmd):
    r = CliRunner().invoke(main, [cmd, "--help"])
    assert r.exit_code == 0 and "DATA" in r.output


def test_native_stderr_is_held_back_and_replayed_on_failure(capfd):
    import os

    from edgecnn.nativelog import quiet_native_stderr

    with quiet_native_stderr():
        os.write(2, b"chatter from C++\n")
    assert "chatter" not in capfd.readouterr().err
    with pytest.raises(RuntimeError):
        with quiet_native_stderr():
            os.write(2, b"converter diagnostics\n")
            raise RuntimeError("conversion failed")
    assert "converter diagnostics" in capfd.readouterr().err


def test_narrow_resnet8_at_96_pixels_trains_without_crashing(folder, tmp_path):
    """TensorFlow 2.21's oneDNN kernels crashed (SIGSEGV in fit) on this shape; edgecnn turns them off by default.
    Run in a child process so that a crash fails this test instead of ending the test run."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    p = subprocess.run([sys.executable, "-m", "edgecnn", "train", str(folder), "-o", str(tmp_path / "o"),
                        "--width", "0.5", "--epochs", "1", "--batch-size", "8"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "o" / "model.keras").is_file()
