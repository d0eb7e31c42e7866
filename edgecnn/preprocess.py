"""THE preprocessing: decode, colour order, resize rule, normalise and quantize the input.

Training, calibration (the representative dataset), ``classify`` and the camera loop all call these functions, so a
pixel takes the same path to the model everywhere. Everything here is a pure function over numpy arrays except
:func:`read_image`, which reads a file.

Quantization arithmetic follows the TFLite 8-bit quantization specification
(https://ai.google.dev/edge/litert/models/quantization_spec): ``real = scale * (q - zero_point)`` and
``q = clamp(round(real / scale) + zero_point, qmin, qmax)`` where ``round`` rounds half away from zero, as the
TFLite kernels do (``TfLiteRound``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.config import LETTERBOX_FILL, Preprocessing
from edgecnn.errors import ImageError
from edgecnn.opencv import import_cv2

_INT_RANGE = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127),
              np.dtype(np.int16): (-32768, 32767), np.dtype(np.int32): (-(2**31), 2**31 - 1)}

_JPEG_SOI, _JPEG_SOS, _JPEG_EOI = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"
_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def check_complete(data: bytes, name: str = "<bytes>") -> None:
    """Reject a truncated image file, which OpenCV may decode partially (grey bottom rows, depending on its version
    and codec libraries) instead of failing. The check reads the container, not the decoder, so every OpenCV
    version gives the same answer.

    * JPEG: an end-of-image marker (FFD9) after the last start-of-scan marker (FFDA). An embedded EXIF thumbnail
      ends before the main scan; data some cameras append after the image does not matter (ITU-T T.81, B.1.1.2:
      inside entropy-coded data FF is always stuffed, so FFD9 there is the real marker).
    * PNG: its IEND chunk within the last 1 KiB (PNG specification, 5.6: IEND is the last chunk).
    * GIF: the trailer byte 0x3B at the end, trailing NUL padding ignored (GIF89a, 27).
    * WebP: at least the length its RIFF header declares (RIFF size + 8 bytes).
    * BMP: at least the file size its header declares (bytes 2..6, little-endian), when it declares one.

    Other formats are left to the decoder.

    Raises:
        ImageError: the file is truncated, naming the format and what is missing.
    """
    n = len(data)
    if data[:2] == _JPEG_SOI:
        sos = data.rfind(_JPEG_SOS)
        if sos < 0 or data.find(_JPEG_EOI, sos + 2) < 0:
            raise ImageError(f"{name}: truncated JPEG (no end-of-image marker after the image data)")
    elif data[:8] == _PNG_SIG:
        if b"IEND" not in data[-1024:]:
            raise ImageError(f"{name}: truncated PNG (no IEND chunk)")
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        if not data.rstrip(b"\x00").endswith(b"\x3b"):
            raise ImageError(f"{name}: truncated GIF (no trailer byte at the end)")
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        if n < declared:
            raise ImageError(f"{name}: truncated WebP ({n:,} bytes, its header declares {declared:,})")
    elif data[:2] == b"BM" and n >= 6:
        declared = int.from_bytes(data[2:6], "little")
        if n < declared:
            raise ImageError(f"{name}: truncated BMP ({n:,} bytes, its header declares {declared:,})")


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """THE decode-and-validate step of every path that reads an image file (train's folder scan, classify, the
    camera slideshow, bench --input): reject truncated files (:func:`check_complete`), then decode with OpenCV.

    EXIF orientation is honoured; alpha is dropped (RGBA -> RGB); grayscale is expanded to 3 channels; 16-bit
    images are scaled to 8 bits; of an animated image the first frame is used.

    Args:
        data: the encoded file's bytes.
        name: shown in the error message.
    Returns:
        (H, W, 3) uint8 RGB.
    Raises:
        ImageError: empty data, a truncated file, data OpenCV cannot decode, or a header claiming more pixels
            than OpenCV allows (``CV_IO_MAX_IMAGE_PIXELS``, 2^30 by default).
    """
    cv2 = import_cv2()
    if len(data) == 0:
        raise ImageError(f"{name}: empty file (0 bytes), expected an image")
    check_complete(data, name)
    # IMREAD_COLOR applies the EXIF orientation tag and drops alpha (OpenCV imgcodecs documentation).
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:  # e.g. a header claiming more than CV_IO_MAX_IMAGE_PIXELS, or a corrupt header
        msg = (e.err or str(e)).strip().splitlines()[0]
        raise ImageError(f"{name}: cannot decode as an image ({msg})") from None
    if bgr is None or bgr.size == 0:
        raise ImageError(f"{name}: cannot decode as an image (expected JPEG, PNG, BMP, WebP, TIFF, ...)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """Read, validate and decode an image file (:func:`decode_image`). Returns (H, W, 3) uint8 RGB.

    Raises:
        ImageError: the file is missing, unreadable, empty, truncated, or not a decodable image.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    return decode_image(data, str(path))


def crop_box(height: int, width: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """Largest centred box of an (height, width) image with the aspect ratio out_w/out_h.

    Returns:
        (top, left, box_h, box_w) in pixels.
    """
    if width * out_h > height * out_w:  # image is wider than the target: crop the sides
        box_h, box_w = height, max(1, round(height * out_w / out_h))
    else:
        box_h, box_w = max(1, round(width * out_h / out_w)), width
    return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w


def _resize_to(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """The resize every rule ends in: an area average when shrinking, bilinear when enlarging, at frame speed.

    OpenCV's ``INTER_AREA`` takes a slow generic path for non-integer ratios (a 480x480 camera crop to 224x224:
    ~1 ms on x86, a fifth of a real model's invoke). So each axis that is still at least twice its output is
    first halved by exact 2x2 (or 2x1) block means, ``INTER_AREA``'s fast integer path (an odd last row or column
    is dropped), and the remaining factor, below 2, is done by ``INTER_LINEAR``, whose 2x2 neighbourhood then
    still reaches every source pixel. 480 -> 240 -> 224 costs ~0.13 ms and classifies real photos as the direct
    area average does (measurements: docs/performance.md, "Resize").
    """
    cv2 = import_cv2()
    tail = image.shape[2:]
    h, w = image.shape[:2]
    while h >= 2 * out_h or w >= 2 * out_w:
        fy, fx = (2 if h >= 2 * out_h else 1), (2 if w >= 2 * out_w else 1)
        image = image[:h - h % fy, :w - w % fx]
        h, w = h // fy, w // fx
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, *tail)
    if (h, w) == (out_h, out_w):
        return image
    return cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR).reshape(out_h, out_w, *tail)


def resize(image: np.ndarray, height: int, width: int, rule: str) -> np.ndarray:
    """Resize an image to (height, width) by a named rule (see :data:`edgecnn.config.RESIZE_RULES`).

    Args:
        image: (H, W) or (H, W, C) uint8, any channel order.
        height, width: output size in pixels.
        rule: ``center-crop``, ``stretch`` or ``letterbox`` (padding value :data:`edgecnn.config.LETTERBOX_FILL`).
    Returns:
        (height, width) or (height, width, C) uint8, same channel order.
    Raises:
        ValueError: unknown rule.
    """
    h, w = image.shape[:2]
    if rule == "stretch":
        return _resize_to(image, height, width)
    if rule == "center-crop":
        top, left, bh, bw = crop_box(h, w, height, width)
        return _resize_to(image[top:top + bh, left:left + bw], height, width)
    if rule == "letterbox":
        s = min(height / h, width / w)
        nh, nw = max(1, min(height, round(h * s))), max(1, min(width, round(w * s)))
        inner = _resize_to(image, nh, nw)
        out = np.full((height, width, *image.shape[2:]), LETTERBOX_FILL, dtype=image.dtype)
        top, left = (height - nh) // 2, (width - nw) // 2
        out[top:top + nh, left:left + nw] = inner
        return out
    raise ValueError(f"resize rule is {rule!r}, expected center-crop, stretch or letterbox")


def convert_channels(image: np.ndarray, channels: int, order: str = "rgb") -> np.ndarray:
    """Convert an image to RGB (channels=3) or grayscale (channels=1).

    Args:
        image: (H, W) or (H, W, 1) gray, (H, W, 3) in ``order`` ("rgb" or "bgr"), or (H, W, 4) RGBA/BGRA
            (``order`` names the first three channels; the 4th is dropped). picamera2's XRGB8888 frames are
            (H, W, 4) with bytes B, G, R, X: pass them with order="bgr".
        channels: 1 or 3.
    Returns:
        (H, W, channels) uint8; gray uses ITU-R BT.601 luma weights (OpenCV cvtColor).
    Raises:
        ValueError: unsupported shape, channel count or order.
    """
    cv2 = import_cv2()
    if order not in ("rgb", "bgr"):
        raise ValueError(f"channel order is {order!r}, expected 'rgb' or 'bgr'")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image shape is {image.shape}, expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    c = image.shape[2]
    if c == 4:
        image = image[:, :, :3]
        c = 3
    if channels == 3:
        if c == 1:
            return np.repeat(image, 3, axis=2)
        # cvtColor swaps R and B in one vectorised pass (a numpy [..., ::-1] copy is ~20x slower).
        return image if order == "rgb" else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB)
    if channels == 1:
        if c == 1:
            return image
        code = cv2.COLOR_RGB2GRAY if order == "rgb" else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(np.ascontiguousarray(image), code)[:, :, None]
    raise ValueError(f"channels is {channels}, expected 1 or 3")


def to_pixels(image: np.ndarray, pre: Preprocessing, order: str = "rgb") -> np.ndarray:
    """The shared image -> model-sized pixels step used by training, calibration, classify and camera.

    Resizes first (by ``pre.resize``) and converts colour afterwards, so the colour conversion only touches
    the small image.

    Args:
        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 in channel ``order`` ("rgb" or "bgr").
        pre: target size, channels and resize rule.
    Returns:
        (pre.height, pre.width, pre.channels) uint8.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"image dtype is {image.dtype}, expected uint8")
    small = resize(image, pre.height, pre.width, pre.resize)
    return convert_channels(small, pre.channels, order)


def normalize(pixels, mean: tuple[float, ...] | None, std: tuple[float, ...] | None):
    """The model's real-valued input from pixels: ``(pixel - mean) / std``, per channel or one value for all.

    The one normalisation rule of training, calibration, Keras evaluation and the device (:func:`to_input`).
    With mean/std None (unknown) the pixels pass unchanged as float32.

    Args:
        pixels: (..., c) uint8 numpy array, or a float32 tensor of an array library whose arrays subtract and
            divide by numpy arrays (TensorFlow in the training pipeline).
        mean, std: pixel units (0..255), e.g. (127.5,) and (127.5,) for inputs in [-1, 1].
    Returns:
        float32, the shape of ``pixels``.
    """
    x = pixels.astype(np.float32) if isinstance(pixels, np.ndarray) else pixels
    if mean is None or std is None:
        return x
    return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (C ``std::round``, used by TFLite's quantize kernels)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_input(real: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Quantize real values: ``clamp(round(real / scale) + zero_point, qmin, qmax)`` (TFLite quantization spec).

    Args:
        real: float array.
        scale: > 0.
        zero_point: integer.
        dtype: integer numpy dtype (uint8, int8, int16, int32); qmin/qmax are its limits.
    Returns:
        array of ``dtype``, same shape.
    Raises:
        ValueError: scale <= 0 or a non-integer dtype.
    """
    dtype = np.dtype(dtype)
    if dtype not in _INT_RANGE:
        raise ValueError(f"quantized dtype is {dtype}, expected uint8, int8, int16 or int32")
    if not scale > 0:
        raise ValueError(f"scale is {scale}, expected > 0")
    qmin, qmax = _INT_RANGE[dtype]
    q = round_half_away(np.asarray(real, dtype=np.float64) / scale) + int(zero_point)
    return np.clip(q, qmin, qmax).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Dequantize: ``scale * (q - zero_point)``, widening q to int64 before subtracting (TFLite quantization spec).

    Args:
        q: integer array (uint8, int8, int16, int32).
    Returns:
        float32 array, same shape.
    """
    return (float(scale) * (np.asarray(q).astype(np.int64) - int(zero_point))).astype(np.float32)


def to_input(pixels: np.ndarray, shape: tuple[int, ...], dtype, scale: float = 0.0, zero_point: int = 0,
             mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> np.ndarray:
    """Turn model-sized pixels into the model's input tensor.

    Rules (documented in the README): with ``mean``/``std`` known, ``real = (pixel - mean) / std``, then for a
    quantized input ``q = quantize_input(real, scale, zero_point)``. Without them a quantized input takes the raw pixel
    bytes (uint8 as they are, int8 as ``pixel - 128``), the convention of the Coral and TFLite classification
    examples, whose quantization parameters encode the normalisation. A float input needs mean/std.

    Args:
        pixels: (h, w, c) uint8 from :func:`to_pixels`.
        shape: the input tensor's shape: (1, h, w, c) NHWC or (1, h, w).
        dtype: input dtype: uint8, int8, float32, or int16 (16x8 models; needs mean/std).
        scale, zero_point: the input tensor's quantization parameters (ignored for float32).
        mean, std: pixel-unit normalisation, one value or one per channel.
    Returns:
        array of ``shape`` and ``dtype``.
    Raises:
        ValueError: float input without mean/std; unsupported dtype; pixels that do not fit ``shape``.
    """
    dtype = np.dtype(dtype)
    if int(np.prod(shape)) != pixels.size:
        raise ValueError(f"pixels shape {pixels.shape} does not fit input shape {tuple(shape)}")
    if mean is not None and std is not None:
        real = normalize(pixels, mean, std)
        if dtype == np.float32:
            out = real
        elif dtype in (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int16)):
            if not scale > 0:
                raise ValueError(f"input dtype is {dtype} but its scale is {scale}; expected a quantized input")
            out = quantize_input(real, scale, zero_point, dtype)
        else:
            raise ValueError(f"input dtype is {dtype}, expected uint8, int8 or float32")
    elif dtype == np.uint8:
        out = pixels
    elif dtype == np.int8:
        out = (pixels.astype(np.int16) - 128).astype(np.int8)
    elif dtype == np.float32:
        raise ValueError("float32 input needs the model's normalisation: give --mean and --std "
                         "(e.g. --mean 127.5 --std 127.5 for inputs in [-1, 1], --mean 0 --std 255 for [0, 1])")
    else:
        raise ValueError(f"input dtype is {dtype}, expected uint8, int8 or float32")
    return np.ascontiguousarray(out, dtype=dtype).reshape(shape)


def input_table(dtype, channels: int, scale: float = 0.0, zero_point: int = 0,
                mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> np.ndarray | None:
    """:func:`to_input`'s rule compiled into a per-channel lookup table, for :func:`apply_input_table`.

    Every rule of :func:`to_input` maps each pixel value of each channel on its own (normalise, quantize, raw
    bytes), so it is fully described by what it does to the 256 values of each channel. The table is made by
    calling :func:`to_input` on those values, so applying it is bit-identical to :func:`to_input` on any image
    (tests/test_preprocess.py checks every value and channel for uint8, int8 and float32 inputs). Build it once per
    model; applying it costs one ``cv2.LUT`` per frame instead of float arithmetic on every pixel.

    Args:
        dtype: the input tensor's dtype: uint8, int8 or float32.
        channels: 1 or 3.
        scale, zero_point, mean, std: as :func:`to_input`.
    Returns:
        None when the rule leaves every value as it is (raw uint8 bytes, or a normalisation that quantizes back to
        the pixel); else a table of ``dtype`` in a layout ``cv2.LUT`` takes: (256, 1) when every channel maps
        alike, (256, 1, channels) otherwise.
    Raises:
        ValueError: as :func:`to_input` (float32 input without mean/std, unsupported dtype, quantized dtype with
            scale 0).
    """
    values = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], channels, axis=2)  # (256, 1, channels)
    table = to_input(values, values.shape, dtype, scale, zero_point, mean, std)
    if table.dtype == np.uint8 and np.array_equal(table, values):
        return None
    if np.array_equal(table, np.broadcast_to(table[:, :, :1], table.shape)):
        return np.ascontiguousarray(table[:, :, 0])  # one table for all channels: cv2.LUT runs ~2x faster
    return table


def apply_input_table(pixels: np.ndarray, table: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """Write :func:`to_input` of model-sized pixels into ``out`` through a table from :func:`input_table`: one
    ``cv2.LUT`` (one copy when the table is None), no allocation.

    Args:
        pixels: (h, w, c) uint8 from :func:`to_pixels`.
        table: from :func:`input_table` for this input, or None.
        out: C-contiguous array of the input tensor's shape ((1, h, w, c) or (1, h, w)) and dtype (the table's).
    Returns:
        ``out``, filled.
    Raises:
        ValueError: pixels that do not fit ``out``, or an ``out`` whose dtype is not the table's.
    """
    if pixels.size != out.size or pixels.ndim != 3:
        raise ValueError(f"pixels shape {pixels.shape} does not fit input shape {tuple(out.shape)}")
    dst = out.reshape(pixels.shape)  # a view: out is C-contiguous
    if table is None:
        np.copyto(dst, pixels)
        return out
    if table.dtype != out.dtype:
        raise ValueError(f"input array dtype is {out.dtype}, the table's is {table.dtype}")
    res = import_cv2().LUT(np.ascontiguousarray(pixels), table, dst=dst)
    if not np.shares_memory(res, out):  # OpenCV allocated instead of writing into dst
        np.copyto(dst, res.reshape(dst.shape))
    return out
