"""The shared preprocessing: quantization arithmetic, resize rules, colour handling, decoding."""

import cv2
import numpy as np
import pytest

from edgecnn.config import Preprocessing
from edgecnn.errors import ImageError
from edgecnn.preprocess import (apply_input_table, convert_channels, crop_box, decode_image, dequantize,
                                input_table, quantize_input, read_image, resize, to_input, to_pixels)


def test_dequantize_int8_softmax_output():
    # TFLite's int8 softmax output: scale 1/256, zero_point -128.
    scores = dequantize(np.array([127, -128], np.int8), 1 / 256, -128)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, [255 / 256, 0.0])
    assert round(float(scores[0]), 3) == 0.996


def test_dequantize_widens_before_subtracting():
    # uint8 255 - zero_point 0 and int8 -128 - zero_point 127 overflow in 8 bits; widened they do not.
    np.testing.assert_allclose(dequantize(np.array([255], np.uint8), 0.5, 0), [127.5])
    np.testing.assert_allclose(dequantize(np.array([-128], np.int8), 1.0, 127), [-255.0])


def test_quantize_int8_unit_input():
    # scale 1/255, zero_point -128: pixel 200 -> 72, black -> -128, white -> 127.
    q = quantize_input(np.array([200, 0, 255]) / 255.0, 1 / 255, -128, np.int8)
    assert q.dtype == np.int8
    assert q.tolist() == [72, -128, 127]


def test_quantize_rounds_half_away_from_zero_and_clamps():
    assert quantize_input(np.array([0.5, -0.5, 1.5, 1000.0, -1000.0]), 1.0, 0, np.int8).tolist() == [1, -1, 2, 127, -128]
    assert quantize_input(np.array([-3.0, 2.5]), 1.0, 0, np.uint8).tolist() == [0, 3]
    with pytest.raises(ValueError, match="scale"):
        quantize_input(np.zeros(1), 0.0, 0, np.int8)


def test_to_input_rules():
    px = np.array([[[0, 200, 255]]], np.uint8).reshape(1, 1, 3)
    # mean/std known + quantized input: real = (p - mean) / std then quantize.
    t = to_input(px, (1, 1, 1, 3), np.int8, 1 / 255, -128, (0.0,), (255.0,))
    assert t.tolist() == [[[[-128, 72, 127]]]]
    # No mean/std: raw bytes (uint8 as is, int8 as p - 128).
    assert to_input(px, (1, 1, 1, 3), np.uint8).tolist() == [[[[0, 200, 255]]]]
    assert to_input(px, (1, 1, 1, 3), np.int8).tolist() == [[[[-128, 72, 127]]]]
    # Float input takes (p - mean) / std.
    np.testing.assert_allclose(to_input(px, (1, 1, 1, 3), np.float32, mean=(127.5,), std=(127.5,)).ravel(),
                               [-1.0, 200 / 127.5 - 1, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="--mean"):
        to_input(px, (1, 1, 1, 3), np.float32)
    # (1, H, W) grayscale input shape.
    assert to_input(np.full((2, 2, 1), 7, np.uint8), (1, 2, 2), np.uint8).shape == (1, 2, 2)


IMAGENET_MEAN, IMAGENET_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


@pytest.mark.parametrize("dtype,channels,scale,zero_point,mean,std", [
    (np.uint8, 3, 0.0078125, 128, (127.5,), (127.5,)),  # TFLite Support-style MobileNet, uint8
    (np.uint8, 3, 2 / 255, 128, (127.5,), (127.5,)),
    (np.int8, 3, 0.01865844801068306, -14, IMAGENET_MEAN, IMAGENET_STD),  # per-channel normalisation
    (np.int8, 3, 1 / 255, -128, (0.0,), (255.0,)),
    (np.int8, 1, 0.5, 3, (10.0,), (0.7,)),  # clamps at both ends
    (np.float32, 3, 0.0, 0, (127.5,), (127.5,)),
    (np.float32, 3, 0.0, 0, IMAGENET_MEAN, IMAGENET_STD),
    (np.float32, 1, 0.0, 0, (0.0,), (255.0,)),
    (np.uint8, 3, 0.0, 0, None, None),  # raw bytes
    (np.int8, 3, 0.0, 0, None, None),  # raw bytes, pixel - 128
    (np.uint8, 1, 0.0, 0, None, None),
])
def test_input_table_is_bit_identical_to_the_formula(dtype, channels, scale, zero_point, mean, std):
    # Every pixel value in every channel, each channel seeing the values in another order.
    values = np.arange(256 * 4).reshape(256, 4)
    pixels = np.stack([(values + 97 * c) % 256 for c in range(channels)], axis=2).astype(np.uint8)
    shape = (1, *pixels.shape) if channels == 3 else (1, 256, 4)
    expected = to_input(pixels, shape, dtype, scale, zero_point, mean, std)
    table = input_table(dtype, channels, scale, zero_point, mean, std)
    out = np.zeros(shape, dtype)
    got = apply_input_table(pixels, table, out)
    assert got is out and got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()  # bit-identical, also for float32
    if mean is None and dtype == np.uint8:
        assert table is None  # raw uint8 bytes: a copy, no table
    elif channels == 3:
        # One shared table when the channels map alike, one per channel otherwise.
        assert table.shape == ((256, 1) if len(mean or [0]) == 1 else (256, 1, 3))


def test_input_table_refuses_what_to_input_refuses():
    with pytest.raises(ValueError, match="--mean"):
        input_table(np.float32, 3)
    with pytest.raises(ValueError, match="scale"):
        input_table(np.int8, 3, 0.0, 0, (0.0,), (1.0,))
    with pytest.raises(ValueError, match="does not fit"):
        apply_input_table(np.zeros((4, 4, 3), np.uint8), None, np.zeros((1, 4, 5, 3), np.uint8))


def test_crop_box_keeps_centre_and_aspect():
    assert crop_box(480, 640, 28, 28) == (0, 80, 480, 480)
    assert crop_box(640, 480, 28, 28) == (80, 0, 480, 480)
    assert crop_box(100, 100, 50, 100) == (25, 0, 50, 100)


def test_resize_rules_on_a_marked_image():
    # 40 wide x 20 high: left half black, right half white, with a red centre column.
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 20:] = 255
    cc = resize(img, 10, 10, "center-crop")  # crops columns 10..30: still half black, half white
    assert cc.shape == (10, 10, 3)
    assert cc[:, :4].max() == 0 and cc[:, 6:].min() == 255
    st = resize(img, 10, 10, "stretch")
    assert st.shape == (10, 10, 3)
    lb = resize(img, 10, 10, "letterbox")  # fits to 10 wide x 5 high, padded top and bottom with 0
    assert lb.shape == (10, 10, 3)
    assert lb[:2].max() == 0 and lb[8:].max() == 0 and lb[3:7, 7:].min() == 255
    with pytest.raises(ValueError, match="resize rule"):
        resize(img, 10, 10, "zoom")


def test_convert_channels():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    assert convert_channels(rgb, 3, "rgb")[0, 0].tolist() == [255, 0, 0]
    assert convert_channels(rgb[..., ::-1], 3, "bgr")[0, 0].tolist() == [255, 0, 0]
    gray = convert_channels(rgb, 1, "rgb")
    assert gray.shape == (2, 2, 1) and gray[0, 0, 0] == 76  # BT.601: 0.299 * 255
    rgba = np.dstack([rgb, np.full((2, 2), 9, np.uint8)])
    assert convert_channels(rgba, 3, "rgb").shape == (2, 2, 3)
    assert convert_channels(np.full((2, 2), 5, np.uint8), 3).tolist() == [[[5, 5, 5]] * 2] * 2


def test_to_pixels_bgr_frame_equals_rgb_image():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    pre = Preprocessing(16, 16, 3)
    np.testing.assert_array_equal(to_pixels(rgb, pre, "rgb"), to_pixels(rgb[:, :, ::-1].copy(), pre, "bgr"))
    assert to_pixels(rgb, Preprocessing(8, 12, 1)).shape == (8, 12, 1)


def test_decode_rgba_png_and_gray(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 255  # BGRA: red
    rgba[..., 3] = 128
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    img = read_image(tmp_path / "a.png")
    assert img.shape == (4, 4, 3) and img[0, 0].tolist() == [255, 0, 0]
    cv2.imwrite(str(tmp_path / "g.png"), np.full((3, 5), 9, np.uint8))
    assert read_image(tmp_path / "g.png").shape == (3, 5, 3)


def test_exif_orientation_is_applied(tmp_path):
    # A 2x4 (h x w) JPEG tagged with EXIF orientation 6 (rotate 90 CW) must come out 4x2.
    ok, enc = cv2.imencode(".jpg", np.zeros((2, 4, 3), np.uint8))
    assert ok
    jpeg = enc.tobytes()
    # Minimal APP1 Exif segment, little-endian TIFF, one IFD entry: Orientation (0x0112) SHORT = 6.
    tiff = b"II*\x00\x08\x00\x00\x00" + b"\x01\x00" + b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00" + b"\x00" * 4
    app1 = b"\xff\xe1" + (len(tiff) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + tiff
    (tmp_path / "r.jpg").write_bytes(jpeg[:2] + app1 + jpeg[2:])
    assert read_image(tmp_path / "r.jpg").shape == (4, 2, 3)


@pytest.mark.parametrize("content,msg", [(b"", "empty file"), (b"GIF89a nope", "truncated GIF"),
                                         (b"not an image", "cannot decode")])
def test_bad_images(tmp_path, content, msg):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=msg):
        read_image(p)
    with pytest.raises(ImageError, match="cannot read"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError):
        decode_image(content, "x")


def _encoded(ext: str) -> bytes:
    import cv2

    img = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return cv2.imencode(ext, img)[1].tobytes()


@pytest.mark.parametrize("ext, cut, kind", [(".jpg", 0.5, "JPEG"), (".jpg", -2, "JPEG"), (".png", 0.6, "PNG"),
                                            (".bmp", 0.7, "BMP"), (".webp", 0.8, "WebP")])
def test_truncated_files_refused_whatever_the_decoder_does(tmp_path, monkeypatch, ext, cut, kind):
    """Truncation is read from the container, so an OpenCV that decodes the partial file (4.10 did, for JPEG)
    cannot let it through: imdecode is replaced by one that always returns an image."""
    import cv2

    data = _encoded(ext)
    assert decode_image(data, "whole").shape == (24, 32, 3)
    n = int(len(data) * cut) if cut > 0 else len(data) + cut
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flags: np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(ImageError, match=f"truncated {kind}"):
        decode_image(data[:n], "cut" + ext)


def test_one_decode_rule_for_every_path(tmp_path, tiny_models, monkeypatch):
    """A truncated JPEG is refused by classify, the camera slideshow, bench --input and the training scan alike."""
    import cv2
    from click.testing import CliRunner

    from edgecnn.cli import main

    folder = tmp_path / "data"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(2):
            (folder / cls / f"{i}.jpg").write_bytes(_encoded(".jpg"))
    bad = folder / "a" / "cut.jpg"
    bad.write_bytes(_encoded(".jpg")[:300])
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flags: real(buf, flags) if bytes(buf[-2:]) == b"\xff\xd9"
                        else np.zeros((24, 32, 3), np.uint8))  # a decoder that hides truncation (as OpenCV 4.10)
    model = str(tiny_models["int8"])
    runner = CliRunner()
    res = runner.invoke(main, ["classify", model, str(bad)])
    assert res.exit_code == 1 and "truncated JPEG" in res.output
    res = runner.invoke(main, ["camera", model, "--source", str(folder / "a"), "--headless"])
    assert res.exit_code == 1 and "truncated JPEG" in res.output
    res = runner.invoke(main, ["bench", model, "--input", str(bad), "--runs", "2"])
    assert res.exit_code == 1 and "truncated JPEG" in res.output
    from edgecnn.train.data import scan_folder

    ds = scan_folder(folder, Preprocessing(16, 16, 3), progress=False)
    assert len(ds.x) == 4 and [s.path for s in ds.skipped] == [str(bad)]
    assert "truncated JPEG" in ds.skipped[0].reason
