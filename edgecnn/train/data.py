"""Dataset discovery, validation and splits for training, calibration and evaluation  [train extra].

Two sources are understood, both named by one string (``DATA`` on the command line):

* an **image folder**: ``ROOT/<class>/<image files>``; class order is the sorted folder names. Every file is read
  and decoded exactly once, through the shared preprocessing (:func:`edgecnn.preprocess.decode_image` and
  :func:`edgecnn.preprocess.to_pixels`), so RGBA, grayscale and differently sized images reach the model exactly
  as they would in ``classify`` and ``camera``. Files that cannot be used are skipped and listed with the reason.
* **IDX files** in the form of MNIST / Fashion-MNIST (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``; format described at
  http://yann.lecun.com/exdb/mnist/): ``fashion-mnist`` (the Debian package ``dataset-fashion-mnist``, installed at
  :data:`FASHION_MNIST_DIR`), ``fashion-mnist:PATH`` (same files elsewhere, Fashion-MNIST class names) or
  ``idx:PATH`` (any such folder; class names from a ``labels.txt`` there, else "0".."K-1"). The official test set
  is kept apart as the ``test`` split.

Nothing here imports TensorFlow; arrays are numpy. Pixels are always (N, h, w, c) uint8 in 0..255, labels (N,)
int64 class indices.
"""

from __future__ import annotations

import gzip
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.config import DEFAULT_FOLDER_SIZE, DEFAULT_SEED, DEFAULT_VAL_SPLIT, IMAGE_SUFFIXES, Preprocessing
from edgecnn.errors import DataError, ImageError
from edgecnn.labels import read_labels
from edgecnn.preprocess import read_image, to_pixels

#: Where the Debian package ``dataset-fashion-mnist`` installs the four IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Fashion-MNIST class names in label order (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist).
FASHION_MNIST_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: Base names of the four IDX files (each may also end in ``.gz``).
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
#: IDX magic numbers: 0x0000 0x08 (unsigned byte) 0x03 / 0x01 (number of dimensions).
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

#: Split names; ``all`` is every image of the source (e.g. a separate folder kept for testing).
SPLITS = ("train", "val", "test", "all")
#: describe() notes an imbalance when the largest class has more than this many times the smallest's images.
IMBALANCE_NOTE = 5


@dataclass(frozen=True)
class Skipped:
    """A file left out of an image folder, with the reason (one line)."""

    path: str
    reason: str


@dataclass
class Dataset:
    """A loaded dataset, before splitting.

    Attributes:
        x: (N, h, w, c) uint8 pixels, already shaped by the preprocessing record ``pre``.
        y: (N,) int64 class indices into ``labels``.
        labels: class names, index order.
        pre: the preprocessing that produced ``x`` (input size, channels, resize rule; mean 0 / std 1).
        source: the DATA string it came from.
        x_test, y_test: the official test split (IDX sources), else None.
        skipped: files left out of an image folder.
        paths: per-sample file path for image folders (same order as ``x``), else None.
    """

    x: np.ndarray
    y: np.ndarray
    labels: list[str]
    pre: Preprocessing
    source: str
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    skipped: list[Skipped] = field(default_factory=list)
    paths: list[str] | None = None

    @property
    def has_test(self) -> bool:
        return self.x_test is not None

    def counts(self) -> dict[str, int]:
        """Samples per class (training data, before the validation split)."""
        n = np.bincount(self.y.astype(np.intp), minlength=len(self.labels))
        return {name: int(c) for name, c in zip(self.labels, n)}


@dataclass
class Splits:
    """Train / validation / test arrays. ``test`` is None when the source has no official test set."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None
    labels: list[str]
    pre: Preprocessing

    def get(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of split ``name`` (train, val, test or all). Raises DataError when the split is absent or empty."""
        if name not in SPLITS:
            raise DataError(f"split is {name!r}, expected one of {', '.join(SPLITS)}")
        if name == "all":
            parts = [p for p in (self.train, self.val, self.test) if p is not None]
            xy = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        else:
            xy = getattr(self, name)
        if xy is None:
            raise DataError(f"this dataset has no {name} split (only IDX sources have an official test set); "
                            "use --split val, or --split all for a folder kept apart for testing")
        if len(xy[1]) == 0:
            raise DataError(f"the {name} split is empty (raise --val-split or add images)")
        return xy

    @property
    def held_out(self) -> str:
        """Name of the split used for reported accuracy: ``test`` where the dataset has one, else ``val``."""
        return "test" if self.test is not None else "val"


# --------------------------------------------------------------------------------------------------------- IDX

def require_idx_folder(folder: str | Path) -> Path:
    """``folder`` as a Path, checked to be a directory (where the four IDX files should be).

    Raises:
        DataError: no such folder; for the Fashion-MNIST default it names the Debian package that installs it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        hint = " (install the Debian package dataset-fashion-mnist)" if folder == FASHION_MNIST_DIR else ""
        raise DataError(f"{folder}: no such folder{hint}, expected the four IDX files there")
    return folder


def read_idx_file(folder: str | Path, base: str) -> bytes:
    """The bytes of IDX file ``base`` in ``folder``, from ``base`` or ``base.gz`` (decompressed).

    Raises:
        DataError: neither file exists, or it cannot be read or decompressed.
    """
    folder = Path(folder)
    for name in (base, base + ".gz"):
        p = folder / name
        if p.is_file():
            try:
                raw = p.read_bytes()
                return gzip.decompress(raw) if name.endswith(".gz") else raw
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise DataError(f"{p}: cannot read ({e})") from None
    raise DataError(f"{folder}: missing {base} (or {base}.gz), expected the four MNIST-style IDX files")


def parse_idx_images(data: bytes, name: str = "<idx>") -> np.ndarray:
    """Parse an IDX3 unsigned-byte image file.

    Returns:
        (N, rows, cols) uint8.
    Raises:
        DataError: wrong magic number or a size that does not match the header.
    """
    if len(data) < 16:
        raise DataError(f"{name}: {len(data)} bytes, too short for an IDX image header (16 bytes)")
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != IDX_IMAGES_MAGIC:
        raise DataError(f"{name}: magic number 0x{magic:08x}, expected 0x{IDX_IMAGES_MAGIC:08x} (IDX3 ubyte images)")
    want = 16 + n * rows * cols
    if len(data) != want:
        raise DataError(f"{name}: {len(data)} bytes, header says {n}x{rows}x{cols} images ({want} bytes)")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)


def parse_idx_labels(data: bytes, name: str = "<idx>") -> np.ndarray:
    """Parse an IDX1 unsigned-byte label file. Returns (N,) int64. Raises DataError on a malformed file."""
    if len(data) < 8:
        raise DataError(f"{name}: {len(data)} bytes, too short for an IDX label header (8 bytes)")
    magic, n = struct.unpack(">II", data[:8])
    if magic != IDX_LABELS_MAGIC:
        raise DataError(f"{name}: magic number 0x{magic:08x}, expected 0x{IDX_LABELS_MAGIC:08x} (IDX1 ubyte labels)")
    if len(data) != 8 + n:
        raise DataError(f"{name}: {len(data)} bytes, header says {n} labels ({8 + n} bytes)")
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


def _idx_labels(folder: Path, n_classes: int, fashion: bool) -> list[str]:
    if fashion:
        if n_classes > len(FASHION_MNIST_LABELS):
            raise DataError(f"{folder}: labels go up to {n_classes - 1}, Fashion-MNIST has 10 classes")
        return list(FASHION_MNIST_LABELS[:n_classes])
    txt = folder / "labels.txt"
    if txt.is_file():
        names = read_labels(txt, plain=True)
        if len(names) < n_classes:
            raise DataError(f"{txt}: {len(names)} names, labels go up to {n_classes - 1}")
        return names
    return [str(i) for i in range(n_classes)]


def _resize_all(x: np.ndarray, pre: Preprocessing, desc: str) -> np.ndarray:
    """(N, H, W) uint8 gray -> (N, h, w, c) through :func:`to_pixels` (a no-op reshape when sizes already match)."""
    if x.shape[1:] == (pre.height, pre.width) and pre.channels == 1:
        return x[..., None].copy()
    from tqdm import tqdm

    return np.stack([to_pixels(img, pre) for img in tqdm(x, desc=desc, unit="img", leave=False)])


def load_idx(folder: str | Path, pre: Preprocessing | None = None, fashion: bool = True,
             source: str | None = None) -> Dataset:
    """Load an MNIST-style IDX folder with its official train/test split.

    Args:
        folder: directory holding the four IDX files (each optionally gzip-compressed).
        pre: target preprocessing; None means the files' own size, 1 channel, ``center-crop`` resize, mean 0 / std 1.
            A different size or 3 channels go through :func:`edgecnn.preprocess.to_pixels`.
        fashion: use the Fashion-MNIST class names; otherwise ``labels.txt`` in the folder or "0".."K-1".
    Returns:
        Dataset with ``x``/``y`` = the training file and ``x_test``/``y_test`` = the test file.
    Raises:
        DataError: missing folder or files, malformed files, image sizes differing between train and test.
    """
    folder = require_idx_folder(folder)
    arrays = {}
    for split, (img_base, lab_base) in IDX_FILES.items():
        xi = parse_idx_images(read_idx_file(folder, img_base), str(folder / img_base))
        yi = parse_idx_labels(read_idx_file(folder, lab_base), str(folder / lab_base))
        if len(xi) != len(yi):
            raise DataError(f"{folder}: {img_base} has {len(xi)} images but {lab_base} has {len(yi)} labels")
        arrays[split] = (xi, yi)
    if arrays["train"][0].shape[1:] != arrays["test"][0].shape[1:]:
        raise DataError(f"{folder}: train images are {arrays['train'][0].shape[1:]}, "
                        f"test images {arrays['test'][0].shape[1:]}; expected the same size")
    n_classes = int(max(arrays["train"][1].max(initial=0), arrays["test"][1].max(initial=0))) + 1
    labels = _idx_labels(folder, n_classes, fashion)
    if pre is None:
        h, w = arrays["train"][0].shape[1:]
        pre = Preprocessing(height=h, width=w, channels=1, resize="center-crop", mean=(0.0,), std=(1.0,))
    x = _resize_all(arrays["train"][0], pre, "resize train")
    xt = _resize_all(arrays["test"][0], pre, "resize test")
    ds = Dataset(x=x, y=arrays["train"][1], labels=labels, pre=pre, source=source or str(folder),
                 x_test=xt, y_test=arrays["test"][1])
    _check_classes(ds.counts(), str(folder))
    return ds


# ------------------------------------------------------------------------------------------------ image folders

def _load_one(path: Path, pre: Preprocessing) -> np.ndarray:
    """Read, validate, decode (:func:`edgecnn.preprocess.read_image`, as classify and the camera do) and
    preprocess one file -> (h, w, c) uint8. Raises ImageError."""
    return to_pixels(read_image(path), pre)


def list_folder(root: str | Path) -> tuple[list[str], list[tuple[Path, int]], list[Skipped]]:
    """Find the classes and candidate files of an image folder without decoding anything.

    Class folders are the immediate sub-directories of ``root`` (hidden ones ignored), sorted by name; files are
    collected recursively inside each, sorted by path. Files with a suffix not in
    :data:`edgecnn.config.IMAGE_SUFFIXES` and files directly in ``root`` are listed as skipped.

    Returns:
        (class names, [(file, class index)], skipped)
    Raises:
        DataError: root missing or not a folder, or fewer than two class folders.
    """
    root = Path(root)
    if root.is_file():
        raise DataError(f"{root}: is a file, expected a folder ROOT/<class>/<images> "
                        "(or fashion-mnist, fashion-mnist:PATH, idx:PATH)")
    if not root.is_dir():
        raise DataError(f"{root}: no such folder, expected ROOT/<class>/<images> "
                        "(or fashion-mnist, fashion-mnist:PATH, idx:PATH)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    skipped = [Skipped(str(p), "not inside a class folder")
               for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".")]
    if len(classes) < 2:
        raise DataError(f"{root}: {len(classes)} class folder(s) ({', '.join(classes) or 'none'}), "
                        "expected at least 2 sub-folders, one per class")
    files: list[tuple[Path, int]] = []
    for idx, name in enumerate(classes):
        for p in sorted((root / name).rglob("*")):
            if not p.is_file():
                continue
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(Skipped(str(p), f"not an image file (suffix {p.suffix or 'none'!r})"))
                continue
            files.append((p, idx))
    return classes, files, skipped


def _check_classes(counts: dict[str, int], where: str) -> None:
    empty = [k for k, v in counts.items() if v == 0]
    if empty:
        raise DataError(f"{where}: class folder(s) with no usable image: {', '.join(empty)}")
    if len(counts) < 2:
        raise DataError(f"{where}: {len(counts)} class, expected at least 2")


def scan_folder(root: str | Path, pre: Preprocessing, strict: bool = False, workers: int | None = None,
                progress: bool = True) -> Dataset:
    """Scan an image folder: decode every file once, skip (or, with ``strict``, reject) unusable ones.

    Args:
        root: ``ROOT/<class>/<images>``.
        pre: target size, channels and resize rule (the shared preprocessing).
        strict: raise on the first unusable file instead of skipping it.
        workers: decoding threads (OpenCV releases the GIL); None = CPU cores available.
        progress: show a tqdm bar.
    Returns:
        Dataset with pixels in file order, ``skipped`` listing every file left out and why.
    Raises:
        DataError: see :func:`list_folder`; a class left with no usable image; any bad file when ``strict``.
    """
    from tqdm import tqdm

    from edgecnn.config import default_threads

    classes, files, skipped = list_folder(root)
    if strict and skipped:
        raise DataError(f"{skipped[0].path}: {skipped[0].reason} (--strict)")

    def work(item):
        try:
            return _load_one(item[0], pre), None
        except ImageError as e:
            return None, str(e).split(": ", 1)[-1]

    pixels, ys, paths = [], [], []
    with ThreadPoolExecutor(max_workers=workers or default_threads()) as pool:
        results = pool.map(work, files)
        for (path, idx), (px, why) in tqdm(zip(files, results), total=len(files), desc="scan", unit="file",
                                           disable=not progress, leave=False):
            if px is None:
                if strict:
                    raise DataError(f"{path}: {why} (--strict)")
                skipped.append(Skipped(str(path), why))
                continue
            pixels.append(px)
            ys.append(idx)
            paths.append(str(path))
    x = np.stack(pixels) if pixels else np.zeros((0, pre.height, pre.width, pre.channels), np.uint8)
    ds = Dataset(x=x, y=np.asarray(ys, np.int64), labels=classes, pre=pre, source=str(root),
                 skipped=skipped, paths=paths)
    _check_classes(ds.counts(), str(root))
    return ds


# -------------------------------------------------------------------------------------------------- dispatch

def parse_source(spec: str) -> tuple[str, Path]:
    """Split a DATA string into (kind, path); kind is ``fashion-mnist``, ``idx`` or ``folder``."""
    if spec == "fashion-mnist":
        return "fashion-mnist", FASHION_MNIST_DIR
    for kind in ("fashion-mnist", "idx"):
        if spec.startswith(kind + ":"):
            return kind, Path(spec[len(kind) + 1:]).expanduser()
    return "folder", Path(spec).expanduser()


def default_preprocessing(spec: str, img_size: int | None = None, channels: int | None = None,
                          resize: str | None = None) -> Preprocessing:
    """The preprocessing record a new model gets for DATA ``spec``.

    IDX sources: their own image size (28x28 for Fashion-MNIST), 1 channel, ``center-crop`` (the same as stretch on
    square IDX images, and what a 4:3 camera frame needs on the device). Image folders:
    ``img_size`` (default :data:`DEFAULT_FOLDER_SIZE`) square, 3 channels, ``center-crop``. Always mean 0 / std 1:
    edgecnn models take raw 0..255 pixels and normalise inside (``Rescaling``).
    """
    kind, path = parse_source(spec)
    if kind == "folder":
        size = img_size or DEFAULT_FOLDER_SIZE
        return Preprocessing(size, size, channels or 3, resize or "center-crop", mean=(0.0,), std=(1.0,))
    if img_size is None:
        data = read_idx_file(require_idx_folder(path), IDX_FILES["test"][0])
        if len(data) < 16:
            raise DataError(f"{path}: missing or malformed {IDX_FILES['test'][0]}, expected IDX image files")
        _, _, rows, cols = struct.unpack(">IIII", data[:16])
        h, w = rows, cols
    else:
        h = w = img_size
    return Preprocessing(h, w, channels or 1, resize or "center-crop", mean=(0.0,), std=(1.0,))


#: Sub-folder names of a dataset already split on disk (``ROOT/train/<class>/...``, ``ROOT/test/<class>/...``).
TRAIN_DIR, TEST_DIR = "train", "test"
#: Other split folders such a dataset may have; validation is split from ``train/`` (``--val-split``) instead.
OTHER_SPLIT_DIRS = ("val", "valid", "validation")


def split_layout(root: str | Path) -> tuple[Path, Path] | None:
    """``(root/train, root/test)`` when ``root`` holds a dataset already split on disk: its sub-folders are
    ``train`` and ``test`` (and maybe ``val``/``valid``/``validation``), each with class folders; else None."""
    root = Path(root)
    if not root.is_dir():
        return None
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if TRAIN_DIR not in subdirs or TEST_DIR not in subdirs or \
            not set(subdirs) <= {TRAIN_DIR, TEST_DIR, *OTHER_SPLIT_DIRS}:
        return None
    train, test = subdirs[TRAIN_DIR], subdirs[TEST_DIR]
    if not any(p.is_dir() for p in train.iterdir()):
        return None
    return train, test


def scan_split_folder(root: Path, train: Path, test: Path, pre: Preprocessing, strict: bool = False,
                      progress: bool = True) -> Dataset:
    """A dataset split on disk (:func:`split_layout`): ``train/`` is the training data (validation is split from
    it), ``test/`` the test split. Class order comes from ``train/``.

    Raises:
        DataError: as :func:`scan_folder`; a class folder in ``test/`` that ``train/`` does not have.
    """
    ds = scan_folder(train, pre, strict=strict, progress=progress)
    te = scan_folder(test, pre, strict=strict, progress=progress)
    extra = [c for c in te.labels if c not in ds.labels]
    if extra:
        raise DataError(f"{test}: class folder(s) {', '.join(extra)} not in {train} (expected the same classes)")
    remap = np.array([ds.labels.index(c) for c in te.labels], np.int64)
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.lower() in OTHER_SPLIT_DIRS)
    skipped = ds.skipped + te.skipped + [Skipped(str(root / o), "validation is split from train/ (--val-split), "
                                                 "this folder is not used") for o in others]
    return Dataset(x=ds.x, y=ds.y, labels=ds.labels, pre=pre, source=str(root), x_test=te.x, y_test=remap[te.y],
                   skipped=skipped, paths=ds.paths)


def load(spec: str, pre: Preprocessing, strict: bool = False, progress: bool = True) -> Dataset:
    """Load DATA ``spec`` (see the module docstring) preprocessed to ``pre``. A folder with ``train/`` and
    ``test/`` sub-folders is read as a dataset split on disk (:func:`split_layout`). Raises DataError."""
    kind, path = parse_source(spec)
    if kind == "folder":
        layout = split_layout(path)
        if layout is not None:
            return scan_split_folder(path, *layout, pre, strict=strict, progress=progress)
        return scan_folder(path, pre, strict=strict, progress=progress)
    return load_idx(path, pre, fashion=(kind == "fashion-mnist"), source=spec)


def split_indices(y: np.ndarray, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded train/validation split.

    Each class contributes ``round(n_c * val_split)`` samples to validation (at least 1 when ``val_split`` > 0 and
    the class has >= 2 samples, so every class is validated), chosen by a permutation from
    ``numpy.random.default_rng(seed)``.

    Args:
        y: (N,) int class indices.
        val_split: fraction in [0, 1).
    Returns:
        (train indices, val indices), each sorted ascending, int64.
    Raises:
        ValueError: val_split outside [0, 1).
    """
    if not 0.0 <= val_split < 1.0:
        raise ValueError(f"val_split is {val_split}, expected a fraction in [0, 1)")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * val_split))
        if val_split > 0 and k == 0 and len(idx) >= 2:
            k = 1
        val.append(idx[:k])
        train.append(idx[k:])
    return (np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(val)).astype(np.int64))


def make_splits(ds: Dataset, val_split: float = DEFAULT_VAL_SPLIT, seed: int = DEFAULT_SEED) -> Splits:
    """Split a Dataset: validation drawn from its training data (:func:`split_indices`); test kept as it is."""
    tr, va = split_indices(ds.y, val_split, seed)
    test = (ds.x_test, ds.y_test) if ds.has_test else None
    return Splits(train=(ds.x[tr], ds.y[tr]), val=(ds.x[va], ds.y[va]), test=test, labels=list(ds.labels),
                  pre=ds.pre)


def balanced_sample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` samples drawn class-balanced (round-robin over classes, seeded), for calibration.

    Classes with too few samples give all they have; the others fill up. Returns sorted int64 indices.
    """
    rng = np.random.default_rng(seed)
    per_class = [np.flatnonzero(y == c)[rng.permutation(int((y == c).sum()))] for c in np.unique(y)]
    out: list[int] = []
    depth = 0
    n = min(n, len(y))
    while len(out) < n:
        for idx in per_class:
            if depth < len(idx) and len(out) < n:
                out.append(int(idx[depth]))
        depth += 1
    return np.sort(np.asarray(out, np.int64))


def small_class_warnings(counts: dict[str, int], minimum: int) -> list[str]:
    """One warning per class with fewer than ``minimum`` images, naming the class and its count (pure).

    A class that small gets a handful of validation images (its accuracy is a coarse estimate) and is easily
    missed; more photos of it help more than more epochs.
    """
    return [f"class {k!r} has only {v} image{'s' if v != 1 else ''} (fewer than {minimum}): its accuracy will be "
            f"unreliable; add photos of it (check its precision/recall in the report)"
            for k, v in counts.items() if v < minimum]


def describe(ds: Dataset) -> str:
    """Multi-line text: per-class counts (with a note when the classes are imbalanced beyond
    :data:`IMBALANCE_NOTE` : 1) and every skipped file with its reason."""
    lines = [f"{ds.source}: {len(ds.y)} images in {len(ds.labels)} classes"
             + (f" (+ {len(ds.y_test)} official test images)" if ds.has_test else "")]
    width = max(len(k) for k in ds.labels)
    counts = ds.counts()
    lines += [f"  {k:<{width}}  {v}" for k, v in counts.items()]
    big, small = max(counts, key=counts.get), min(counts, key=counts.get)
    if counts[small] and counts[big] / counts[small] > IMBALANCE_NOTE:
        lines.append(f"note: classes are imbalanced ({big} has {counts[big] / counts[small]:.0f}x the images of "
                     f"{small}); overall accuracy will favour the large classes, check the per-class report")
    if ds.skipped:
        lines.append(f"skipped {len(ds.skipped)} file(s):")
        lines += [f"  {s.path}: {s.reason}" for s in ds.skipped]
    return "\n".join(lines)

