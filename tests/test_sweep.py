"""Property-based sweep: many small .tflite models of every input/output layout, many odd image files.

For each, ``classify`` / ``info`` / ``bench`` either give the right answer or one clear ``Error:`` line with a
non-zero exit: never a traceback, never a silently wrong answer. Models are flatbuffers built by
:mod:`tests.tflite_builder` (no TensorFlow, milliseconds each); images are written by OpenCV and Pillow.

The default run is capped to a few examples per property (a few seconds); ``-m slow`` (``make test-sweep``) runs
many more. Run in-process through click's CliRunner, so an uncaught exception shows as ``result.exception``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecnn.cli import main
from tests.tflite_builder import Spec, build

#: Examples per property: few by default, many with -m slow (or EDGECNN_SWEEP_EXAMPLES).
FAST = int(os.environ.get("EDGECNN_SWEEP_EXAMPLES", "40"))
LONG = 3000
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
               derandomize=True)


# ----------------------------------------------------------------------------------------------- models
@st.composite
def specs(draw) -> Spec:
    """A model of any layout a converter can emit, and some that only look like classifiers."""
    rank = draw(st.sampled_from(["nhwc", "nhwc", "nhw", "vector", "batch2", "nchw"]))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    c = draw(st.sampled_from([1, 3, 3, 4, 2]))
    in_shape = {"nhwc": (1, h, w, c), "nhw": (1, h, w), "vector": (1, h * w), "batch2": (2, h, w, c),
                "nchw": (1, 3, h, w)}[rank]
    in_dtype = draw(st.sampled_from(["float32", "uint8", "int8", "int16"]))
    classes = draw(st.integers(1, 12))
    layout = draw(st.sampled_from(["(1,N)", "(1,N)", "(N,)", "(1,1,1,N)", "two", "detection", "map"]))
    out_shapes = {"(1,N)": [(1, classes)], "(N,)": [(classes,)], "(1,1,1,N)": [(1, 1, 1, classes)],
                  "two": [(1, classes), (1, classes)],
                  "detection": [(1, classes, 4), (1, classes), (1, classes), (1,)],
                  "map": [(1, 1, classes, 1)] if classes == 1 else [(1, 2, classes, 1)]}[layout]
    if layout == "map" and classes > 1:
        classes = 2 * classes
        out_shapes = [(1, 2, classes // 2, 1)]
    act = "float32" if in_dtype == "float32" else in_dtype
    out_dtype = draw(st.sampled_from(["float32", act, "int32"] if act != "float32" else ["float32"]))
    weights = draw(st.sampled_from(["float32", "int8", "float16"])) if in_dtype == "float32" else "int8"
    return Spec(in_shape=in_shape, in_dtype=in_dtype, in_quantized=draw(st.booleans()) or in_dtype == "int16",
                classes=classes, out_shapes=out_shapes, out_dtype=out_dtype,
                activation=draw(st.sampled_from([None, "softmax", "sigmoid"])), weights=weights,
                custom_op=draw(st.sampled_from([None, None, None, "FlexErf", "MyPostProcess"])),
                dynamic_batch=draw(st.booleans()), dynamic_hw=draw(st.booleans()) and len(in_shape) >= 3,
                seed=draw(st.integers(0, 3)))


def _is_classifier(spec: Spec) -> bool:
    """What edgecnn should accept: one image input, one score vector, float32 or quantized scores."""
    shape = spec.in_shape
    image = (len(shape) == 4 and shape[0] == 1 and shape[3] in (1, 3)) or (len(shape) == 3 and shape[0] == 1)
    one_vector = len(spec.out_shapes) == 1 and sum(d > 1 for d in spec.out_shapes[0]) <= 1
    scores = spec.out_dtype != "int32"
    return image and one_vector and scores and spec.custom_op is None and not spec.dynamic_hw


def _assert_clean(res, what: str) -> None:
    """Exit 0, or exit 1/2 with exactly one Error line; never an uncaught exception (a traceback)."""
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        raise AssertionError(f"{what}: uncaught {type(res.exception).__name__}: {res.exception}\n"
                             + "".join(traceback.format_exception(res.exception)))
    assert "Traceback" not in res.output, what
    if res.exit_code != 0:
        errors = [ln for ln in res.output.splitlines() if ln.startswith("Error")]
        assert res.exit_code in (1, 2) and len(errors) == 1, f"{what}: exit {res.exit_code}\n{res.output}"


def _reference_top1(path: str, image: str, spec: Spec) -> int:
    """Top-1 straight from the interpreter on edgecnn's input tensor: argmax of the dequantized output, and for a
    single output p the larger of 1 - p and p."""
    from edgecnn.config import RuntimeOptions
    from edgecnn.preprocess import read_image
    from edgecnn.runtime import Classifier

    clf = Classifier(path, RuntimeOptions(mean=(0.0,), std=(255.0,)))
    it = clf.interpreter
    it.set_tensor(clf.input.index, clf.preprocess(read_image(image)))
    it.invoke()
    o = it.get_output_details()[0]
    raw = it.get_tensor(o["index"]).reshape(-1).astype(np.float64)
    scale, zp = o["quantization"]
    s = scale * (raw - zp) if scale else raw
    if s.size == 1:
        s = np.array([1 - s[0], s[0]])
    return int(np.argmax(s))


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    import cv2

    p = tmp_path_factory.mktemp("img") / "photo.png"
    cv2.imwrite(str(p), np.random.default_rng(7).integers(0, 256, (24, 30, 3), np.uint8))
    return str(p)


def _model_sweep(tmp_path, image, spec: Spec) -> None:
    path = str(tmp_path / "m.tflite")
    with open(path, "wb") as f:
        f.write(build(spec))
    norm = ["--mean", "0", "--std", "255"]
    runner = CliRunner()
    info = runner.invoke(main, ["info", path, "--json"])
    _assert_clean(info, f"info {spec}")
    bench = runner.invoke(main, ["bench", path, "--runs", "2", "--warmup", "0", "--json"])
    _assert_clean(bench, f"bench {spec}")
    res = runner.invoke(main, ["classify", path, image, "--json", "-k", "20", *norm])
    _assert_clean(res, f"classify {spec}")
    if not _is_classifier(spec):
        assert res.exit_code != 0 and info.exit_code != 0, f"accepted a model that is not a classifier: {spec}"
        return
    if res.exit_code != 0:
        return  # e.g. a logit without --softmax, refused with one line (checked above)
    top = json.loads(res.stdout.strip().splitlines()[-1])["top"]
    n = 2 if spec.classes == 1 else spec.classes
    assert 0 < len(top) <= n or (not top and spec.activation is None), f"{spec}: {len(top)} scores, {n} classes"
    if top:  # (raw logits below --threshold 0 are not listed)
        ref = _reference_top1(path, image, spec)
        assert top[0]["index"] == ref or any(t["index"] == ref and t["score"] == pytest.approx(top[0]["score"],
                                                                                           abs=1e-6)
                                             for t in top), f"{spec}: wrong top-1 {top}, expected {ref}"
    assert json.loads(info.stdout)["quantization"]


@settings(max_examples=FAST, **_COMMON)
@given(spec=specs())
def test_model_sweep(tmp_path, image, spec):
    _model_sweep(tmp_path, image, spec)


@pytest.mark.slow
@settings(max_examples=LONG, **_COMMON)
@given(spec=specs())
def test_model_sweep_long(tmp_path, image, spec):
    _model_sweep(tmp_path, image, spec)


# ----------------------------------------------------------------------------------------------- images
def _encode(kind: str, img: np.ndarray) -> bytes:
    import cv2

    if kind in ("png", "jpg", "bmp", "webp", "tiff"):
        return cv2.imencode("." + kind, img)[1].tobytes()
    if kind == "png16":
        return cv2.imencode(".png", img.astype(np.uint16) * 257)[1].tobytes()
    if kind == "png_alpha":
        return cv2.imencode(".png", np.dstack([img, np.full(img.shape[:2], 128, np.uint8)]))[1].tobytes()
    import io

    import PIL.Image as PIL

    out = io.BytesIO()
    if kind == "cmyk_jpg":
        PIL.fromarray(img[:, :, ::-1].copy()).convert("CMYK").save(out, "JPEG")
    elif kind == "gif_animated":
        frames = [PIL.fromarray(np.roll(img, i, axis=1)[:, :, ::-1].copy()) for i in range(3)]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return out.getvalue()


def _has_pillow() -> bool:
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


#: Kinds of file drawn; CMYK JPEG and animated GIF are written with Pillow, when it is installed.
IMAGE_KINDS = ["png", "jpg", "bmp", "webp", "tiff", "png16", "png_alpha", "garbage", "empty", "bomb"] + \
    (["cmyk_jpg", "gif_animated"] if _has_pillow() else [])


@st.composite
def image_files(draw) -> tuple[bytes, str, bytes | None]:
    """(file bytes, file name, the complete file when these bytes are a cut of it, else None)."""
    kind = draw(st.sampled_from(IMAGE_KINDS))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    gray = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    img = rng.integers(0, 256, (h, w, 3), np.uint8)
    if gray and kind in ("png", "jpg", "bmp", "tiff"):
        img = img[:, :, 0]
    ext = draw(st.sampled_from([".png", ".jpg", ".JPG", ".jpeg", ".bmp", ".webp", ".tif", ".gif"]))
    if kind == "garbage":
        return bytes(rng.integers(0, 256, draw(st.integers(1, 200)), np.uint8)), "x" + ext, None
    if kind == "empty":
        return b"", "x" + ext, None
    if kind == "bomb":  # a complete PNG whose header claims 100000 x 100000 pixels
        import struct
        import zlib

        ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
        chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
        iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
        return b"\x89PNG\r\n\x1a\n" + chunk + iend, "bomb" + ext, None
    data = _encode(kind, img if kind not in ("png_alpha", "png16") or img.ndim == 3 else img)
    cut = draw(st.sampled_from([None, None, 0.2, 0.5, 0.9, -1, -4]))
    if cut is None:
        return data, "x" + ext, data
    n = int(len(data) * cut) if cut > 0 else len(data) + cut
    return data[:max(1, n)], "cut" + ext, data


def _image_sweep(tmp_path, model: str, case) -> None:
    from edgecnn.preprocess import decode_image

    data, name, whole = case
    path = tmp_path / name
    path.write_bytes(data)
    res = CliRunner().invoke(main, ["classify", model, str(path), "--json"])
    _assert_clean(res, f"classify {name} ({len(data)} bytes)")
    if whole is data:  # a complete image file, whatever its name says
        assert res.exit_code == 0, res.output
    elif res.exit_code == 0:  # garbage must not pass; a cut file only when it decodes exactly as the whole one
        assert whole is not None, f"{name}: {len(data)} bytes that are not an image were classified"
        assert np.array_equal(decode_image(data, name), decode_image(whole, name)), f"{name}: partial image used"
    else:
        assert name in res.output


@settings(max_examples=FAST, **_COMMON)
@given(case=image_files())
def test_image_sweep(tmp_path, tiny_models, case):
    _image_sweep(tmp_path, str(tiny_models["int8"]), case)


@pytest.mark.slow
@settings(max_examples=LONG, **_COMMON)
@given(case=image_files())
def test_image_sweep_long(tmp_path, tiny_models, case):
    _image_sweep(tmp_path, str(tiny_models["int8"]), case)
