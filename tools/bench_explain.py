"""How long `edgecnn explain`'s occlusion map takes, by batch size, side by side in one run.

    python tools/bench_explain.py MODEL IMAGE [--threads N] [--batches 1,8,32] [--repeat 3]

For each batch size it builds the occlusion scorer the command uses (:class:`edgecnn.explain.BatchScorer`), runs
the default occlusion map (:func:`edgecnn.explain.default_patch`) ``--repeat`` times and prints the best wall time,
the invokes, the ms per scored image, and the ratio to the first row. For a model ending in a softmax it does so
twice: with the logits made an extra output (what the command does) and with every tensor kept (its fallback when
no TFLite schema is installed). It also times one bare invoke of the classifier's
own interpreter (the deployed path) for scale. The machine is printed with the numbers; run it on the board you
care about.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from edgecnn.config import RuntimeOptions
from edgecnn.explain import BatchScorer, default_patch, occlusion_map
from edgecnn.preprocess import read_image, to_pixels
from edgecnn.runtime import Classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("image")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    clf = Classifier(args.model, RuntimeOptions(threads=args.threads))
    model = open(args.model, "rb").read()
    pixels = to_pixels(read_image(args.image), clf.preprocessing)
    tensor = clf.tensor_from_pixels(pixels)
    clf.invoke(tensor)
    t = time.perf_counter()
    for _ in range(20):
        clf.invoke(tensor)
    bare = (time.perf_counter() - t) / 20 * 1e3
    patch, stride = default_patch(*pixels.shape[:2])
    target = int(np.argmax(clf.scores(clf.invoke(tensor))))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; {clf.backend.name} "
          f"{clf.backend.version}, {args.threads} thread(s)")
    print(f"model: {args.model}, input {pixels.shape}, bare invoke {bare:.3f} ms; patch {patch}, stride {stride}")
    print(f"{'batch':>5} {'logits read by':>16} {'unit':>9} {'invokes':>8} {'best s':>8} {'ms/image':>9} "
          f"{'vs first row':>12}")
    first = None
    for b in [int(x) for x in args.batches.split(",")]:
        for rewrite in (True, False):
            scorer = BatchScorer(clf, model, b, rewrite=rewrite)
            if not rewrite and scorer.unit != "log-odds":
                continue
            how = "-" if scorer.unit != "log-odds" else "all tensors" if scorer.keep_all else "extra output"
            best, occ = float("inf"), None
            for _ in range(args.repeat):
                t = time.perf_counter()
                occ = occlusion_map(scorer, pixels, target, patch, stride, batch=scorer.batch, unit=scorer.unit)
                best = min(best, time.perf_counter() - t)
            first = first or best
            per = best / (occ.positions + 1) * 1e3
            print(f"{scorer.batch:>5} {how:>16} {scorer.unit:>9} {occ.invokes:>8} {best:>8.3f} {per:>9.3f} "
                  f"{best / first:>11.2f}x" + (f"  ({scorer.note})" if scorer.note else ""))


if __name__ == "__main__":
    main()
