"""`edgecnn classify` and `edgecnn info` as a user runs them, including with TensorFlow unavailable."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.install import userland


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_help_of_every_command():
    r = run("--help")
    assert r.exit_code == 0 and "classify" in r.output
    for name in main.commands:
        sub = run(name, "--help")
        assert sub.exit_code == 0, (name, sub.output)
        assert f" {name} [OPTIONS]" in sub.output


def test_classify_json_contract(tiny_models, image_dir):
    r = run("classify", tiny_models["int8"], image_dir / "colour.png", image_dir / "gray.jpg", "--json", "-k", "2")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["image"] for row in rows] == [str(image_dir / "colour.png"), str(image_dir / "gray.jpg")]
    for row in rows:
        assert len(row["top"]) == 2
        assert {t["label"] for t in row["top"]} <= {"ant", "bee", "cat"}
        assert row["top"][0]["score"] >= row["top"][1]["score"]
        assert set(row["latency_ms"]) == {"preprocess", "invoke", "postprocess"}


def test_classify_folder_continues_past_a_bad_image(tiny_models, image_dir):
    r = run("classify", tiny_models["int8"], image_dir)
    assert r.exit_code == 1
    assert "broken.jpg: truncated JPEG" in r.stderr
    assert "colour.png: " in r.stdout and "gray.jpg: " in r.stdout
    assert "Traceback" not in r.output


def test_classify_threshold_and_labels_file(tiny_models, image_dir, tmp_path):
    (tmp_path / "l.txt").write_text("x\ny\nz\n")
    r = run("classify", tiny_models["uint8"], image_dir / "colour.png", "--labels", tmp_path / "l.txt", "--json",
            "--threshold", "0.0", "-k", "3")
    assert r.exit_code == 0, r.output
    top = json.loads(r.stdout)["top"]
    assert sorted(t["label"] for t in top) == ["x", "y", "z"]
    r = run("classify", tiny_models["uint8"], image_dir / "colour.png", "--json", "--threshold", "0.99")
    assert r.exit_code == 0 and json.loads(r.stdout)["top"] == []


def test_float_model_needs_and_takes_mean_std(tiny_models, image_dir):
    r = run("classify", tiny_models["float"], image_dir / "colour.png")
    assert r.exit_code == 1 and "--mean and --std" in r.output
    r = run("classify", tiny_models["float"], image_dir / "colour.png", "--mean", "0", "--std", "1")
    assert r.exit_code == 0, r.output
    r = run("classify", tiny_models["float"], image_dir / "colour.png", "--mean", "0")
    assert r.exit_code == 2 and "--mean and --std go together" in r.output
    r = run("classify", tiny_models["float"], image_dir / "colour.png", "--mean", "a,b", "--std", "1")
    assert r.exit_code == 2


def test_logits_warning_and_softmax(tiny_models, image_dir):
    r = run("classify", tiny_models["logits"], image_dir / "colour.png", "--json")
    assert r.exit_code == 0 and "not a probability vector" in r.stderr
    r = run("classify", tiny_models["logits"], image_dir / "colour.png", "--json", "--softmax", "-k", "3")
    assert r.exit_code == 0 and "probability" not in r.stderr
    assert sum(t["score"] for t in json.loads(r.stdout)["top"]) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("kind,expected", [("missing", "no such file"), ("text", "not a TFLite flatbuffer"),
                                           ("truncated", "truncated or corrupt"), ("two_inputs", "2 inputs"),
                                           ("vector", "not an image")])
def test_bad_models_give_one_line(tiny_models, image_dir, tmp_path, kind, expected):
    path = {"missing": tmp_path / "nope.tflite", "two_inputs": tiny_models["two_inputs"],
            "vector": tiny_models["vector"]}.get(kind, tmp_path / f"{kind}.tflite")
    if kind == "text":
        path.write_text("not a model")
    if kind == "truncated":
        path.write_bytes(tiny_models["int8"].read_bytes()[:500])
    for cmd in (["classify", path, image_dir / "colour.png"], ["info", path]):
        r = run(*cmd, "--mean", "0", "--std", "1")
        assert r.exit_code == 1, r.output
        assert expected in r.output and str(path) in r.output and "Traceback" not in r.output


def test_labels_that_do_not_fit(tiny_models, image_dir, tmp_path):
    (tmp_path / "l.txt").write_text("a\nb\nc\nd\ne\n")
    r = run("classify", tiny_models["int8"], image_dir / "colour.png", "--labels", tmp_path / "l.txt")
    assert r.exit_code == 1 and "has 5 entries, model outputs 3" in r.output


def test_no_images_is_a_usage_error(tiny_models, tmp_path):
    (tmp_path / "empty").mkdir()
    r = run("classify", tiny_models["int8"], tmp_path / "empty")
    assert r.exit_code == 2 and "no image files" in r.output


def test_names_that_look_like_globs(tiny_models, image_dir):
    (image_dir / "photo[1].png").write_bytes((image_dir / "colour.png").read_bytes())
    r = run("classify", tiny_models["int8"], image_dir / "photo[1].png", image_dir / "nothing*.png", "--json")
    assert r.exit_code == 1  # the existing file is classified; the pattern that matches nothing is reported
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert "top" in rows[0] and rows[0]["image"].endswith("photo[1].png")
    assert "nothing*.png: cannot read" in rows[1]["error"]


def test_image_whose_header_claims_too_many_pixels(tiny_models, image_dir):
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))  # complete, not truncated
    (image_dir / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + iend)
    r = run("classify", tiny_models["int8"], image_dir / "bomb.png", image_dir / "colour.png")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "bomb.png: cannot decode" in r.stderr and "colour.png: " in r.stdout


def test_mean_std_must_fit_the_model(tiny_models, image_dir):
    r = run("classify", tiny_models["gray"], image_dir / "colour.png", "--mean", "1,2,3", "--std", "1,1,1")
    assert r.exit_code == 1 and "mean has 3 values, the input has 1 channel" in r.output
    for bad in (["--mean", "nan", "--std", "1"], ["--mean", "0", "--std", "-1"], ["--mean", "0", "--std", "inf"]):
        r = run("classify", tiny_models["int8"], image_dir / "colour.png", *bad)
        assert r.exit_code == 2 and "Traceback" not in r.output, bad


def test_quantized_softmax_over_many_classes_is_not_called_logits(tiny_models, image_dir):
    r = run("classify", tiny_models["wide"], image_dir / "colour.png", "--json")
    assert r.exit_code == 0, r.output
    assert "probability" not in r.stderr


def test_background_label_shift_is_announced(tiny_models, image_dir, tmp_path):
    (tmp_path / "two.txt").write_text("bee\ncat\n")
    r = run("classify", tiny_models["int8"], image_dir / "colour.png", "--labels", tmp_path / "two.txt")
    assert r.exit_code == 0 and "leading background class" in r.stderr


@pytest.mark.parametrize("record,expected", [
    ([1, 2], "expected an object"), ({"labels": 3}, "expected a list of strings"),
    ({"preprocessing": "x"}, "expected an object"), ({"format": 99}, "newer than this edgecnn reads"),
    ({"preprocessing": {"mean": [1, 2, 3, 4], "std": [1]}}, "mean has 4 values")])
def test_malformed_edgecnn_metadata(tiny_models, image_dir, tmp_path, record, expected):
    from edgecnn.metadata import embed_record

    path = tmp_path / "m.tflite"
    path.write_bytes(embed_record(tiny_models["int8"].read_bytes(), record))
    r = run("classify", path, image_dir / "colour.png")
    assert r.exit_code == 1 and expected in r.output and "Traceback" not in r.output


def test_info_json(tiny_models):
    r = run("info", tiny_models["int8"], "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["size_bytes"] == tiny_models["int8"].stat().st_size
    assert d["inputs"][0]["dtype"] == "int8" and d["inputs"][0]["zero_point"] == -128
    assert d["outputs"][0]["scale"] == pytest.approx(1 / 256)
    assert d["fully_integer"] is True and d["float_ops"] == []
    assert d["operators"]["CONV_2D"] == 1
    assert d["metadata"]["source"] == "edgecnn" and d["metadata"]["labels_head"] == ["ant", "bee", "cat"]
    assert d["backend"]["name"] and d["backend"]["version"]
    r = run("info", tiny_models["float"], "--mean", "0", "--std", "1")
    assert r.exit_code == 0 and "NO, float ops:" in r.output and "CONV_2D" in r.output
    r = run("info", tiny_models["float"])  # describing a float model needs no normalisation
    assert r.exit_code == 0 and "normalisation unknown" in r.output


BLOCK_TF = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("tensorflow is blocked in this test")
sys.meta_path.insert(0, _Block())
from edgecnn.cli import main
try:
    main(sys.argv[1:])
finally:
    assert "tensorflow" not in sys.modules
"""


def test_device_commands_without_tensorflow(tiny_models, image_dir):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for args in (["classify", str(tiny_models["int8"]), str(image_dir / "colour.png"), "--json"],
                 ["info", str(tiny_models["int8"]), "--json"]):
        p = subprocess.run([sys.executable, "-c", BLOCK_TF, *args], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout.splitlines()[0])


def test_invoke_failure_is_one_line(tiny_models, image_dir, monkeypatch):
    import edgecnn.runtime as rt

    real = rt.load_backend()

    class FailingInterpreter(real.interpreter_class):
        def invoke(self):
            raise RuntimeError("Node number 3 (CONV_2D) failed to invoke.\nmore detail")

    monkeypatch.setattr(rt, "load_backend", lambda name=None: rt.Backend(real.name, real.version, FailingInterpreter))
    r = run("classify", tiny_models["int8"], image_dir / "colour.png")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"{tiny_models['int8']}: invoke failed (Node number 3 (CONV_2D) failed to invoke.)" in r.output


# ----------------------------------------------------------------------------------------------- 32-bit Arm kernels
SHIPPED_INT8 = os.path.join(os.path.dirname(__file__), "..", "models", "fashion_mnist", "int8.tflite")


def test_biasless_dense_is_found_only_where_it_is(tiny_models):
    from edgecnn.modelinfo import biasless_per_channel_dense
    from edgecnn.runtime import Backend, Classifier, reference_kernels_reason

    tiny, shipped = Classifier(tiny_models["int8"]), Classifier(SHIPPED_INT8)
    assert len(biasless_per_channel_dense(tiny.interpreter)) == 1  # its untrained Dense had an all-zero bias
    assert biasless_per_channel_dense(shipped.interpreter) == []  # trained: the bias is there
    float_model = Classifier(tiny_models["float"], require_normalisation=False)
    assert biasless_per_channel_dense(float_model.interpreter) == []  # float weights
    old = Backend("tflite_runtime", "2.14.0", tiny.backend.interpreter_class)
    reason = reference_kernels_reason(old, tiny.interpreter, "armv7l", "m.tflite")
    assert reason.startswith("m.tflite: ") and "SIGSEGV" in reason and "reference kernels" in reason
    assert reference_kernels_reason(old, tiny.interpreter, "aarch64", "m.tflite") is None
    assert reference_kernels_reason(old, shipped.interpreter, "armv7l", "m.tflite") is None
    litert = Backend("ai_edge_litert", "2.3.0", tiny.backend.interpreter_class)
    assert reference_kernels_reason(litert, tiny.interpreter, "armv7l", "m.tflite") is None


def test_32bit_tflite_runtime_runs_a_biasless_dense_on_reference_kernels(tiny_models, image_dir, monkeypatch):
    """Where the optimized kernels would crash (tflite-runtime, 32-bit Arm), the model runs on the reference ones,
    says so once, gives the same answer, and bench rows record which kernels they timed."""
    import edgecnn.runtime as rt

    image = image_dir / "colour.png"
    before = json.loads(run("classify", tiny_models["int8"], image, "--json", "--top-k", "3").stdout)
    real = rt.load_backend()
    monkeypatch.setattr(rt, "load_backend", lambda name=None: rt.Backend("tflite_runtime", "2.14.0",
                                                                         real.interpreter_class))
    monkeypatch.setattr(rt, "userland", lambda: userland("aarch64", 32))  # 32-bit Pi OS on a Pi 4
    r = run("classify", tiny_models["int8"], image, "--json", "--top-k", "3")
    assert r.exit_code == 0, r.output
    assert "Warning: " in r.stderr and "running on its reference kernels" in r.stderr
    after = json.loads(r.stdout)
    assert [t["index"] for t in after["top"]] == [t["index"] for t in before["top"]]
    assert all(abs(a["score"] - b["score"]) <= 1 / 256 + 1e-6 for a, b in zip(after["top"], before["top"]))
    b = run("bench", tiny_models["int8"], SHIPPED_INT8, "--runs", "2", "--warmup", "0", "--json")
    assert b.exit_code == 0, b.output
    assert [row["kernels"] for row in json.loads(b.stdout)] == ["reference", "optimized"]
    assert b.stderr.count("reference kernels") == 1
    info = run("info", tiny_models["int8"])
    assert info.exit_code == 0 and "(reference kernels)" in info.stdout


@pytest.mark.skipif(not userland().arch.startswith("armv"),
                    reason="the real check needs a 32-bit Arm userland (make test-arm runs it)")
def test_biasless_dense_does_not_crash_on_this_32bit_arm(tiny_models, image_dir):
    """The real thing: on 32-bit Arm with tflite-runtime the optimized kernels crash (SIGSEGV) on this model."""
    p = subprocess.run([sys.executable, "-m", "edgecnn", "classify", str(tiny_models["int8"]),
                        str(image_dir / "colour.png"), "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["top"]
    from edgecnn.runtime import load_backend
    if load_backend().name == "tflite_runtime":
        assert "running on its reference kernels" in p.stderr
