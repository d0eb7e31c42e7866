"""Make a labelled 640x480 video from real Fashion-MNIST test images, and score an `edgecnn camera --log` against it.

    python tools/make_video.py make demo-out/test.mp4 --idx models/fashion_mnist_sample --count 200
    edgecnn camera models/fashion_mnist/int8.tflite --source demo-out/test.mp4 --resize center-crop --headless \
        --log demo-out/frames.jsonl
    python tools/make_video.py score demo-out/frames.jsonl demo-out/test.labels.csv

Each image is a centred square in a 4:3 frame, so the camera needs the ``center-crop`` resize rule (what edgecnn
models record by default; models from older runs that recorded ``stretch`` need ``--resize center-crop``).

``make`` takes images from an MNIST-style IDX folder (default: the Fashion-MNIST test split in
/usr/share/datasets/fashion-mnist, images no model here was trained on), picks ``--count`` of them (seeded, class
balanced as far as the split allows), and shows each for ``--hold`` frames: the image enlarged to the frame height
and centred on a black frame (so a centre crop of the frame gives the image back, as a camera pointed at an object
would), written with OpenCV's VideoWriter (mp4v for .mp4, MJPG for .avi). Next to the video it writes
``<name>.labels.csv`` with one row per frame: ``frame,label,name``.

``--photos DIR`` takes colour photos instead: the test split of a flowers5-style folder ``DIR/<class>/NNNN.jpg``
(photos whose number is divisible by 5; classes numbered in sorted folder order, as ``edgecnn train`` does), each
centre-cropped to 4:3 and enlarged to fill the whole frame (INTER_CUBIC), as a camera filling its view with the
subject.

``score`` joins a camera log (one JSON object per frame, ``"frame"`` = index in the source; event lines, which have
an ``"event"`` key, are skipped) with that file and
prints top-1 / top-k accuracy over the frames that were classified.

Only numpy, OpenCV and click (no TensorFlow).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecnn.train.data import (FASHION_MNIST_DIR, FASHION_MNIST_LABELS, balanced_sample, parse_idx_images,  # noqa: E402
                          parse_idx_labels, read_idx_file)
from edgecnn.errors import EdgecnnError, OutputExistsError  # noqa: E402
from edgecnn.outputs import pending_files, refuse_existing  # noqa: E402

#: Frame size (width, height) in pixels and frames per second of the video.
FRAME_SIZE = (640, 480)
FPS = 15.0
CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


def pick(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` indices drawn class-balanced (:func:`edgecnn.train.data.balanced_sample`), in a seeded random order."""
    return np.random.default_rng(seed).permutation(balanced_sample(labels, count, seed))


def compose(image: np.ndarray, size: tuple[int, int] = FRAME_SIZE, fit: str = "center-crop") -> np.ndarray:
    """A (h, w) uint8 gray image -> (H, W, 3) uint8 BGR frame of ``size`` = (W, H).

    ``center-crop``: enlarged (nearest neighbour) to a square of the frame height, centred, black around it;
    ``stretch``: enlarged to the whole frame.
    """
    import cv2

    w, h = size
    frame = np.zeros((h, w), np.uint8)
    if fit == "stretch":
        frame[:] = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)
    else:
        side = min(w, h)
        top, left = (h - side) // 2, (w - side) // 2
        frame[top:top + side, left:left + side] = cv2.resize(image, (side, side), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def photo_frame(rgb: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """An (h, w, 3) uint8 RGB photo -> (H, W, 3) uint8 BGR frame of ``size`` = (W, H): centre-cropped to the
    frame's aspect ratio and enlarged to fill it (INTER_CUBIC)."""
    import cv2

    from edgecnn.preprocess import crop_box

    w, h = size
    top, left, bh, bw = crop_box(*rgb.shape[:2], h, w)
    frame = cv2.resize(rgb[top:top + bh, left:left + bw], (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)


def test_photos(root: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """The test split of a flowers5-style folder (photo number divisible by 5): (paths, labels, class names)."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for i, c in enumerate(classes):
        for f in sorted((root / c).glob("*.jpg")):
            if f.stem.isdigit() and int(f.stem) % 5 == 0:
                paths.append(f)
                labels.append(i)
    if not paths:
        raise click.ClickException(f"{root}: no test photos (expected <class>/NNNN.jpg with NNNN divisible by 5)")
    return paths, np.array(labels), classes


@click.group()
def cli():
    """Labelled demo videos from real test images, and scoring camera logs against them."""


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--idx", "idx_dir", type=click.Path(file_okay=False, path_type=Path),
              default=FASHION_MNIST_DIR, show_default=True, help="Folder with the IDX test files (optionally .gz).")
@click.option("--count", type=click.IntRange(min=1), default=200, show_default=True, help="Images in the video.")
@click.option("--hold", type=click.IntRange(min=1), default=3, show_default=True,
              help="Frames each image stays on screen.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the image choice and order.")
@click.option("--fit", type=click.Choice(["center-crop", "stretch"]), default="center-crop", show_default=True,
              help="Image layout in the frame (see the module docstring).")
@click.option("--photos", "photo_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Use the test photos of this flowers5-style folder instead of IDX images (see the docstring).")
@click.option("--fashion/--numbers", default=True, show_default=True,
              help="Name the classes as Fashion-MNIST's (T-shirt/top, ...) or by their numbers.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT and its labels file.")
def make(out: Path, idx_dir: Path, count: int, hold: int, seed: int, fit: str, photo_dir: Path | None, fashion: bool,
         overwrite: bool):
    """Write the video OUT (.mp4 or .avi) and OUT's .labels.csv."""
    import cv2
    from tqdm import tqdm

    if out.suffix.lower() not in CODECS:
        raise click.BadParameter(f"{out}: expected a name ending in .mp4 or .avi", param_hint="OUT")
    truth = out.with_suffix(".labels.csv")
    try:
        for p in (out, truth):
            refuse_existing(p, overwrite)
    except OutputExistsError as e:
        raise click.BadParameter(str(e), param_hint="OUT") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    if photo_dir is not None:
        from edgecnn.preprocess import read_image

        paths, labels, names = test_photos(photo_dir)
        chosen = pick(labels, count, seed)
        frame_of = {int(i): photo_frame(read_image(paths[i])) for i in chosen}.__getitem__
    else:
        try:
            images = parse_idx_images(read_idx_file(idx_dir, "t10k-images-idx3-ubyte"), str(idx_dir))
            labels = parse_idx_labels(read_idx_file(idx_dir, "t10k-labels-idx1-ubyte"), str(idx_dir))
        except EdgecnnError as e:
            raise click.ClickException(str(e)) from None
        names = list(FASHION_MNIST_LABELS) if fashion and labels.max() < len(FASHION_MNIST_LABELS) else None
        chosen = pick(labels, count, seed)
        frame_of = lambda i: compose(images[i], FRAME_SIZE, fit)  # noqa: E731

    rows = []
    with pending_files() as files:
        w = cv2.VideoWriter(str(files.path(out)), cv2.VideoWriter_fourcc(*CODECS[out.suffix.lower()]), FPS,
                            FRAME_SIZE)
        if not w.isOpened():
            raise click.ClickException(f"{out}: OpenCV cannot write this format here")
        for i in tqdm(chosen, desc="frames", unit="img", leave=False, disable=None):
            frame = frame_of(int(i))
            for _ in range(hold):
                rows.append((len(rows), int(labels[i]), names[labels[i]] if names else str(labels[i])))
                w.write(frame)
        w.release()
        with open(files.path(truth), "w", newline="") as f:
            cw = csv.writer(f)
            cw.writerow(["frame", "label", "name"])
            cw.writerows(rows)
    click.echo(f"{out}: {len(rows)} frames ({len(chosen)} test images x {hold}), {FRAME_SIZE[0]}x{FRAME_SIZE[1]} "
               f"at {FPS:g} fps; labels in {truth}")
    if fit == "center-crop" and photo_dir is None:
        click.echo("each image is a centred square: the camera needs the center-crop resize rule (the default that "
                   "edgecnn models record; pass --resize center-crop to a model that records stretch)", err=True)


@cli.command()
@click.argument("log", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("truth", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
def score(log: Path, truth: Path, as_json: bool):
    """Top-1 and top-k accuracy of a camera LOG (JSON lines) against TRUTH (frame,label,name CSV)."""
    with open(truth, newline="") as f:
        want = {int(r["frame"]): int(r["label"]) for r in csv.DictReader(f)}
    n = top1 = topk = 0
    k = 0
    for line_no, line in enumerate(log.read_text().splitlines(), 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise click.ClickException(f"{log}:{line_no}: not a JSON line") from None
        if "top" not in rec or rec.get("frame") not in want:  # event lines ("event": ...) carry no ranking
            continue
        got = [p["index"] for p in rec["top"]]
        k = max(k, len(got))
        n += 1
        top1 += bool(got) and got[0] == want[rec["frame"]]
        topk += want[rec["frame"]] in got
    if n == 0:
        raise click.ClickException(f"{log}: no logged frame is in {truth}")
    result = {"frames": n, "labelled_frames": len(want), "top1": top1 / n, f"top{k}": topk / n}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"{n} of {len(want)} labelled frames classified: top-1 {top1 / n:.1%}, top-{k} {topk / n:.1%}")


if __name__ == "__main__":
    cli()
