"""The ``edgecnn`` command line: parse, validate, call one library function, print.

Heavy imports (numpy, OpenCV, the interpreter, TensorFlow) happen inside the commands, so ``edgecnn --help`` stays
fast and the device install never imports TensorFlow.
"""

from __future__ import annotations

import json
import sys

import click

from edgecnn import __version__
from edgecnn.config import BACKENDS, DEFAULT_THRESHOLD, DEFAULT_TOP_K, RESIZE_RULES


class FloatList(click.ParamType):
    """A float or a comma-separated list of floats (one per channel), e.g. ``127.5`` or ``123.7,116.3,103.5``."""

    name = "FLOAT[,FLOAT...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            out = tuple(float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not a number or a comma-separated list of numbers", param, ctx)
        if len(out) not in (1, 3):
            self.fail(f"{value!r} has {len(out)} values, expected 1 or 3 (one per channel)", param, ctx)
        return out


class EdgecnnGroup(click.Group):
    """Click group that turns any :class:`edgecnn.errors.EdgecnnError` into one ``Error:`` line and exit code 1."""

    def invoke(self, ctx):
        from edgecnn.errors import EdgecnnError

        try:
            return super().invoke(ctx)
        except EdgecnnError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=EdgecnnGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgecnn")
def main():
    """Compact CNN image classifiers for small devices.

    \b
    Workstation (pip install edgecnn[train]):
      train     train a compact CNN on an image folder or Fashion-MNIST
      quantize  convert it to a full-integer int8 .tflite with a float-vs-int8 report
      evaluate  accuracy of a .keras or .tflite model on a dataset split
    Device (pip install edgecnn; no TensorFlow):
      classify  top-k labels for images with any image-classification .tflite
      info      what a .tflite is made of (tensors, ops, int8 or not, labels)
      camera    live classifier on a camera, video, stream or image folder
      bench     honest latency numbers (p50/p90/p99) for one or more models
    """


def runtime_options(f):
    """Options shared by the commands that run a .tflite (classify, info, camera, bench)."""
    opts = [
        click.option("--backend", type=click.Choice(BACKENDS), default=None,
                     help="Interpreter package. Default: the first of ai_edge_litert, tflite_runtime, tensorflow "
                          "that imports."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="Interpreter threads. Default: the number of CPU cores."),
        click.option("--labels", "labels_path", type=click.Path(dir_okay=False), default=None,
                     help="Label file (one per line, or 'index label', 'index: label', 'index,label'). "
                          "Default: labels embedded in the model."),
        click.option("--mean", type=FloatList(), default=None,
                     help="Input normalisation in pixel units: the model sees (pixel - mean) / std. "
                          "One value or one per channel. Default: from the model's metadata."),
        click.option("--std", type=FloatList(), default=None, help="See --mean."),
        click.option("--resize", type=click.Choice(RESIZE_RULES), default=None,
                     help="How images are fitted to the model input. Default: the model's metadata, else "
                          "center-crop."),
        click.option("--softmax", is_flag=True, help="Apply a softmax to the outputs (for models that output logits)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def make_options(backend, threads, labels_path, mean, std, resize, softmax):
    """Build :class:`edgecnn.config.RuntimeOptions` from the shared options, checking that --mean/--std pair up."""
    from edgecnn.config import RuntimeOptions

    if (mean is None) != (std is None):
        raise click.UsageError("--mean and --std go together: give both or neither")
    if std is not None and any(s == 0 for s in std):
        raise click.BadParameter(f"{','.join(map(str, std))} contains 0", param_hint="--std")
    return RuntimeOptions(backend=backend, threads=threads, labels_path=labels_path, mean=mean, std=std,
                          resize=resize, softmax=softmax)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, separators=(",", ":")))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True)
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=DEFAULT_TOP_K, show_default=True,
              help="Number of classes to report per image.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=DEFAULT_THRESHOLD, show_default=True,
              help="Report only classes scoring at least this (0..1).")
@runtime_options
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object per image per line: {"image", "top": [{"index", "label", "score"}], '
                   '"latency_ms": {"preprocess", "invoke", "postprocess"}}.')
def classify(model, images, top_k, threshold, as_json, **opts):
    """Top-k labels for IMAGES (files, folders, globs) with the .tflite classifier MODEL.

    Works with edgecnn's models (labels and preprocessing embedded) and with other single-input image classifiers
    (uint8, int8 or float32 input). An image that cannot be read is reported and skipped; the others still get
    results, and the exit code is 1.
    """
    from edgecnn.errors import ImageError
    from edgecnn.images import expand_images
    from edgecnn.preprocess import read_image
    from edgecnn.runtime import Classifier

    clf = Classifier(model, make_options(**opts))
    paths = expand_images(images)
    if not paths:
        raise click.UsageError(f"no image files found in {' '.join(images)}")
    failed = 0
    warned = False
    for path in paths:
        try:
            result = clf.classify(read_image(path), top_k, threshold)
        except ImageError as e:
            failed += 1
            click.echo(f"Error: {e}", err=True)
            if as_json:
                _echo_json({"image": str(path), "error": str(e)})
            continue
        if not result.probabilities and not clf.softmax and not warned:
            warned = True
            click.echo(f"Warning: {model}: outputs are not a probability vector (logits?); scores are raw. "
                       f"Pass --softmax to apply one.", err=True)
        if as_json:
            _echo_json({"image": str(path), "top": [p.to_dict() for p in result.top],
                        "latency_ms": {k: round(v, 3) for k, v in result.latency_ms.items()}})
        else:
            ranked = ", ".join(f"{p.label if p.label is not None else p.index} ({p.score:.3f})" for p in result.top)
            click.echo(f"{path}: {ranked or '(nothing above threshold)'}  [{result.latency_ms['invoke']:.2f} ms]")
    if failed:
        sys.exit(1)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print the description as one JSON object.")
def info(model, as_json, **opts):
    """What the .tflite MODEL is made of: size, inputs/outputs (shape, dtype, scale, zero_point), operator
    counts, whether the graph is fully integer (naming any float ops), backend, embedded labels and preprocessing.
    """
    from edgecnn.modelinfo import describe
    from edgecnn.runtime import Classifier

    d = describe(Classifier(model, make_options(**opts)))
    if as_json:
        _echo_json(d)
        return
    click.echo(f"model        {d['model']} ({d['size_bytes']:,} bytes)")
    click.echo(f"backend      {d['backend']['name']} {d['backend']['version']}, {d['threads']} threads")
    for kind in ("inputs", "outputs"):
        for t in d[kind]:
            q = f"scale={t['scale']:.6g} zero_point={t['zero_point']}" if t["scale"] else "not quantized"
            click.echo(f"{kind[:-1]:<12} {t['name']}: {tuple(t['shape'])} {t['dtype']} {q}")
    click.echo("operators    " + ", ".join(f"{k} x{v}" for k, v in d["operators"].items()))
    click.echo("integer      " + ("fully integer" if d["fully_integer"]
                                  else "NO, float ops: " + ", ".join(d["float_ops"])))
    meta = d["metadata"]
    click.echo(f"metadata     {meta['source'] or 'none'} (entries: {', '.join(meta['entries']) or 'none'})")
    if meta["num_labels"]:
        more = ", ..." if meta["num_labels"] > len(meta["labels_head"]) else ""
        click.echo(f"labels       {meta['num_labels']}: {', '.join(map(str, meta['labels_head']))}{more}")
    else:
        click.echo("labels       none (pass --labels FILE)")
    p = d["preprocessing"]
    norm = f"(pixel - {p['mean']}) / {p['std']}" if p["mean"] is not None else "raw pixel bytes"
    click.echo(f"preprocess   {p['height']}x{p['width']}x{p['channels']}, {p['resize']}, {norm}")


if __name__ == "__main__":  # pragma: no cover
    main()
