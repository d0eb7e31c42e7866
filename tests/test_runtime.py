"""Classifier on tiny uint8/int8/float32 models: input quantization, dequantization, top-k, metadata."""

import sys

import numpy as np
import pytest

from edgecnn.config import Preprocessing, RuntimeOptions
from edgecnn.errors import BackendError, LabelsError, ModelError
from edgecnn.install import interpreter_advice, userland
from edgecnn.metadata import embed_metadata, read_metadata
from edgecnn.modelinfo import float_ops, operator_counts
from edgecnn.preprocess import to_input, to_pixels
from edgecnn.runtime import Classifier, is_probability_vector, load_backend, softmax, top_k

from tests.conftest import LABELS


def test_top_k_pure():
    assert top_k(np.array([0.1, 0.7, 0.2]), 2) == [(1, pytest.approx(0.7)), (2, pytest.approx(0.2))]
    assert top_k(np.array([0.5, 0.5, 0.0]), 3, threshold=0.1) == [(0, 0.5), (1, 0.5)]  # ties: lower index first
    assert top_k(np.array([0.1, 0.2]), 5) == [(1, pytest.approx(0.2)), (0, pytest.approx(0.1))]
    # raw logits below 0 are reported at the default threshold (0 filters nothing)
    assert top_k(np.array([-3.0, -1.0, -2.0]), 2) == [(1, -1.0), (2, -2.0)]
    assert top_k(np.array([-3.0, 0.4, -2.0]), 3, threshold=0.3) == [(1, pytest.approx(0.4))]


def test_softmax_and_probability_check():
    p = softmax(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(p, [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)
    assert is_probability_vector(p)
    assert not is_probability_vector(np.array([2.0, -1.0, 0.5]))


def test_int8_model_quantizes_and_dequantizes(tiny_models):
    clf = Classifier(tiny_models["int8"])
    assert clf.input.dtype == np.int8 and clf.output.dtype == np.int8
    # Raw-pixel model: the converter gives input scale 1 and zero_point -128, so q = pixel - 128.
    assert clf.input.scale == pytest.approx(1.0) and clf.input.zero_point == -128
    t = clf.preprocess(np.full((20, 20, 3), 200, np.uint8))
    assert t.shape == (1, 16, 16, 3) and t.dtype == np.int8 and np.all(t == 72)
    # TFLite int8 softmax output: scale 1/256, zero_point -128.
    assert clf.output.scale == pytest.approx(1 / 256) and clf.output.zero_point == -128
    np.testing.assert_allclose(clf.scores(np.array([127, -128, -128], np.int8)), [255 / 256, 0, 0])
    top = clf.postprocess(np.array([127, -128, -120], np.int8), k=2)
    assert [(p.index, p.label) for p in top] == [(0, "ant"), (2, "cat")]
    assert top[0].score == pytest.approx(0.996, abs=1e-3)


def test_unit_scale_input(tiny_models):
    clf = Classifier(tiny_models["unit_int8"])
    assert clf.input.scale == pytest.approx(1 / 255, rel=1e-3) and clf.input.zero_point == -128
    px = np.zeros((16, 16, 3), np.uint8)
    px[0, 0] = 200
    px[0, 1] = 255
    t = clf.tensor_from_pixels(px)
    assert t[0, 0, 0, 0] == 72 and t[0, 0, 1, 0] == 127 and t[0, 1, 1, 0] == -128


def test_uint8_float_and_int8_agree(tiny_models):
    img = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    ref = Classifier(tiny_models["float"], RuntimeOptions(mean=(0.0,), std=(1.0,)))
    s_float = ref.scores(ref.invoke(ref.preprocess(img)))
    for name in ("int8", "uint8"):
        clf = Classifier(tiny_models[name])
        s = clf.scores(clf.invoke(clf.preprocess(img)))
        np.testing.assert_allclose(s, s_float, atol=0.03)
    uint8 = Classifier(tiny_models["uint8"])
    assert uint8.input.dtype == np.uint8 and uint8.labels is None


@pytest.mark.parametrize("name,options", [("int8", {}), ("uint8", {}), ("unit_int8", {}), ("gray", {}),
                                          ("support", {}), ("float", {"mean": (10.0, 20.0, 30.0), "std": (2.0, 3.0, 4.0)})])
def test_per_frame_path_matches_the_shared_rule_and_reuses_its_arrays(tiny_models, name, options):
    clf = Classifier(tiny_models[name], RuntimeOptions(**options))
    pre, inp = clf.preprocessing, clf.input
    frames = np.random.default_rng(5).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    first = clf.preprocess(frames[0], "bgr")
    for frame in frames:
        t = clf.preprocess(frame, "bgr")
        assert t is first  # one input array, written per frame
        expected = to_input(to_pixels(frame, pre, "bgr"), inp.shape, inp.dtype, inp.scale, inp.zero_point,
                            pre.mean, pre.std)
        assert t.tobytes() == expected.tobytes() and t.dtype == expected.dtype and t.shape == expected.shape
        raw = clf.invoke(t)
        assert raw is clf.invoke(t)  # one output array, written per invoke
        scores = clf.scores(raw)
        assert not np.shares_memory(scores, raw)  # scores outlive the next invoke


def test_float_model_without_normalisation_refuses_to_preprocess(tiny_models):
    clf = Classifier(tiny_models["float"], require_normalisation=False)
    with pytest.raises(ValueError, match="--mean"):
        clf.preprocess(np.zeros((16, 16, 3), np.uint8))


def test_float_model_needs_normalisation(tiny_models):
    with pytest.raises(ModelError, match="--mean and --std"):
        Classifier(tiny_models["float"])


def test_gray_three_dim_input(tiny_models):
    clf = Classifier(tiny_models["gray"])
    assert clf.input.shape == (1, 16, 16) and clf.preprocessing.channels == 1
    res = clf.classify(np.random.default_rng(0).integers(0, 256, (50, 30, 3), dtype=np.uint8), k=3)
    assert len(res.top) == 3 and res.probabilities
    assert sum(p.score for p in res.top) == pytest.approx(1.0, abs=0.02)


def test_labels_file_overrides_and_must_fit(tiny_models, tmp_path):
    (tmp_path / "l.txt").write_text("0: x\n1: y\n2: z\n")
    assert Classifier(tiny_models["int8"], RuntimeOptions(labels_path=str(tmp_path / "l.txt"))).labels == ["x", "y", "z"]
    (tmp_path / "two.txt").write_text("x\ny\n")
    assert Classifier(tiny_models["uint8"], RuntimeOptions(labels_path=str(tmp_path / "two.txt"))).labels == \
        ["background", "x", "y"]
    (tmp_path / "five.txt").write_text("a\nb\nc\nd\ne\n")
    with pytest.raises(LabelsError, match="has 5 entries, model outputs 3"):
        Classifier(tiny_models["int8"], RuntimeOptions(labels_path=str(tmp_path / "five.txt")))


def test_metadata_round_trip_keeps_other_entries(tiny_models):
    data = tiny_models["int8"].read_bytes()
    meta = read_metadata(data)
    assert meta.source == "edgecnn" and meta.labels == LABELS
    assert Preprocessing.from_dict(meta.preprocessing) == Preprocessing(16, 16, 3, mean=(0.0,), std=(1.0,))
    assert "min_runtime_version" in meta.entries
    again = embed_metadata(data, ["p", "q", "r"], Preprocessing(16, 16, 3, resize="letterbox"))
    meta2 = read_metadata(again)
    assert meta2.labels == ["p", "q", "r"] and meta2.preprocessing["resize"] == "letterbox"
    assert meta2.entries.count("edgecnn") == 1 and "min_runtime_version" in meta2.entries
    assert read_metadata(tiny_models["uint8"].read_bytes()).source is None


@pytest.mark.parametrize("name,match", [("two_inputs", "2 inputs, expected 1"), ("vector", "not an image")])
def test_not_an_image_classifier(tiny_models, name, match):
    with pytest.raises(ModelError, match=match):
        Classifier(tiny_models[name], RuntimeOptions(mean=(0.0,), std=(1.0,)))


def test_bad_model_files(tmp_path, tiny_models):
    with pytest.raises(ModelError, match="no such file"):
        Classifier(tmp_path / "missing.tflite")
    (tmp_path / "text.tflite").write_text("hello, I am not a model at all")
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        Classifier(tmp_path / "text.tflite")
    data = tiny_models["int8"].read_bytes()
    for n in (12, 300, len(data) // 2, len(data) - 64):
        (tmp_path / "cut.tflite").write_bytes(data[:n])
        with pytest.raises(ModelError, match="truncated or corrupt"):
            Classifier(tmp_path / "cut.tflite")


@pytest.mark.parametrize("name", ["int8", "uint8", "float", "gray", "wide", "two_inputs"])
def test_truncated_flatbuffer_is_refused_before_any_interpreter_sees_it(tiny_models, name):
    """tflite-runtime 2.14 does not verify the flatbuffer and dies with SIGSEGV on a cut file (an interrupted
    copy): edgecnn's own bounds check must find every cut, and pass every whole model."""
    from edgecnn.metadata import check_tflite, outside_the_file

    data = tiny_models[name].read_bytes()
    assert outside_the_file(data) is None
    for n in (8, 12, 100, 300, len(data) // 2, len(data) - 100):
        assert outside_the_file(data[:n]) is not None, n
        with pytest.raises(ModelError, match=r"truncated or corrupt\? \(.* points outside the file's"):
            check_tflite(data[:n], "cut.tflite")


def test_backend_choice(monkeypatch):
    b = load_backend()
    assert b.name in ("ai_edge_litert", "tflite_runtime", "tensorflow") and b.version
    for mod in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter",
                "tensorflow"):
        monkeypatch.setitem(sys.modules, mod, None)  # makes `import mod` raise ImportError
    with pytest.raises(BackendError) as e:
        load_backend()
    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        assert f"tried {name}" in str(e.value) or f"; {name} (" in str(e.value)
    assert interpreter_advice(userland()) in str(e.value)  # what to install on this userland, see test_install.py
    with pytest.raises(BackendError, match=r"tried tflite_runtime .*pip install 'edgecnn\[tflite-runtime\]'"):
        load_backend("tflite_runtime")
    with pytest.raises(BackendError, match="tried tensorflow .*pip install tensorflow"):
        load_backend("tensorflow")


def test_modelinfo_float_ops(tiny_models):
    assert float_ops(Classifier(tiny_models["int8"]).interpreter) == []
    f = Classifier(tiny_models["float"], RuntimeOptions(mean=(0.0,), std=(1.0,))).interpreter
    assert "CONV_2D" in float_ops(f)
    assert operator_counts(f)["CONV_2D"] == 1


def test_tflite_support_metadata(tiny_models):
    meta = read_metadata(tiny_models["support"].read_bytes())
    assert meta.source == "tflite-support"
    assert meta.labels == LABELS and meta.preprocessing == {"mean": [127.5], "std": [127.5]}
    clf = Classifier(tiny_models["support"])  # float input: normalisation comes from the metadata
    assert clf.labels == ["background", *LABELS]  # 4 outputs, 3 labels: leading background class
    t = clf.preprocess(np.full((16, 16, 3), 255, np.uint8))
    assert t.dtype == np.float32 and np.allclose(t, 1.0)
