"""Make the small Fashion-MNIST sample shipped in models/fashion_mnist_sample/ (IDX .gz, same form as the original).

The sample lets the README demo run with no dataset installed: ``edgecnn train fashion-mnist:models/fashion_mnist_sample``.
It takes the first ``--train-per-class`` images of each class from the official training file and the first
``--test-per-class`` of each class from the official test file (file order, so the result does not depend on a
random generator), keeping the original order. The gzip streams are written with mtime 0 so that re-running gives
byte-identical files. It also writes ``images/``: the first ``--images-per-class`` test images of each class of the
sample as 28x28 grayscale PNGs named ``NNN_label.png`` (NNN: index in the sample's test file), for a first
``edgecnn classify`` on a device (docs/raspberry-pi.md); ``--images-only`` writes just those, from the sample.

Fashion-MNIST: Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist (MIT licence).

Usage::

    python tools/prepare_sample.py [--src /usr/share/datasets/fashion-mnist] [--out models/fashion_mnist_sample]
    python tools/prepare_sample.py --images-only
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecnn.train.data import (FASHION_MNIST_DIR, FASHION_MNIST_LABELS, IDX_FILES, IDX_IMAGES_MAGIC,  # noqa: E402
                                IDX_LABELS_MAGIC, parse_idx_images, parse_idx_labels, read_idx_file)
from edgecnn.outputs import open_output  # noqa: E402


def first_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    """Indices (ascending) of the first ``per_class`` samples of every class in ``y``."""
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
    return np.sort(keep)


def write_idx(path: Path, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> None:
    """Write an IDX3 image file ((N, rows, cols) uint8) or an IDX1 label file ((N,) 0..255), gzip with mtime 0."""
    if images is not None:
        n, rows, cols = images.shape
        payload = struct.pack(">IIII", IDX_IMAGES_MAGIC, n, rows, cols) + images.astype(np.uint8).tobytes()
    else:
        payload = struct.pack(">II", IDX_LABELS_MAGIC, len(labels)) + labels.astype(np.uint8).tobytes()
    with open_output(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(payload)


def write_test_pngs(sample: Path, per_class: int) -> list[Path]:
    """Write the first ``per_class`` test images of each class in the ``sample`` folder to ``sample/images/`` as
    PNGs named ``NNN_label.png`` (label lower-case, "/" and spaces as "-"). Returns the paths written."""
    import cv2

    img_base, lab_base = IDX_FILES["test"]
    x = parse_idx_images(read_idx_file(sample, img_base), img_base)
    y = parse_idx_labels(read_idx_file(sample, lab_base), lab_base)
    (sample / "images").mkdir(exist_ok=True)
    out = []
    for i in first_per_class(y, per_class):
        slug = FASHION_MNIST_LABELS[int(y[i])].lower().replace("/", "-").replace(" ", "-")
        out.append(sample / "images" / f"{i:03d}_{slug}.png")
        ok, png = cv2.imencode(".png", x[i])
        with open_output(out[-1], "wb") as f:
            f.write(png.tobytes())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=FASHION_MNIST_DIR, help="folder with the four Fashion-MNIST IDX files")
    ap.add_argument("--out", type=Path, default=Path("models/fashion_mnist_sample"), help="output folder")
    ap.add_argument("--train-per-class", type=int, default=400, help="training images per class (default 400)")
    ap.add_argument("--test-per-class", type=int, default=100, help="test images per class (default 100)")
    ap.add_argument("--images-per-class", type=int, default=2, help="test PNGs per class in images/ (default 2)")
    ap.add_argument("--images-only", action="store_true", help="only write images/, from the sample in --out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.images_only:
        print(f"{len(write_test_pngs(args.out, args.images_per_class))} PNGs -> {args.out / 'images'}")
        return 0
    for split, per_class in (("train", args.train_per_class), ("test", args.test_per_class)):
        img_base, lab_base = IDX_FILES[split]
        x = parse_idx_images(read_idx_file(args.src, img_base), img_base)
        y = parse_idx_labels(read_idx_file(args.src, lab_base), lab_base)
        keep = first_per_class(y, per_class)
        write_idx(args.out / f"{img_base}.gz", images=x[keep])
        write_idx(args.out / f"{lab_base}.gz", labels=y[keep])
        print(f"{split}: {len(keep)} images ({per_class} per class) -> {args.out}")
    print(f"{len(write_test_pngs(args.out, args.images_per_class))} PNGs -> {args.out / 'images'}")
    total = sum(p.stat().st_size for p in args.out.glob("*.gz"))
    print(f"{total / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
