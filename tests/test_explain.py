"""edgecnn explain: layer table, feature maps, filters, occlusion, the page (device side: no TensorFlow needed
except where a test says so).

Fixtures: tests/fixtures/explain_edges.tflite and explain_left.tflite, made by tools/make_explain_fixtures.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.config import ExplainOptions, RuntimeOptions
from edgecnn.errors import ModelError
from edgecnn.explain import (BatchScorer, explain_image, log_odds, occlusion_map, patch_starts, plain_background,
                             select_layers, strongest_channels)
from edgecnn.explain_compare import error_stats, pair_layers
from edgecnn.metadata import tflite_schema
from edgecnn.layers import Layer, layer_table, open_debug_interpreter, totals
from edgecnn.explain_html import images, render_html
from edgecnn.runtime import Backend, Classifier

FIXTURES = Path(__file__).parent / "fixtures"
EDGES = FIXTURES / "explain_edges.tflite"
LEFT = FIXTURES / "explain_left.tflite"
SHIPPED = Path(__file__).parent.parent / "models" / "fashion_mnist"
SIZE = 16


def stripes(axis: int) -> np.ndarray:
    """16x16x3 uint8 bands of 4 pixels (0 / 255): axis 0 horizontal stripes, axis 1 vertical stripes."""
    band = (np.arange(SIZE) // 4) % 2 * 255
    img = np.broadcast_to(band[:, None] if axis == 0 else band[None, :], (SIZE, SIZE))
    return np.repeat(img[:, :, None], 3, axis=2).astype(np.uint8)


def _explain(path: Path, image: np.ndarray, **kw):
    clf = Classifier(path, RuntimeOptions(threads=1))
    return explain_image(clf, path.read_bytes(), image, "test.png", ExplainOptions(**kw))


# ----------------------------------------------------------------------------------------------- layer table
def test_layer_table_of_the_edge_model_counts_params_and_macs_from_shapes():
    clf = Classifier(EDGES, RuntimeOptions(threads=1))
    layers = layer_table(clf.interpreter)
    assert [x.op for x in layers] == ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    conv = layers[0]
    assert conv.shape == (1, 14, 14, 2) and conv.dtype == "int8" and conv.scale > 0
    assert conv.params == 2 * 3 * 3 * 3 + 2  # kernel (2, 3, 3, 3) + bias
    assert conv.macs == 14 * 14 * 2 * 3 * 3 * 3  # out_h*out_w*out_c*k_h*k_w*in_c
    assert layers[1].params == 0 and layers[1].macs == 0  # the axis vector of MEAN is not a parameter
    assert layers[2].macs == 2 * 2


def test_shipped_resnet8_table_matches_model_py_once_batchnorm_is_folded():
    """Keras counts every BatchNormalization's gamma, beta, moving mean and variance (4 per channel); the converter
    folds them into the preceding convolution's kernel and bias, which the convolution already has (use_bias),
    so the .tflite has 4 * channels fewer parameters per BatchNormalization. MACs are the same formula."""
    pytest.importorskip("tensorflow", reason="reading model.keras needs TensorFlow (edgecnn[train])")
    import keras

    from edgecnn.train.model import layer_costs

    model = keras.models.load_model(SHIPPED / "model.keras", compile=False)
    costs = layer_costs(model)
    bn = sum(4 * int(layer.output.shape[-1]) for layer in model.layers
             if type(layer).__name__ == "BatchNormalization")
    assert all(layer.use_bias for layer in model.layers if type(layer).__name__ == "Conv2D")
    table = totals(layer_table(Classifier(SHIPPED / "int8.tflite").interpreter))
    assert table["macs"] == sum(c.macs for c in costs)
    assert table["params"] == sum(c.params for c in costs) - bn
    assert (table["params"], bn) == (77_418, 960)


# ----------------------------------------------------------------------------------------------- feature maps
@pytest.mark.parametrize("axis", [0, 1])
def test_edge_kernels_show_matching_stripes_in_feature_maps(axis):
    """Horizontal stripes light up the horizontal-edge channel (0) in horizontal bands and leave the
    vertical-edge channel (1) flat; vertical stripes the other way round."""
    expl = _explain(EDGES, stripes(axis), occlusion=False)
    fmap = expl.maps[0]
    assert fmap.layer.op == "CONV_2D"
    values = fmap.values  # (14, 14, 2)
    hit, other = (0, 1) if axis == 0 else (1, 0)
    along, across = (1, 0) if axis == 0 else (0, 1)  # a horizontal band is constant along x (axis 1)
    assert np.ptp(values[:, :, hit], axis=along).max() == 0  # constant along each band
    assert np.ptp(values[:, :, hit], axis=across).min() > 1.0  # changing across the bands
    assert np.abs(values[:, :, other]).max() < 0.2 * np.abs(values[:, :, hit]).max()
    assert int(fmap.channels[0]) == hit  # strongest first
    grid = images(expl)["layer00_conv_2d.png"]
    tile = grid[:grid.shape[0], :grid.shape[0]]  # the first (strongest) tile is square
    assert np.ptp(tile.astype(int), axis=along).max() == 0 and np.ptp(tile.astype(int), axis=across).max() > 100


def test_edge_filters_draw_as_matching_stripes():
    expl = _explain(EDGES, stripes(0), occlusion=False)
    layer, w = expl.filters
    assert layer.op == "CONV_2D" and w.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(w[0, :, :, 0] / np.abs(w[0]).max(), [[1, 1, 1], [0, 0, 0], [-1, -1, -1]], atol=0.01)
    np.testing.assert_allclose(w[1, :, :, 0] / np.abs(w[1]).max(), [[1, 0, -1]] * 3, atol=0.01)
    pic = images(expl)["filters.png"]
    side = (pic.shape[1] - 2) // 2
    horizontal, vertical = pic[:, :side].astype(int), pic[:, side + 2:].astype(int)
    for tile, along in ((horizontal, 1), (vertical, 0)):
        assert np.ptp(tile, axis=along).max() == 0
        assert tile.max() == 255 and tile.min() == 0  # +1 full intensity, -1 black
        assert (tile == 128).any()  # 0 mid grey


def test_large_layers_are_sampled_and_say_how_many():
    expl = _explain(SHIPPED / "int8.tflite", np.zeros((28, 28), np.uint8), occlusion=False, max_channels=5)
    assert all(len(m.channels) == 5 for m in expl.maps)
    d = expl.to_dict()["feature_maps"][-1]
    assert (d["shown"], d["of"]) == (5, 64)
    assert "5 of 64 channels (the strongest)" in render_html(expl)


def test_strongest_channels_orders_by_mean_absolute_activation():
    fmap = np.zeros((2, 2, 4), np.float32)
    fmap[..., 1], fmap[..., 2], fmap[..., 3] = 1.0, -3.0, 1.0
    idx, strength = strongest_channels(fmap, 3)
    assert idx.tolist() == [2, 1, 3] and strength.tolist() == [3.0, 1.0, 1.0]


def test_select_layers_by_index_and_name_and_refuses_unknown():
    layers = layer_table(Classifier(SHIPPED / "int8.tflite").interpreter)
    assert [x.index for x in select_layers(layers, ("0", "add"))] == [0, 3, 7, 11]
    with pytest.raises(ValueError, match="not in the model"):
        select_layers(layers, ("max_pool_2d",))
    with pytest.raises(ValueError, match="expected a feature map"):
        select_layers(layers, ("softmax",))


def test_a_backend_without_preserve_all_tensors_is_named():
    class OldInterpreter:
        def __init__(self, model_content=None, num_threads=None):
            pass

    with pytest.raises(ModelError, match="tflite_runtime 2.4.0 cannot keep intermediate tensors"):
        open_debug_interpreter(Backend("tflite_runtime", "2.4.0", OldInterpreter), b"")


# ----------------------------------------------------------------------------------------------- occlusion
@pytest.mark.parametrize("patch,stride,zero_from", [(4, 4, 8), (4, 2, 10), (3, 1, 10)])
def test_occlusion_of_a_left_half_model_is_zero_on_the_right(patch, stride, zero_from):
    """Right of column 8 plus the reach of a patch straddling the border nothing can matter."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    occ = _explain(LEFT, image, patch=patch, stride=stride).occlusion
    assert occ.heat.shape == (SIZE, SIZE)
    assert np.all(occ.heat[:, zero_from:] == 0)
    assert np.abs(occ.heat[:, :8]).max() > 0


def test_occlusion_batches_and_counts_invokes():
    clf = Classifier(LEFT, RuntimeOptions(threads=1))
    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    one = occlusion_map(BatchScorer(clf, LEFT.read_bytes(), 1), image, 0, 4, 2)
    scorer = BatchScorer(clf, LEFT.read_bytes(), 16)
    assert scorer.batch == 16, scorer.note
    assert scorer.unit == "log-odds"  # the model ends in a softmax: its logits are read
    many = occlusion_map(scorer, image, 0, 4, 2, batch=16)
    assert one.positions == many.positions == 7 * 7
    assert (one.invokes, many.invokes) == (1 + 49, 1 + 4)  # the unoccluded image, then ceil(49 / 16)
    np.testing.assert_allclose(one.heat, many.heat, atol=1e-6)


def test_log_odds_matches_the_probability_form_and_does_not_saturate():
    z = np.array([[2.0, 0.5, -1.0], [30.0, 0.0, 0.0]])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(log_odds(z, 0)[:1], np.log(p[0, 0] / (1 - p[0, 0])))
    assert log_odds(z, 0)[1] == pytest.approx(30.0 - np.log(2.0))  # p rounds to 1 here; the log-odds do not
    np.testing.assert_allclose(log_odds(np.array([[1.5], [-2.0]]), 0), [1.5, -2.0])


def test_occlusion_moves_a_saturated_int8_prediction():
    """The shipped model gives 255/256 for this boot; the log-odds from its logits still show where it looks."""
    import gzip

    raw = gzip.open(SHIPPED.parent / "fashion_mnist_sample" / "t10k-images-idx3-ubyte.gz").read()
    boot = np.frombuffer(raw, np.uint8, offset=16)[:784].reshape(28, 28)
    expl = _explain(SHIPPED / "int8.tflite", boot, layers=("0",))
    assert expl.top[0].label == "Ankle boot" and expl.top[0].score == pytest.approx(255 / 256)
    occ = expl.occlusion
    assert occ.unit == "log-odds" and occ.heat.max() > 0.5
    assert (occ.patch, occ.stride, occ.positions) == (5, 2, 13 * 13)


def test_patch_starts_cover_every_pixel():
    assert patch_starts(16, 4, 4) == [0, 4, 8, 12]
    assert patch_starts(16, 5, 4) == [0, 4, 8, 11]
    assert patch_starts(3, 5, 2) == [0]


# ----------------------------------------------------------------------------------------------- the command
def _png(tmp_path: Path, image: np.ndarray) -> Path:
    p = tmp_path / "img.png"
    cv2.imwrite(str(p), image[:, :, ::-1] if image.ndim == 3 else image)
    return p


def test_cli_writes_one_self_contained_page_and_pngs(tmp_path):
    img = _png(tmp_path, stripes(0))
    out, pngs = tmp_path / "page.html", tmp_path / "pngs"
    r = CliRunner().invoke(main, ["explain", str(EDGES), str(img), "-o", str(out), "--png", str(pngs)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    for section in ("Layer table", "Feature maps", "First-layer filters", "Where it looks"):
        assert section in page
    assert not re.search(r"(src|href)=\"(?!data:|#)", page)  # nothing loaded from anywhere
    assert page.count("data:image/png;base64,") == 5  # input, 1 layer, filters, overlay, map
    names = sorted(p.name for p in pngs.iterdir())
    assert names == ["filters.png", "input.png", "layer00_conv_2d.png", "occlusion.png", "occlusion_map.png"]
    assert cv2.imread(str(pngs / "filters.png")) is not None
    assert "60 parameters, 10,588 MACs per image" in r.output


def test_cli_json_numbers_and_refuses_to_overwrite(tmp_path):
    img = _png(tmp_path, stripes(1))
    r = CliRunner().invoke(main, ["explain", str(EDGES), str(img), "--json", "--patch", "4", "--stride", "4",
                                  "--fill", "0"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output.strip().splitlines()[-1])
    assert d["totals"] == {"params": 56 + 4, "macs": 10584 + 4}
    assert d["layers"][0]["share"] == pytest.approx(10584 / 10588)
    assert d["occlusion"]["positions"] == 16 and np.array(d["occlusion"]["map"]).shape == (SIZE, SIZE)
    assert (d["occlusion"]["fill"], d["occlusion"]["invokes"]) == (0, 2)  # 16 patches + 1 image in one batch of 32
    assert d["feature_maps"][0]["channels"][0] == 1  # vertical stripes: the vertical-edge channel
    out = tmp_path / "page.html"
    out.write_text("mine")
    r = CliRunner().invoke(main, ["explain", str(EDGES), str(img), "-o", str(out)])
    assert r.exit_code == 2 and "exists" in r.output and out.read_text() == "mine"


def test_cli_bad_layer_is_one_clear_error(tmp_path):
    img = _png(tmp_path, stripes(0))
    r = CliRunner().invoke(main, ["explain", str(EDGES), str(img), "--layers", "7", "--json"])
    assert r.exit_code == 2 and "layer '7' is not in the model" in r.output


# ----------------------------------------------------------------------------------------------- float vs int8
def test_error_stats_by_hand():
    f = np.array([0.0, 1.0, 2.0, 3.0])
    rmse, rel, cos, mx = error_stats(f + np.array([0.0, 0.0, 0.0, 0.3]), f)
    assert rmse == pytest.approx(0.15) and rel == pytest.approx(0.05) and mx == pytest.approx(0.3)
    assert cos == pytest.approx(float((f + [0, 0, 0, 0.3]) @ f) / np.linalg.norm(f + [0, 0, 0, 0.3]) / np.linalg.norm(f))
    assert error_stats(np.zeros(3), np.zeros(3)) == (0.0, 0.0, 1.0, 0.0)
    assert error_stats(-f, f)[2] == pytest.approx(-1.0)


def test_pairing_skips_interface_ops_and_survives_an_extra_op():
    def layer(i, op, shape):
        return Layer(i, op, (), i, shape, "int8", 0.0, 0, 0, 0)

    q = [layer(0, "QUANTIZE", (1, 4, 4, 3)), layer(1, "CONV_2D", (1, 4, 4, 8)), layer(2, "MEAN", (1, 8)),
         layer(3, "FULLY_CONNECTED", (1, 2)), layer(4, "DEQUANTIZE", (1, 2))]
    f = [layer(0, "CONV_2D", (1, 4, 4, 8)), layer(1, "RESHAPE", (1, 4, 4, 8)), layer(2, "MEAN", (1, 8)),
         layer(3, "FULLY_CONNECTED", (1, 2))]
    assert [(a.index, b.index) for a, b in pair_layers(q, f)] == [(1, 0), (2, 2), (3, 3)]


def test_cli_compare_with_the_float_tflite_lists_every_layer_worst_first(tmp_path):
    img = _png(tmp_path, stripes(0))
    r = CliRunner().invoke(main, ["explain", str(EDGES), str(img), "--json", "--no-occlusion",
                                  "--compare", str(FIXTURES / "explain_edges_float.tflite")])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output.strip().splitlines()[-1])["comparison"]
    assert sorted(x["op"] for x in rows) == ["CONV_2D", "FULLY_CONNECTED", "MEAN", "SOFTMAX"]
    assert [x["rel_rmse"] for x in rows] == sorted((x["rel_rmse"] for x in rows), reverse=True)
    conv = next(x for x in rows if x["op"] == "CONV_2D")
    assert conv["cosine"] > 0.999 and conv["rel_rmse"] < 0.01  # hand-set kernels quantize well
    assert conv["float_min"] < 0 < conv["float_max"]  # the float edges have both signs: real activations


def test_compare_finds_a_broken_layer(tmp_path):
    """Corrupting the int8 model's convolution weights shows up as a large error at that layer (and after it)."""
    clf = Classifier(EDGES, RuntimeOptions(threads=1))
    data = bytearray(EDGES.read_bytes())
    w = clf.interpreter.get_tensor(layer_table(clf.interpreter)[0].weights).tobytes()
    at = bytes(data).find(w)
    assert at > 0
    data[at:at + len(w)] = np.full(len(w), 7, np.int8).tobytes()
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(bytes(data))
    expl = _explain_compare(broken, FIXTURES / "explain_edges_float.tflite", stripes(0))
    conv = next(r for r in expl.comparison if r.int8.op == "CONV_2D")
    assert conv.cosine < 0.5 and conv.rel_rmse > 0.1
    assert expl.comparison[0].rel_rmse > 0.1


def _explain_compare(path: Path, float_path: Path, image: np.ndarray):
    clf = Classifier(path, RuntimeOptions(threads=1))
    return explain_image(clf, path.read_bytes(), image, "test.png", ExplainOptions(occlusion=False),
                         float_path.read_bytes())


def test_cli_compare_with_a_keras_model(tmp_path):
    pytest.importorskip("tensorflow", reason="--compare MODEL.keras converts it with TensorFlow (edgecnn[train])")
    from tests import tiny_models as tm

    model = tm.keras_classifier()
    model.save(tmp_path / "tiny.keras")
    (tmp_path / "tiny.tflite").write_bytes(tm.convert(model, "int8"))
    img = _png(tmp_path, np.random.default_rng(2).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    r = CliRunner().invoke(main, ["explain", str(tmp_path / "tiny.tflite"), str(img), "--json", "--no-occlusion",
                                  "--compare", str(tmp_path / "tiny.keras")])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output.strip().splitlines()[-1])["comparison"]
    assert {x["op"] for x in rows} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert all(x["cosine"] > 0.98 for x in rows)


def test_cli_png_folder_checks(tmp_path):
    img = _png(tmp_path, stripes(0))
    r = CliRunner().invoke(main, ["explain", str(EDGES), str(img), "--png", str(tmp_path / "no" / "pngs")])
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "pngs").mkdir()
    (tmp_path / "pngs" / "filters.png").write_bytes(b"mine")
    r = CliRunner().invoke(main, ["explain", str(EDGES), str(img), "--png", str(tmp_path / "pngs")])
    assert r.exit_code == 1 and "filters.png exists" in r.output
    assert [p.name for p in (tmp_path / "pngs").iterdir()] == ["filters.png"]  # nothing half-written beside it
    assert (tmp_path / "pngs" / "filters.png").read_bytes() == b"mine"


def test_binary_sigmoid_model_without_convolutions(tmp_path):
    """A one-sigmoid binary classifier with no convolution (built as a flatbuffer): no filters and no feature maps,
    said so; occlusion on the log-odds of the sigmoid's input; a graph with a fixed batch of 1 scores one image per
    invoke and says why."""
    from tests.tflite_builder import Spec, build

    path = tmp_path / "binary.tflite"
    path.write_bytes(build(Spec(in_dtype="int8", out_dtype="int8", classes=1, out_shapes=[(1, 1)],
                                activation="sigmoid", weights="int8")))
    img = _png(tmp_path, np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    r = CliRunner().invoke(main, ["explain", str(path), str(img), "--json", "--mean", "0", "--std", "255",
                                  "--target", "1", "--patch", "4", "--stride", "4"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output.strip().splitlines()[-1])
    assert d["filters"] is None and d["feature_maps"] == []
    assert any("no CONV_2D" in n for n in d["notes"])
    occ = d["occlusion"]
    assert occ["unit"] == "log-odds" and occ["target"] == 1 and occ["positions"] == 4
    if occ["batch"] == 1:
        assert occ["invokes"] == 5 and any("one image per invoke" in n for n in d["notes"])
    assert np.abs(np.array(occ["map"])).max() > 0


def _read_flatbuffer(path: Path) -> list[tuple[str, tuple, int, int]]:
    """(op name, output shape, params, MACs) per operator, read from the file with the generated TFLite schema
    (not through an interpreter): the weights and bias of conv / depthwise / fully connected ops and the MAC rules
    of the issue, written out again here."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated", reason="the generated TFLite schema")
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sg = model.subgraphs[0]
    rows = []
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        out = tuple(int(x) for x in sg.tensors[op.outputs[0]].shape)
        params = macs = 0
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w = [int(x) for x in sg.tensors[op.inputs[1]].shape]
            bias = int(np.prod(sg.tensors[op.inputs[2]].shape)) if len(op.inputs) > 2 and op.inputs[2] >= 0 else 0
            params = int(np.prod(w)) + bias
            macs = out[1] * out[2] * int(np.prod(w)) if name != "FULLY_CONNECTED" else int(np.prod(w))
        rows.append((name, out, params, macs))
    return rows


@pytest.mark.parametrize("path", [SHIPPED / "int8.tflite", SHIPPED / "float32.tflite", EDGES, LEFT],
                         ids=lambda p: p.name)
def test_layer_table_matches_an_independent_reading_of_the_file(path):
    expected = _read_flatbuffer(path)
    table = layer_table(Classifier(path, RuntimeOptions(mean=(0.0,), std=(1.0,))).interpreter)
    got = [(x.op, x.shape, x.params if x.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") else 0, x.macs)
           for x in table]
    assert got == expected


# ----------------------------------------------------------------------------------------------- the web view
def _get(url):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_camera_web_view_links_to_an_explain_page_of_the_newest_frame():
    import time
    from types import SimpleNamespace

    from edgecnn.explain_frame import FrameExplainer
    from edgecnn.geometry import Roi
    from edgecnn.loop import LoopResult
    from edgecnn.serve import FrameServer
    from edgecnn.sources import Frame

    summary = lambda res: res.summary(SimpleNamespace(backend=SimpleNamespace(name="fake"), threads=1,  # noqa: E731
                                                      path="fake.tflite"), "fake")
    server = FrameServer("127.0.0.1", 0, 5.0, summary, roi=Roi(8, 4, SIZE, SIZE),
                         explainer=FrameExplainer(EDGES, RuntimeOptions()))
    plain = FrameServer("127.0.0.1", 0, 5.0, summary)
    try:
        url = f"http://127.0.0.1:{server.address[1]}/"
        assert b'href="/explain"' in _get(url)[2]
        assert _get(url + "explain")[0] == 503  # no frame yet
        band = (np.arange(64) // 8) % 2 * 255  # horizontal stripes everywhere ...
        frame = np.repeat(np.broadcast_to(band[:, None], (64, 80))[:, :, None], 3, axis=2).astype(np.uint8)
        frame[4:4 + SIZE, 8:8 + SIZE] = stripes(1)[:, :, ::-1]  # ... but vertical ones in the region (BGR)
        res = LoopResult()
        res.stages_ms["invoke"].append(1.0)
        server.on_frame(Frame(frame, "bgr", 7, time.perf_counter()), [], res)
        status, ctype, body = _get(url + "explain")
        assert status == 200 and ctype.startswith("text/html")
        page = body.decode()
        assert "on frame 7" in page and "Layer table" in page and "Where it looks" in page
        assert "channels in order: 1, 0" in page  # the vertical-edge channel first: the region was explained
        assert json.loads(_get(url + "stats.json")[2])["serve"]["explain"] is True
        assert _get(f"http://127.0.0.1:{plain.address[1]}/explain")[0] == 404
    finally:
        server.close()
        plain.close()


def test_logits_made_an_extra_output_match_the_kept_tensor():
    try:
        tflite_schema()
    except ImportError:
        pytest.skip("making the logits an output rewrites the model with the generated TFLite schema")
    clf = Classifier(LEFT, RuntimeOptions(threads=1))
    image = np.random.default_rng(4).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    fast, slow = (BatchScorer(clf, LEFT.read_bytes(), 4, rewrite=r) for r in (True, False))
    assert (fast.keep_all, slow.keep_all) == (False, True)
    pixels = np.stack([image, image[::-1], image[:, ::-1]])
    for target in range(3):
        np.testing.assert_array_equal(fast(pixels, target), slow(pixels, target))


def test_float16_weights_behind_a_dequantize_still_count_macs(tmp_path):
    from tests.tflite_builder import Spec, build

    path = tmp_path / "f16.tflite"
    path.write_bytes(build(Spec(weights="float16", classes=4, out_shapes=[(1, 4)])))
    layers = layer_table(Classifier(path, RuntimeOptions(mean=(0.0,), std=(1.0,))).interpreter)
    fc = next(x for x in layers if x.op == "FULLY_CONNECTED")
    dq = next(x for x in layers if x.op == "DEQUANTIZE")
    assert fc.macs == 8 * 8 * 3 * 4 and fc.params == 4  # (1, 192) x (4, 192); the bias
    assert dq.params == 4 * 8 * 8 * 3  # the float16 weights


def test_a_plain_background_far_from_the_fill_gets_a_note():
    boot = np.zeros((28, 28), np.uint8)
    boot[8:20, 6:22] = 200
    expl = _explain(SHIPPED / "int8.tflite", boot, layers=("0",))
    assert any("plain background of pixel value 0" in n and "--fill 0" in n for n in expl.notes)
    expl = _explain(SHIPPED / "int8.tflite", boot, layers=("0",), fill=0)
    assert not any("plain background" in n for n in expl.notes)
    assert plain_background(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)) is None
