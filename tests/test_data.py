"""Dataset layer: image-folder scan (bad files, odd formats), IDX parsing, splits, class-balanced sampling.

The helpers :func:`make_folder` and :func:`write_idx_folder` are shared with test_train.py and test_quantize.py.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from edgecnn.train import data as D
from edgecnn.config import Preprocessing
from edgecnn.errors import DataError, ImageError
from edgecnn.preprocess import check_complete, read_image, to_pixels

CLASSES = ("blue", "green", "red")  # sorted on purpose: class order = sorted folder names
PRE16 = Preprocessing(16, 16, 3, "center-crop", mean=(0.0,), std=(1.0,))


def _colour_image(rng, cls: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB image dominated by channel 2 - cls (blue, green, red order), with noise."""
    img = rng.integers(0, 90, (h, w, 3), dtype=np.uint8)
    img[:, :, 2 - cls] = rng.integers(150, 256, (h, w), dtype=np.uint8)
    return img


def make_folder(root: Path, per_class: int = 12, bad_files: bool = True, seed: int = 0) -> Path:
    """A tiny image folder: 3 classes of colour-coded images of mixed sizes and formats, plus bad files.

    Good files per class: PNG RGB of varying size, one RGBA PNG, one grayscale PNG, JPEGs. With ``bad_files``:
    a zero-byte .png, a truncated JPEG, a text file named .jpg, a notes.txt and a file at the root.
    Returns ``root``.
    """
    import cv2

    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            h, w = (16, 16) if i % 3 == 0 else (20 + i, 24 + 2 * i)
            rgb = _colour_image(rng, c, h, w)
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            if i == 1:
                rgba = np.dstack([bgr, np.full((h, w), 255, np.uint8)])
                cv2.imwrite(str(d / f"img{i:02d}_rgba.png"), rgba)
            elif i == 2:
                cv2.imwrite(str(d / f"img{i:02d}_gray.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
            elif i % 2:
                cv2.imwrite(str(d / f"img{i:02d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
            else:
                cv2.imwrite(str(d / f"img{i:02d}.png"), bgr)
    if bad_files:
        (root / "blue" / "empty.png").write_bytes(b"")
        jpg = (root / "green" / "img03.jpg").read_bytes()
        (root / "green" / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
        (root / "red" / "not_an_image.jpg").write_text("hello, I am text")
        (root / "red" / "notes.txt").write_text("labels were checked by hand")
        (root / "README.md").write_text("not in a class folder")
    return root


def write_idx_folder(folder: Path, n_train: int = 60, n_test: int = 20, size: int = 12, classes: int = 3,
                     gz: bool = True, seed: int = 0) -> Path:
    """Four MNIST-style IDX files (optionally .gz) with class-dependent brightness patterns. Returns ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % classes
        x = rng.integers(0, 60, (n, size, size), dtype=np.uint8)
        for i, c in enumerate(y):
            x[i, :, c * size // classes:(c + 1) * size // classes] = 220
        img_base, lab_base = D.IDX_FILES[split]
        for base, payload in ((img_base, struct.pack(">IIII", D.IDX_IMAGES_MAGIC, n, size, size) + x.tobytes()),
                              (lab_base, struct.pack(">II", D.IDX_LABELS_MAGIC, n) + y.astype(np.uint8).tobytes())):
            if gz:
                (folder / f"{base}.gz").write_bytes(gzip.compress(payload))
            else:
                (folder / base).write_bytes(payload)
    return folder


# ------------------------------------------------------------------------------------------------- folders

def test_scan_skips_and_names_every_bad_file(tmp_path):
    root = make_folder(tmp_path / "data")
    ds = D.scan_folder(root, PRE16, progress=False)
    assert ds.labels == list(CLASSES)
    assert ds.x.shape == (36, 16, 16, 3) and ds.x.dtype == np.uint8
    assert ds.counts() == {"blue": 12, "green": 12, "red": 12}
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert set(reasons) == {"empty.png", "truncated.jpg", "not_an_image.jpg", "notes.txt", "README.md"}
    assert "empty" in reasons["empty.png"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "cannot decode" in reasons["not_an_image.jpg"]
    assert "not an image file" in reasons["notes.txt"]
    text = D.describe(ds)
    for name in reasons:
        assert name in text
    assert "imbalanced" not in text
    ds.y = np.concatenate([ds.y, np.zeros(100, np.int64)])
    assert "imbalanced (blue has 9x the images of green)" in D.describe(ds)


def test_scan_uses_the_shared_preprocessing(tmp_path):
    """RGBA, grayscale and odd-sized files end up exactly as to_pixels(read_image(f)) makes them."""
    root = make_folder(tmp_path / "data", bad_files=False)
    ds = D.scan_folder(root, PRE16, progress=False)
    for i, path in enumerate(ds.paths):
        np.testing.assert_array_equal(ds.x[i], to_pixels(read_image(path), PRE16))
    gray = Preprocessing(16, 16, 1, "stretch", mean=(0.0,), std=(1.0,))
    assert D.scan_folder(root, gray, progress=False).x.shape == (36, 16, 16, 1)


def test_strict_rejects_the_first_bad_file(tmp_path):
    root = make_folder(tmp_path / "data")
    with pytest.raises(DataError, match="--strict"):
        D.scan_folder(root, PRE16, strict=True, progress=False)
    clean = make_folder(tmp_path / "clean", bad_files=False)
    assert len(D.scan_folder(clean, PRE16, strict=True, progress=False).y) == 36


def test_single_class_empty_class_and_missing_folder_are_errors(tmp_path):
    root = make_folder(tmp_path / "data", bad_files=False)
    (root / "zebra").mkdir()
    (root / "zebra" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="zebra"):
        D.scan_folder(root, PRE16, progress=False)
    one = tmp_path / "one"
    (one / "only").mkdir(parents=True)
    with pytest.raises(DataError, match="at least 2"):
        D.scan_folder(one, PRE16, progress=False)
    with pytest.raises(DataError, match="no such folder"):
        D.load(str(tmp_path / "missing"), PRE16)


# ----------------------------------------------------------------------------------------------------- IDX


def test_a_missing_fashion_mnist_names_the_debian_package_for_every_command(monkeypatch, tmp_path):
    """train went through load_idx, evaluate through default_preprocessing: both say what to install."""
    missing = tmp_path / "fashion-mnist"
    monkeypatch.setattr(D, "FASHION_MNIST_DIR", missing)
    for call in (lambda: D.load_idx(missing), lambda: D.default_preprocessing(f"fashion-mnist:{missing}")):
        with pytest.raises(DataError, match="no such folder.*dataset-fashion-mnist"):
            call()

@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_keeps_its_test_split(tmp_path, gz):
    folder = write_idx_folder(tmp_path / "idx", gz=gz)
    pre = D.default_preprocessing(f"idx:{folder}")
    assert (pre.height, pre.width, pre.channels, pre.mean, pre.std) == (12, 12, 1, (0.0,), (1.0,))
    ds = D.load(f"idx:{folder}", pre)
    assert ds.x.shape == (60, 12, 12, 1) and ds.x_test.shape == (20, 12, 12, 1)
    assert ds.labels == ["0", "1", "2"]
    fm = D.load(f"fashion-mnist:{folder}", pre)
    assert fm.labels == list(D.FASHION_MNIST_LABELS[:3])
    resized = D.load(f"idx:{folder}", Preprocessing(16, 16, 3, "stretch", mean=(0.0,), std=(1.0,)))
    assert resized.x.shape == (60, 16, 16, 3) and resized.x_test.shape == (20, 16, 16, 3)


def test_idx_labels_txt_names_the_classes(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    (folder / "labels.txt").write_text("zero\none\ntwo\n")
    assert D.load(f"idx:{folder}", D.default_preprocessing(f"idx:{folder}")).labels == ["zero", "one", "two"]


def test_malformed_idx_is_an_error_naming_the_file(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", gz=False)
    data = (folder / "train-images-idx3-ubyte").read_bytes()
    (folder / "train-images-idx3-ubyte").write_bytes(data[:-5])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*bytes"):
        D.load_idx(folder)
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + data[4:])
    with pytest.raises(DataError, match="magic"):
        D.load_idx(folder)
    (folder / "train-images-idx3-ubyte").write_bytes(data)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels"):
        D.load_idx(folder)


# --------------------------------------------------------------------------------------------------- splits

def test_split_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(3), [50, 30, 20])
    tr, va = D.split_indices(y, 0.2, seed=7)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
    assert np.bincount(y[va].astype(np.intp)).tolist() == [10, 6, 4]
    tr2, va2 = D.split_indices(y, 0.2, seed=7)
    np.testing.assert_array_equal(va, va2)
    _, va3 = D.split_indices(y, 0.2, seed=8)
    assert not np.array_equal(va, va3)
    _, tiny = D.split_indices(np.array([0, 0, 1, 1, 1]), 0.1, seed=0)
    assert sorted(np.array([0, 0, 1, 1, 1])[tiny].tolist()) == [0, 1]  # every class validated
    with pytest.raises(ValueError, match="val_split"):
        D.split_indices(y, 1.0, 0)


def test_make_splits_keeps_official_test_apart(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    ds = D.load(f"idx:{folder}", D.default_preprocessing(f"idx:{folder}"))
    s = D.make_splits(ds, 0.1, 0)
    assert s.held_out == "test" and len(s.test[1]) == 20
    assert len(s.train[1]) + len(s.val[1]) == 60
    root = make_folder(tmp_path / "folder", bad_files=False)
    fs = D.make_splits(D.scan_folder(root, PRE16, progress=False), 0.25, 0)
    assert fs.held_out == "val" and fs.test is None
    with pytest.raises(DataError, match="no test split"):
        fs.get("test")


def test_balanced_sample_draws_evenly_from_each_class():
    y = np.repeat(np.arange(4), [100, 100, 5, 100])
    idx = D.balanced_sample(y, 40, seed=0)
    counts = np.bincount(y[idx].astype(np.intp), minlength=4)
    assert counts.sum() == 40 and counts[2] == 5 and set(counts[[0, 1, 3]]) <= {11, 12}
    assert len(np.unique(idx)) == 40
    np.testing.assert_array_equal(idx, D.balanced_sample(y, 40, seed=0))


def test_parse_source():
    assert D.parse_source("fashion-mnist") == ("fashion-mnist", D.FASHION_MNIST_DIR)
    assert D.parse_source("fashion-mnist:/x/y") == ("fashion-mnist", Path("/x/y"))
    assert D.parse_source("idx:rel") == ("idx", Path("rel"))
    assert D.parse_source("photos") == ("folder", Path("photos"))


def test_truncation_check_accepts_trailers_and_rejects_cuts():
    import cv2

    rng = np.random.default_rng(0)
    for params in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]):
        jpg = cv2.imencode(".jpg", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), params)[1].tobytes()
        check_complete(jpg, "ok.jpg")
        check_complete(jpg + b"\x00camera trailer" * 500, "trailer.jpg")  # data after the image is harmless
        for cut in (len(jpg) // 3, len(jpg) - 2):
            with pytest.raises(ImageError, match="truncated JPEG"):
                check_complete(jpg[:cut], "cut.jpg")
    png = cv2.imencode(".png", rng.integers(0, 256, (40, 40), dtype=np.uint8))[1].tobytes()
    check_complete(png, "ok.png")
    with pytest.raises(ImageError, match="truncated PNG"):
        check_complete(png[: len(png) - 20], "cut.png")


def test_train_test_layout_uses_test_as_the_test_split(tmp_path):
    root = tmp_path / "ds"
    make_folder(root / "train", per_class=6, bad_files=False)
    make_folder(root / "test", per_class=2, bad_files=False, seed=1)
    (root / "val").mkdir()
    assert D.split_layout(root) == (root / "train", root / "test")
    ds = D.load(str(root), PRE16, progress=False)
    assert ds.labels == list(CLASSES) and len(ds.y) == 18 and ds.has_test and len(ds.y_test) == 6
    assert sorted(np.bincount(ds.y_test.astype(np.intp)).tolist()) == [2, 2, 2]
    assert any("val" in s.path and "not used" in s.reason for s in ds.skipped)
    splits = D.make_splits(ds, 0.2, 0)
    assert splits.held_out == "test" and len(splits.get("test")[1]) == 6
    # an ordinary class folder named differently is not mistaken for the layout
    assert D.split_layout(tmp_path / "ds" / "train") is None


def test_a_file_given_as_data_folder_says_it_is_a_file(tmp_path):
    f = tmp_path / "photos.zip"
    f.write_bytes(b"PK")
    with pytest.raises(DataError, match="photos.zip: is a file, expected a folder"):
        D.load(str(f), PRE16, progress=False)
