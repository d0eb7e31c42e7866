"""The ``edgecnn`` command line: parse, validate, call one library function, print.

Heavy imports (numpy, OpenCV, the interpreter, TensorFlow) happen inside the commands, so ``edgecnn --help`` stays
fast and the device install never imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import sys

import click

from edgecnn import __version__
from edgecnn.stop import exit_code, signal_name, stop_signals, stopped_by
from edgecnn.config import BACKENDS, DEFAULT_THRESHOLD, DEFAULT_TOP_K, RESIZE_RULES
from edgecnn.config import DEFAULT_EXEC_TIMEOUT_S, DEFAULT_HOLD_FRAMES, DEFAULT_SMOOTH_FRAMES
from edgecnn.config import DEFAULT_SERVE_FPS, DEFAULT_SERVE_HOST, MQTT_ENV_PASSWORD, MQTT_ENV_USERNAME
from edgecnn.config import DEFAULT_BENCH_RUNS, DEFAULT_BENCH_SEED, DEFAULT_BENCH_WARMUP
from edgecnn.config import (ARCHITECTURES, DEFAULT_FOLDER_SIZE, DEFAULT_SEED, IO_TYPES,
                            MAX_IMG_SIZE, MIN_IMG_SIZE, QuantizeOptions, TrainOptions)
from edgecnn.config import ExplainOptions
from edgecnn.config import (AUGMENTATIONS, DEFAULT_ALPHA, DEFAULT_EPOCHS, DEFAULT_FINE_TUNE_EPOCHS, DEFAULT_HEAD_LR,
                            DEFAULT_LABEL_SMOOTHING, DEFAULT_SCRATCH_LR, MOBILENETV2_ALPHAS, PRETRAINED)

_TRAIN = TrainOptions()  # defaults shown in --help
_QUANTIZE = QuantizeOptions()
_EXPLAIN = ExplainOptions()


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
        if not all(math.isfinite(v) for v in out):
            self.fail(f"{value!r} is not finite, expected finite numbers", param, ctx)
        return out


class IntList(click.ParamType):
    """A comma-separated list of positive integers, e.g. ``1,2,4``."""

    name = "N[,N...]"

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return list(value)
        try:
            out = [int(v) for v in str(value).split(",")]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)
        if not out or min(out) < 1:
            self.fail(f"{value!r}: expected integers >= 1", param, ctx)
        return list(dict.fromkeys(out))


class EdgecnnGroup(click.Group):
    """Click group that turns any :class:`edgecnn.errors.EdgecnnError` into one ``Error:`` line and exit code 1,
    and a stop (Ctrl-C, SIGTERM, SIGHUP: :mod:`edgecnn.stop`) into one line and exit code 128 + signal number
    (130, 143, 129). A command that writes files removes its temporary ones on the way out, so a stop leaves
    nothing partial; ``camera`` ends its loop on a stop like on Ctrl-C, with its summary and exit code 0."""

    def invoke(self, ctx):
        from edgecnn.errors import EdgecnnError

        received: list[int] = []
        try:
            with stop_signals() as received:
                return super().invoke(ctx)
        except KeyboardInterrupt as e:
            self._stopped(ctx, e)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise  # the command's own exit code or usage error (camera ends a stopped run with exit 0)
        except Exception as e:
            stop = stopped_by(received)  # native code that turned our Stopped into another error
            if stop is not None:
                self._stopped(ctx, stop)
            if isinstance(e, EdgecnnError):
                raise click.ClickException(str(e)) from None
            if isinstance(e, OSError):  # a write that no command-specific handler caught (disk full, permissions)
                where = f"{e.filename}: " if e.filename else ""
                raise click.ClickException(f"{where}{e.strerror or e}") from None
            raise

    @staticmethod
    def _stopped(ctx, e: KeyboardInterrupt):
        """One line on stderr and exit code 128 + signal number for a stop."""
        click.echo(f"Stopped by {signal_name(e)} before finishing; nothing partial was left behind", err=True)
        ctx.exit(exit_code(e))


@click.group(cls=EdgecnnGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgecnn")
def main():
    """Compact CNN image classifiers for small devices.

    \b
    Workstation (pip install edgecnn[train]):
      train     train a compact CNN on an image folder or Fashion-MNIST
      quantize  convert it to a full-integer int8 .tflite with a float-vs-int8 report
      evaluate  accuracy of a .keras or .tflite model on a dataset split
    Device (pip install "edgecnn[litert,opencv]", on a Pi see docs/raspberry-pi.md; no TensorFlow):
      classify  top-k labels for images with any image-classification .tflite
      info      what a .tflite is made of (tensors, ops, int8 or not, labels); --system: this machine
      camera    live classifier on a camera, video, stream or image folder
      bench     honest latency numbers (p50/p90/p99) for one or more models
      explain   what a .tflite sees in an image: layers, feature maps, filters, where it looks
    """


def runtime_options(f=None, *, threads_list: bool = False):
    """Options shared by the commands that run a .tflite (classify, info, camera, bench).

    Use as ``@runtime_options``, or ``@runtime_options(threads_list=True)`` for ``--threads 1,2,4`` (a list, bench).
    """
    if f is None:
        return lambda g: runtime_options(g, threads_list=threads_list)
    threads = (click.option("--threads", type=IntList(), default=None,
                            help="Interpreter thread counts, comma-separated (e.g. 1,2,4), one result row each. "
                                 "Default: the number of CPU cores.")
               if threads_list else
               click.option("--threads", type=click.IntRange(min=1), default=None,
                            help="Interpreter threads. Default: the number of CPU cores."))
    opts = [
        click.option("--backend", type=click.Choice(BACKENDS), default=None,
                     help="Interpreter package. Default: the first of ai_edge_litert, tflite_runtime, tensorflow "
                          "that imports."),
        threads,
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
    """Build :class:`edgecnn.config.RuntimeOptions` from the shared options; its rule for --mean/--std
    (:func:`edgecnn.config.check_normalisation`) becomes a usage error."""
    from edgecnn.config import RuntimeOptions

    if (mean is None) != (std is None):
        raise click.UsageError("--mean and --std go together: give both or neither")
    try:
        return RuntimeOptions(backend=backend, threads=threads, labels_path=labels_path, mean=mean, std=std,
                              resize=resize, softmax=softmax)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--mean/--std") from None


def warn_runtime_notes(clf) -> None:
    """Warn (stderr) about what a user of a loaded Classifier should hear once: labels shifted for a background
    class, a label file numbered from 1, reference kernels in place of optimized ones that crash on the model."""
    if clf.labels_one_based:
        click.echo(f"Note: the labels are numbered 1..{clf.num_classes} for {clf.num_classes} outputs: label 1 is "
                   f"taken for output index 0", err=True)
    if clf.background_added:
        click.echo(f"Warning: labels have {clf.num_classes - 1} entries for {clf.num_classes} outputs: index 0 is "
                   f"taken as a leading background class and the labels start at index 1", err=True)
    if clf.kernel_note:
        click.echo(f"Warning: {clf.kernel_note}", err=True)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, separators=(",", ":")))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True)
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=DEFAULT_TOP_K, show_default=True,
              help="Number of classes to report per image.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=DEFAULT_THRESHOLD, show_default=True,
              help="Report only classes scoring at least this (0..1); 0 reports the top-k whatever their "
                   "scores, raw logits below 0 included.")
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
    warn_runtime_notes(clf)
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
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@runtime_options
@click.option("--system", "system", is_flag=True,
              help="Describe this machine for a bug report instead: board, OS, userland, Python, interpreter, "
                   "NumPy, OpenCV, CPU features, governor, throttling.")
@click.option("--json", "as_json", is_flag=True, help="Print the description as one JSON object.")
def info(model, system, as_json, **opts):
    """What the .tflite MODEL is made of: size, inputs/outputs (shape, dtype, scale, zero_point), operator
    counts, the quantization kind (int8, uint8, int16x8, float16 weights, dynamic-range, int8 with float ops,
    float32; named from the tensors), whether the graph is fully integer (naming any float ops), backend,
    embedded labels and preprocessing.

    With --system (and no MODEL): what this machine is and what edgecnn runs on here; paste it into bug reports.
    """
    if system:
        if model is not None:
            raise click.UsageError("give either MODEL or --system, not both")
        _info_system(as_json)
        return
    if model is None:
        raise click.UsageError("missing MODEL (or --system to describe this machine)")
    from edgecnn.modelinfo import describe
    from edgecnn.runtime import Classifier

    clf = Classifier(model, make_options(**opts), require_normalisation=False)
    warn_runtime_notes(clf)
    d = describe(clf)
    if as_json:
        _echo_json(d)
        return
    click.echo(f"model        {d['model']} ({d['size_bytes']:,} bytes)")
    kernels = "" if d["backend"]["kernels"] == "optimized" else " (reference kernels)"
    click.echo(f"backend      {d['backend']['name']} {d['backend']['version']}, {d['threads']} threads{kernels}")
    for kind in ("inputs", "outputs"):
        for t in d[kind]:
            q = f"scale={t['scale']:.6g} zero_point={t['zero_point']}" if t["scale"] else "not quantized"
            click.echo(f"{kind[:-1]:<12} {t['name']}: {tuple(t['shape'])} {t['dtype']} {q}")
    click.echo("operators    " + ", ".join(f"{k} x{v}" for k, v in d["operators"].items()))
    click.echo(f"quantization {d['quantization']}")
    click.echo("integer      " + ("fully integer" if d["fully_integer"]
                                  else "NO, float ops: " + ", ".join(d["float_ops"])))
    click.echo(f"scores       {d['scores']}")
    meta = d["metadata"]
    click.echo(f"metadata     {meta['source'] or 'none'} (entries: {', '.join(meta['entries']) or 'none'})")
    if meta["num_labels"]:
        more = ", ..." if meta["num_labels"] > len(meta["labels_head"]) else ""
        click.echo(f"labels       {meta['num_labels']}: {', '.join(map(str, meta['labels_head']))}{more}")
    else:
        click.echo("labels       none (pass --labels FILE)")
    p = d["preprocessing"]
    if p["mean"] is not None:
        norm = f"(pixel - {p['mean']}) / {p['std']}"
    elif d["inputs"][0]["dtype"] == "float32":
        norm = "normalisation unknown: classify needs --mean and --std"
    else:
        norm = "raw pixel bytes"
    click.echo(f"preprocess   {p['height']}x{p['width']}x{p['channels']}, {p['resize']}, {norm}")


def _info_system(as_json: bool) -> None:
    from edgecnn.system import system_report, system_text

    r = system_report()
    if as_json:
        _echo_json(r)
    else:
        click.echo("\n".join(system_text(r)))


# ------------------------------------------------------------------------------ device: camera / bench
def _check_output(path: str | None, overwrite: bool, option: str) -> None:
    """Refuse to replace an existing file without --overwrite (:func:`edgecnn.outputs.refuse_existing`), and a path
    whose folder does not exist, as a usage error naming ``option``."""
    from pathlib import Path

    from edgecnn.errors import OutputExistsError
    from edgecnn.outputs import refuse_existing

    if path is None:
        return
    p = Path(path)
    try:
        refuse_existing(p, overwrite)
    except OutputExistsError as e:
        raise click.BadParameter(str(e), param_hint=option) from None
    if not p.parent.is_dir():
        raise click.BadParameter(f"{path}: folder {p.parent} does not exist", param_hint=option)


def service_options(f):
    """The ``edgecnn camera`` options that make it a headless service (smoothing and events, rotation and region,
    systemd unit)."""
    opts = [
        click.option("--smooth", type=click.IntRange(min=1), default=DEFAULT_SMOOTH_FRAMES, show_default=True,
                     help="Average the scores of the last N frames before ranking (1: no smoothing); the overlay, "
                          "log, web view and events all use the smoothed ranking."),
        click.option("--hold", type=click.IntRange(min=1), default=DEFAULT_HOLD_FRAMES, show_default=True,
                     help="An event is emitted when the (smoothed) top-1 class changes and holds for this many "
                          "consecutive frames at or above --threshold."),
        click.option("--only", default=None, metavar="LABEL[,LABEL...]",
                     help="Emit events only for these classes (labels, or output indices for a model without "
                          "labels)."),
        click.option("--exec", "exec_command", default=None, metavar="CMD",
                     help="Run CMD once per event, one at a time, in the background, without a shell; the event is "
                          "in its environment: EDGECNN_LABEL, EDGECNN_INDEX, EDGECNN_SCORE, EDGECNN_FRAME, "
                          "EDGECNN_T, EDGECNN_PREVIOUS, EDGECNN_EVENT (JSON)."),
        click.option("--exec-timeout", type=click.FloatRange(min=0.0, min_open=True), default=DEFAULT_EXEC_TIMEOUT_S,
                     show_default=True, help="Seconds an --exec command may run before it is killed."),
        click.option("--roi", default=None, metavar="X,Y,W,H",
                     help="Classify only this region of the frame (pixels, after --rotate); drawn as a rectangle."),
        click.option("--rotate", type=click.Choice(["0", "90", "180", "270"]), default="0", show_default=True,
                     help="Rotate every frame clockwise by this many degrees (a camera mounted sideways)."),
        click.option("--serve", "serve_address", default=None, metavar="[HOST:]PORT",
                     help=f"Serve a live web view on HOST (default {DEFAULT_SERVE_HOST}: this device only; 0.0.0.0 "
                          "serves every network interface) at PORT (0: a free one): / (page), /stream.mjpg (MJPEG), "
                          "/stats.json (the --json summary so far plus the newest top-k), /healthz (200 or 503)."),
        click.option("--serve-fps", type=click.FloatRange(min=0.0, min_open=True), default=DEFAULT_SERVE_FPS,
                     show_default=True, help="Most JPEG frames per second sent to web view clients."),
        click.option("--mqtt", "mqtt_url", default=None, metavar="URL",
                     help="Publish events to mqtt://[user:pass@]host[:port]/topic (or mqtts://): TOPIC/event per "
                          "event, TOPIC/state retained, TOPIC/status online/offline (retained, also the last will). "
                          f"Credentials: from the URL or ${MQTT_ENV_USERNAME} / ${MQTT_ENV_PASSWORD}; never printed. "
                          "Needs edgecnn[mqtt]."),
        click.option("--mqtt-discovery", is_flag=True,
                     help="Also publish Home Assistant MQTT discovery, so a class and a score sensor appear by "
                          "themselves."),
        click.option("--max-fps", type=click.FloatRange(min=0.0, min_open=True), default=None,
                     help="Read at most this many frames per second: saves CPU on a camera (the newest frame is "
                          "still the one classified); plays a video file or slideshow at about this rate. "
                          "Default: as fast as frames come."),
        click.option("--print-systemd-unit", is_flag=True,
                     help="Print a systemd unit that runs this command at boot (restart on failure, a dedicated "
                          "user, this working directory) and exit; see docs/raspberry-pi.md."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def make_service_options(threshold: float, opts: dict):
    """Pop the :func:`service_options` values out of ``opts`` into :class:`edgecnn.config.ServiceOptions`."""
    from edgecnn.config import EventOptions, ServiceOptions
    from edgecnn.geometry import Roi
    from edgecnn.mqtt import parse_url
    from edgecnn.serve import parse_address

    roi_text, only = opts.pop("roi"), opts.pop("only")
    try:
        roi = Roi.parse(roi_text) if roi_text is not None else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--roi") from None
    names = frozenset(n.strip() for n in only.split(",") if n.strip()) if only is not None else None
    if names is not None and not names:
        raise click.BadParameter(f"{only!r}: expected one or more labels, comma-separated", param_hint="--only")
    events = EventOptions(opts.pop("smooth"), opts.pop("hold"), threshold, names)
    mqtt_url, discovery = opts.pop("mqtt_url"), opts.pop("mqtt_discovery")
    if mqtt_url is not None:
        try:
            parse_url(mqtt_url)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--mqtt") from None
    elif discovery:
        raise click.UsageError("--mqtt-discovery needs --mqtt")
    serve = opts.pop("serve_address")
    try:
        serve = parse_address(serve, DEFAULT_SERVE_HOST) if serve is not None else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--serve") from None
    return ServiceOptions(rotate=int(opts.pop("rotate")), roi=(roi.x, roi.y, roi.w, roi.h) if roi else None,
                          events=events, exec_command=opts.pop("exec_command"), exec_timeout_s=opts.pop("exec_timeout"),
                          serve=serve, serve_fps=opts.pop("serve_fps"), max_fps=opts.pop("max_fps"),
                          mqtt_url=mqtt_url, mqtt_discovery=discovery)


def _check_only(service_opts, clf) -> None:
    from edgecnn.service import check_only

    if service_opts.events.only is not None:
        try:
            check_only(service_opts.events.only, clf.labels, clf.num_classes)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--only") from None


def _start_service(service_opts, clf, src, log, runtime_opts):
    from edgecnn.explain_frame import FrameExplainer
    from edgecnn.service import Service

    explainer = FrameExplainer(clf.path, runtime_opts) if service_opts.serve is not None else None
    try:
        svc = Service(service_opts, clf, src, log, warn=lambda text: click.echo(f"Warning: {text}", err=True),
                      explainer=explainer)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--exec") from None
    except OSError as e:  # --serve: address in use, no such interface
        host, port = service_opts.serve
        raise click.BadParameter(f"{host}:{port}: cannot listen ({e.strerror or e})", param_hint="--serve") from None
    if svc.server is not None:
        click.echo(f"web view: {svc.server.url}", err=True)
    return svc


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", default="0", show_default=True,
              help="Camera index (0, 1, ...), video file, rtsp:// or http(s):// URL, image folder or glob (a "
                   "slideshow, in name order), or 'picamera2' (Raspberry Pi camera module on Raspberry Pi OS). "
                   "Cameras and streams: only the newest frame is classified, older ones are dropped and counted; "
                   "files: every frame, in order.")
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=DEFAULT_TOP_K, show_default=True,
              help="Number of classes shown and logged per frame.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=DEFAULT_THRESHOLD, show_default=True,
              help="Report only classes scoring at least this (0..1); 0 reports the top-k whatever their "
                   "scores, raw logits below 0 included.")
@runtime_options
@click.option("--show/--headless", default=None,
              help="Show a window with the top-k labels, FPS and invoke ms ('q' or Esc quits), or run without "
                   "one. Default: a window when a display is available.")
@click.option("--record", type=click.Path(dir_okay=False), default=None,
              help="Write the annotated video to this .mp4 (mp4v) or .avi (MJPG) file, at the source's frame rate "
                   "(15 frames/s when unknown).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
              help='Write one JSON object per processed frame, one per line, written under this name as the run '
                   'goes (follow it with tail -f) and flushed per line: {"frame": index '
                   'in the source, "t": seconds since start, "top": [{"index", "label", "score"}], "ms": {stage: '
                   'ms}}; and one per event: {"event": "change", "label", "index", "score", "frame", "t": Unix '
                   'seconds, "previous"}.')
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Stop after this many processed frames.")
@click.option("--duration", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Stop after this many seconds.")
@click.option("--overwrite", is_flag=True, help="Replace existing --record / --log files.")
@click.option("--json", "as_json", is_flag=True,
              help='Print the summary as one JSON object: {"frames", "wall_fps" (frames / elapsed time), '
                   '"processing_fps" (frames / time spent on them; failed reads excluded), "dropped", '
                   '"stages_ms": {"capture", "preprocess", "invoke", "postprocess", "render", "total": {"p50", "p90", "p99", "mean", "max"}}, '
                   '"frame_age_ms", "latency_window_frames", "percentile_frames" (p50/p90/p99 cover the most '
                   'recent percentile_frames frames; mean and max all of them), "backend", "threads", "model", ..., '
                   '"service": {"events", ...}}.')
@service_options
def camera(model, source, top_k, threshold, show, record, log_path, frames, duration, overwrite, as_json,
           print_systemd_unit, **opts):
    """Live classifier: classify frames from --source with the .tflite MODEL, timing every stage.

    \b
    Each frame gets the same preprocessing and interpreter as `classify` (built
    once). Per frame, in ms: capture, preprocess, invoke, postprocess, render,
    and the frame age (capture to result). Ends on --frames, --duration, the end
    of a file, 'q' in the window, Ctrl-C, SIGTERM or SIGHUP (systemctl stop,
    kill), always with a summary, the recording finalized under its name and
    the log complete; a stop is a normal end (exit code 0). An output that
    cannot be written (a full disk) ends the run with the summary, one Error
    line naming the file, exit code 1, and nothing under its name. A source that
    stops giving frames ends the run with a message and exit code 1; so does a
    slideshow with images that cannot be read (the others are still classified).
    """
    from tqdm import tqdm

    from edgecnn.errors import WriteError
    from edgecnn.sources import open_source
    from edgecnn.config import LoopOptions
    from edgecnn.loop import FrameLog, Recorder, Renderer, run_loop, window_problem
    from edgecnn.report import camera_summary_text
    from edgecnn.runtime import Classifier

    service_opts = make_service_options(threshold, opts)
    if print_systemd_unit:
        from edgecnn.systemd import unit_file

        if not os.path.isfile(model):
            raise click.BadParameter(f"{model}: no such file", param_hint="MODEL")
        click.echo(unit_file(sys.argv[1:], sys.executable, os.getcwd(), model), nl=False)
        return
    if record is not None and log_path is not None and os.path.abspath(record) == os.path.abspath(log_path):
        raise click.UsageError(f"--record and --log both name {record}: give them different files")
    _check_output(record, overwrite, "--record")
    _check_output(log_path, overwrite, "--log")
    if record is not None and not record.lower().endswith(tuple(Recorder.CODECS)):
        raise click.BadParameter(f"{record}: expected a name ending in {', '.join(Recorder.CODECS)}",
                                 param_hint="--record")
    problem = window_problem() if show is not False else "--headless"
    window = problem is None  # --show, or by default, when a display answers and OpenCV can draw on it
    if show and not window:
        click.echo(f"Warning: --show but {problem}: running headless", err=True)
    runtime_opts = make_options(**opts)
    clf = Classifier(model, runtime_opts)
    warn_runtime_notes(clf)
    _check_only(service_opts, clf)
    src = open_source(source)
    log = renderer = svc = None
    try:
        log = FrameLog(log_path) if log_path else None
        svc = _start_service(service_opts, clf, src, log, runtime_opts)
        renderer = Renderer(window, Recorder(record, src.fps) if record else None, svc.roi)
        total = frames or getattr(src, "frame_count", None) or None
        if frames and getattr(src, "frame_count", 0):
            total = min(frames, src.frame_count)
        with tqdm(total=total, unit="frame", desc="camera", leave=False, disable=None) as bar:
            result = run_loop(svc.source, svc.classifier, LoopOptions(top_k, threshold, frames, duration), renderer,
                              log, on_frame=lambda _: bar.update(1), sinks=svc.sinks)
        svc.finish(result)
    except WriteError as e:  # after the loop (the loop itself ends with "write failed" and its summary)
        raise click.ClickException(str(e)) from None
    except OSError as e:  # --log / --record cannot be created (permissions, codec)
        raise click.ClickException(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)) from None
    finally:
        close_errors = _close_all((svc, src, renderer, log))  # the service first: a pending --exec event still runs
    summary = svc.summary(result)
    if as_json:
        _echo_json(summary)
    else:
        click.echo(camera_summary_text(summary))
    skipped = getattr(src, "errors", [])
    for err in skipped:
        click.echo(f"Warning: skipped {err}", err=True)
    failures = list(dict.fromkeys(([result.message] if result.failed else []) + close_errors))
    for message in failures:  # a source that failed, an output that could not be written: one line each
        click.echo(f"Error: {message}", err=True)
    if failures:
        sys.exit(1)
    if skipped:  # as in classify: an unreadable image is bad input, even when the others were classified
        click.echo(f"Error: {len(skipped)} image(s) of {source} could not be read (listed above)", err=True)
        sys.exit(1)


def _close_all(closers) -> list[str]:
    """Close each of ``closers`` (None skipped), every one even when another fails; return the messages of the
    outputs that could not be finished (:class:`edgecnn.errors.WriteError`: disk full, ...)."""
    from edgecnn.errors import WriteError

    errors = []
    for closer in closers:
        if closer is not None:
            try:
                closer.close()
            except WriteError as e:
                errors.append(str(e))
    return errors


@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--runs", type=click.IntRange(min=1), default=DEFAULT_BENCH_RUNS, show_default=True,
              help="Timed invokes per model and thread count (frames with --pipeline).")
@click.option("--warmup", type=click.IntRange(min=0), default=DEFAULT_BENCH_WARMUP, show_default=True,
              help="Untimed invokes after the first one (which is reported on its own) and before the timed runs.")
@runtime_options(threads_list=True)
@click.option("--input", "input_image", type=click.Path(dir_okay=False), default=None,
              help="Time on this image (decoded and preprocessed once). Default: random pixels (seed --seed) "
                   "through the model's preprocessing, so the input has the model's dtype.")
@click.option("--seed", type=int, default=DEFAULT_BENCH_SEED, show_default=True, help="Seed of the random input.")
@click.option("--pipeline", default=None, metavar="SRC",
              help="Time the full camera pipeline (capture, preprocess, invoke, postprocess; headless) on this "
                   "video or image folder instead of bare invokes.")
@click.option("--json", "fmt", flag_value="json", help="Print the rows as one JSON array.")
@click.option("--csv", "fmt", flag_value="csv", help="Print the rows as CSV (nested keys as latency_ms.p50, ...).")
@click.option("--histogram", type=click.Path(dir_okay=False), default=None,
              help="Also write a latency-histogram PNG of every row here (needs matplotlib).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --histogram file.")
def bench(models, runs, warmup, input_image, seed, pipeline, fmt, histogram, overwrite, threads, **opts):
    """Latency of one or more .tflite MODELS: first invoke, then p50/p90/p99, mean, std, min, max (ms) and
    throughput over --runs timed invokes after --warmup.

    \b
    Several models and/or --threads 1,2,4 give one table with each row's p50
    relative to the first row (float32 vs int8 is one command). Each row also
    records the model's size and dtypes, the backend and the machine (CPU,
    cores, OS, Python; on a Raspberry Pi the board, CPU governor, temperature
    and throttling). Percentiles: numpy linear interpolation. The kind column
    names the quantization (int8, uint8, int16x8, float16 weights,
    dynamic-range, int8 with float ops, float32). Warns when an integer
    model is not faster than a float32 one at the same thread count. A model
    that cannot be loaded or run is named in one Error line after the rows of
    the others, and the exit code is 1.
    """
    from edgecnn import bench as b
    from edgecnn.report import bench_csv, bench_json, bench_table, save_histogram

    _check_output(histogram, overwrite, "--histogram")
    make = lambda t: make_options(threads=t, **opts)  # noqa: E731
    make(None)  # check --mean/--std before any work
    failures: list[tuple[str, str]] = []
    results = b.run(list(models), list(threads or [None]), make, runs, warmup, input_image, pipeline, seed,
                    failures=failures)
    rows = [r for r, _ in results]
    if fmt == "json":
        click.echo(bench_json(rows))
    elif fmt == "csv" and rows:
        click.echo(bench_csv(rows), nl=False)
    elif rows:
        click.echo(bench_table(rows))
        click.echo("machine: " + b.describe_environment(rows[0]["environment"]))
    for w in b.int8_not_faster(rows):
        click.echo(f"Warning: {w}", err=True)
    for r in rows:
        if r["kernels"] == "reference":
            click.echo(f"Warning: {r['model']}: timed on {r['backend']}'s reference kernels, not the optimized ones, "
                       f"which crash on this model here (edgecnn classify says why)", err=True)
    for r in rows:
        if r["runs"] < runs:
            click.echo(f"Warning: {r['model']}: {pipeline} ended after {r['runs']} frames, fewer than --runs {runs}; "
                       f"statistics are over {r['runs']}", err=True)
    if histogram and results:
        save_histogram([(f"{r['model']}, {r['threads']} thread(s)", d) for r, d in results], histogram,
                       "Pipeline time per frame" if pipeline else "Invoke latency")
        click.echo(f"histogram: {histogram}", err=True)
    for _, message in failures:  # each bad model named in one line, after the good rows
        click.echo(f"Error: {message}", err=True)
    if failures:
        sys.exit(1)


def _float_model(path: str) -> bytes:
    """The bytes of a float .tflite, or a .keras/.h5 converted to one (needs TensorFlow)."""
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() in (".keras", ".h5"):
        if not p.is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="--compare")
        return _train_side("convert").float_tflite(p)
    try:
        return p.read_bytes()
    except OSError as e:
        raise click.BadParameter(f"{path}: cannot read ({e.strerror or e}); expected a float .tflite or .keras",
                                 param_hint="--compare") from None


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), default=None,
              help="The HTML page to write (one self-contained file, images inline). Default: IMAGE's name + "
                   ".explain.html in the current folder, unless --png or --json is given.")
@click.option("--png", "png_dir", type=click.Path(file_okay=False), default=None,
              help="Also write every picture as a PNG file into this folder (made if missing).")
@click.option("--layers", default=None, metavar="SEL[,SEL...]",
              help="Layers to draw feature maps of: op indices (as in the layer table) or op names, e.g. "
                   "'0,3' or 'conv_2d,max_pool_2d'. Default: every layer with a spatial output.")
@click.option("--max-channels", type=click.IntRange(min=1), default=_EXPLAIN.max_channels, show_default=True,
              help="Channels drawn per layer (the strongest by mean |activation|).")
@click.option("--patch", type=click.IntRange(min=1), default=None,
              help="Occlusion patch side in model-input pixels. Default: a sixth of the input's short side.")
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help="Occlusion patch step in pixels. Default: half the patch.")
@click.option("--fill", type=click.IntRange(0, 255), default=_EXPLAIN.fill, show_default=True,
              help="Occlusion patch pixel value (0..255, before the model's normalisation; 128 is mid grey).")
@click.option("--batch", type=click.IntRange(min=1), default=_EXPLAIN.batch, show_default=True,
              help="Occlusion images per invoke (when the model takes a batch other than 1).")
@click.option("--target", type=click.IntRange(min=0), default=None,
              help="Class index the occlusion map follows. Default: the top-1 prediction.")
@click.option("--occlusion/--no-occlusion", default=True, show_default=True, help="Compute the occlusion map.")
@click.option("--compare", "float_path", type=click.Path(dir_okay=False), default=None, metavar="FLOAT",
              help="The float model of the same network (.tflite, or .keras with edgecnn[train]): per-layer error "
                   "of the int8 activations against the float ones, worst first.")
@runtime_options
@click.option("--overwrite", is_flag=True, help="Replace an existing page or PNG files.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the numbers (layer table, feature-map summaries, occlusion map) as one JSON object.")
def explain(model, image, out, png_dir, layers, max_channels, patch, stride, fill, batch, target, occlusion,
            float_path, overwrite, as_json, **opts):
    """What the .tflite MODEL sees in IMAGE, on the device (no TensorFlow).

    \b
    One HTML page with: the layer table (each operator, output shape and
    quantization, parameters, MACs and share of compute); feature maps of
    every layer with a spatial output (dequantized, each channel scaled on
    its own, strongest first); the first convolution's filters; and where it
    looks: an occlusion-sensitivity map (a grey patch slides over the image;
    the drop of the predicted class's score, or of its log-odds from the
    logits when the model ends in a softmax, is drawn over it). With --compare,
    the float-vs-int8 error of every layer (RMSE relative to the float
    tensor's range, cosine similarity), worst first.
    """
    from pathlib import Path

    from tqdm import tqdm

    from edgecnn.errors import EdgecnnError
    from edgecnn.explain import explain_image
    from edgecnn.explain_html import summary_text, write_outputs
    from edgecnn.preprocess import read_image
    from edgecnn.runtime import Classifier

    if out is None and png_dir is None and not as_json:
        out = f"{Path(image).stem}.explain.html"
    _check_output(out, overwrite, "--output")
    if png_dir is not None and not Path(png_dir).absolute().parent.is_dir():
        raise click.BadParameter(f"{png_dir}: folder {Path(png_dir).absolute().parent} does not exist",
                                 param_hint="--png")
    sel = tuple(s for s in layers.split(",") if s.strip()) if layers else None
    xopts = ExplainOptions(layers=sel, max_channels=max_channels, occlusion=occlusion, patch=patch, stride=stride,
                           batch=batch, fill=fill, target=target)
    clf = Classifier(model, make_options(**opts))
    warn_runtime_notes(clf)
    pixels = read_image(image)
    float_model = _float_model(float_path) if float_path else None
    bar = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, unit="image", desc="occlusion", leave=False, disable=None))
        bar[0].update(done - bar[0].n)

    try:
        expl = explain_image(clf, Path(model).read_bytes(), pixels, str(image), xopts, float_model, progress)
    except ValueError as e:
        if isinstance(e, EdgecnnError):
            raise
        raise click.BadParameter(str(e), param_hint="--layers/--target/--compare") from None
    finally:
        for b in bar:
            b.close()
    try:
        written = write_outputs(expl, out, png_dir, overwrite)
    except OSError as e:
        if isinstance(e, EdgecnnError):
            raise
        raise click.ClickException(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)) from None
    for note in expl.notes:
        click.echo(f"Note: {note}", err=True)
    if as_json:
        _echo_json(expl.to_dict())
    else:
        click.echo(summary_text(expl))
    pngs = [p for p in written if png_dir is not None and p.parent == Path(png_dir)]
    if pngs:
        click.echo(f"wrote {len(pngs)} PNG files to {png_dir}", err=True)
    if out is not None:
        click.echo(f"wrote {out}", err=True)


# ------------------------------------------------------------------------------ workstation: train / quantize / evaluate

_DATA_HELP = ("DATA is an image folder (ROOT/<class>/<images>, class order = sorted folder names; a folder with "
              "train/ and test/ sub-folders, each ROOT/<split>/<class>/<images>, uses test/ as the test split and "
              "splits validation from train/), 'fashion-mnist' "
              "(the IDX files in /usr/share/datasets/fashion-mnist, Debian package dataset-fashion-mnist), "
              "'fashion-mnist:PATH' (the same four IDX files elsewhere) or 'idx:PATH' (any MNIST-style IDX folder; "
              "class names from PATH/labels.txt, else 0..K-1).")


def _train_side(what: str):
    """Import the workstation module ``edgecnn.train.<what>`` after TensorFlow (imported by
    :func:`edgecnn.train.tfenv.import_tf`: environment defaults applied, native log lines held back), turning a
    missing TensorFlow into a one-line hint."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise click.ClickException(f"this command needs TensorFlow: pip install 'edgecnn[train]'")
    from edgecnn.train.tfenv import import_tf

    import_tf()
    return importlib.import_module(f"edgecnn.train.{what}")


@main.command(epilog=_DATA_HELP)
@click.argument("data")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False),
              help="Output folder for model.keras, labels.txt, preprocessing.json, train_report.json, "
                   "training_curve.png and confusion.png. Must be new or empty unless --force.")
@click.option("--arch", type=click.Choice(ARCHITECTURES), default=_TRAIN.arch, show_default=True,
              help="resnet8: the MLPerf Tiny ResNet-8 (78k params at width 1); mobilenet: depthwise-separable "
                   "MobileNet-style; cnn: plain VGG-style; mobilenetv2: Keras Applications MobileNetV2 (with "
                   "--pretrained imagenet: transfer learning, the best choice for a few hundred photos per class).")
@click.option("--width", type=click.FloatRange(min=0.05), default=_TRAIN.width, show_default=True,
              help="Width multiplier: scales every filter count (parameters grow about with its square). "
                   "mobilenetv2 takes --alpha instead.")
@click.option("--alpha", type=click.Choice([str(a) for a in MOBILENETV2_ALPHAS]), default=None,
              help=f"MobileNetV2 width multiplier (ImageNet weights exist for these). Default: {DEFAULT_ALPHA}.")
@click.option("--pretrained", type=click.Choice(PRETRAINED), default=None,
              help="Start from ImageNet weights (mobilenetv2): train the new head on the frozen backbone "
                   "(--head-epochs), then fine-tune the upper blocks (--fine-tune-from) at --fine-tune-lr, "
                   "BatchNorm frozen. Weights come from --weights, else Keras' cache ($KERAS_HOME/models, "
                   "default ~/.keras/models), else Keras downloads them.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None,
              help="Local copy of the ImageNet weights, Keras' no-top .h5 file for the chosen alpha (e.g. "
                   "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5; any input size). "
                   "Implies --pretrained imagenet.")
@click.option("--head-epochs", type=click.IntRange(min=0), default=_TRAIN.head_epochs, show_default=True,
              help="With --pretrained: epochs training only the new classifier head, before fine-tuning.")
@click.option("--fine-tune-from", type=click.IntRange(0, 17), default=_TRAIN.fine_tune_from, show_default=True,
              help="With --pretrained: first MobileNetV2 block trained when fine-tuning (0 = all, 17 = only the "
                   "last 1x1 convolution); earlier blocks stay frozen.")
@click.option("--fine-tune-lr", type=click.FloatRange(min=0.0, min_open=True), default=_TRAIN.fine_tune_lr,
              show_default=True, help="With --pretrained: peak learning rate of the fine-tuning phase.")
@click.option("--augment", type=click.Choice(AUGMENTATIONS), default=None,
              help="Training augmentation. shift: flip, shift, brightness (--flip/--shift/--brightness); photo: "
                   "random resized crop, flip, small rotation, colour jitter, pixel noise (Keras preprocessing "
                   "layers). Default: photo with --pretrained, else shift. Never applied at inference.")
@click.option("--label-smoothing", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
              help=f"Label smoothing of the loss: the target gives 1-eps to the class and eps/K to every class, "
                   f"which keeps a network fine-tuned on a few hundred photos from over-confidence. Default: "
                   f"{DEFAULT_LABEL_SMOOTHING:g} with --pretrained, else 0.")
@click.option("--img-size", type=click.IntRange(MIN_IMG_SIZE, MAX_IMG_SIZE), default=None,
              help=f"Square model input size in pixels. Default: the data's own size for IDX data, "
                   f"{DEFAULT_FOLDER_SIZE} for image folders.")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None,
              help="Input channels (1 = grayscale, 3 = RGB). Default: 1 for IDX data, 3 for image folders.")
@click.option("--resize", type=click.Choice(RESIZE_RULES), default=None,
              help="How images (and later camera frames) are fitted to the input size. Default: center-crop "
                   "(on square IDX images the same as stretch).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help=f"Passes over the training split; with --pretrained, the fine-tuning epochs after --head-epochs. "
                   f"Default: {DEFAULT_EPOCHS}, or {DEFAULT_FINE_TUNE_EPOCHS} with --pretrained.")
@click.option("--batch-size", type=click.IntRange(min=1), default=_TRAIN.batch_size, show_default=True,
              help="Images per training step.")
@click.option("--lr", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help=f"Peak learning rate (Adam); cosine decay to 1% of it by the last step (of each phase). "
                   f"Default: {DEFAULT_SCRATCH_LR:g}, or {DEFAULT_HEAD_LR:g} for the head phase with --pretrained.")
@click.option("--seed", type=int, default=_TRAIN.seed, show_default=True,
              help="Seed of the split, weight init, shuffling and augmentation: same data + same seed = same "
                   "weights on the same machine.")
@click.option("--val-split", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              default=_TRAIN.val_split, show_default=True,
              help="Fraction of the training data held out for validation (stratified per class).")
@click.option("--flip/--no-flip", default=_TRAIN.flip, show_default=True,
              help="Random horizontal flips in training (turn off for digits, text, anything mirror-sensitive).")
@click.option("--shift", type=click.FloatRange(0.0, 0.5, max_open=True), default=_TRAIN.shift, show_default=True,
              help="Random shift in training, as a fraction of the image size.")
@click.option("--brightness", type=click.FloatRange(0.0, 1.0), default=_TRAIN.brightness, show_default=True,
              help="Random brightness change in training, as a fraction of the 0..255 range.")
@click.option("--strict", is_flag=True,
              help="Fail on any unreadable or non-image file instead of skipping and listing it.")
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty --outdir.")
@click.option("--json", "as_json", is_flag=True, help="Print train_report.json to stdout at the end (one line).")
def train(data, outdir, channels, alpha, as_json, force, **kw):
    """Train a compact CNN on DATA and write it to --outdir.

    \b
    Every image is decoded once before training; unusable files are listed and
    skipped (or rejected with --strict). Prints per-class counts, the parameter
    and MAC table, a progress bar per epoch; keeps the best-on-validation weights
    and reports per-class precision/recall on the validation split.

    \b
    Your own photos (a few hundred per class) with an ImageNet backbone:
      edgecnn train photos/ -o run --arch mobilenetv2 --alpha 0.35 --pretrained imagenet \\
          --weights mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5 --img-size 160
    """
    from edgecnn.config import TrainOptions

    try:
        opts = TrainOptions(channels=int(channels) if channels else None,
                            alpha=float(alpha) if alpha else None, **kw)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    tr = _train_side("fit")
    _train_side("outdir").check_outdir(outdir, force)
    if as_json:  # stdout carries only the JSON: our log lines and Keras's epoch lines go to stderr
        import contextlib

        with contextlib.redirect_stdout(sys.stderr):
            report = tr.train(data, outdir, opts, force=force, log=lambda s: click.echo(s, err=True))
        _echo_json({k: v for k, v in report.items() if k != "layers"})
    else:
        tr.train(data, outdir, opts, force=force, log=click.echo)


@main.command(epilog=_DATA_HELP)
@click.argument("model", type=click.Path(exists=True))
@click.option("--data", "data", required=True,
              help="The DATA the model was trained on: calibration images come from its training split, the "
                   "reported accuracy from its held-out split (official test split if it has one, else validation).")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="The .tflite to write (labels and preprocessing embedded). The report goes beside it as "
                   "<stem>_report.json and <stem>_confusion.png.")
@click.option("--calib-samples", type=click.IntRange(min=1), default=_QUANTIZE.calib_samples, show_default=True,
              help="Calibration images, drawn class-balanced from the training split.")
@click.option("--io", type=click.Choice(IO_TYPES), default=_QUANTIZE.io, show_default=True,
              help="Input/output tensor type. float32 keeps a float interface around the int8 graph.")
@click.option("--max-drop", type=click.FloatRange(min=0.0), default=None,
              help="Quality gate: exit 1 when int8 top-1 is more than this many percentage points below float "
                   "(the files are still written). Default: no gate.")
@click.option("--allow-float", is_flag=True,
              help="Accept float ops left by the converter (they are listed in the report) instead of failing.")
@click.option("--float-out", type=click.Path(dir_okay=False), default=None,
              help="Also write the float32 .tflite here (with the same metadata).")
@click.option("--seed", type=int, default=None,
              help="Seed of the train/validation split. Default: the one in train_report.json.")
@click.option("--val-split", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              help="Validation fraction. Default: the one in train_report.json.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--resize", type=click.Choice(RESIZE_RULES), default=None,
              help="Resize rule to record in the .tflite (how the device fits images and camera frames), also "
                   "used for calibration and the report. Default: the one recorded at training.")
@click.option("--keep-names", is_flag=True,
              help="Keep the converter's long tensor names (by default internal tensors are renamed t<index>, "
                   "which saves a few KB in a small model and changes nothing at run time).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def quantize(model, data, out, as_json, **kw):
    """Full-integer int8 post-training quantization of MODEL (an OUTDIR of edgecnn train, or its model.keras).

    \b
    Verifies the result (interface dtypes, every activation integer; names any
    float op), embeds labels and preprocessing, and reports float vs int8 top-1,
    agreement, per-class accuracy, confusion matrices and file sizes.
    """
    if not out.endswith(".tflite"):
        raise click.BadParameter(f"{out} does not end in .tflite", param_hint="--output")
    from edgecnn.errors import QualityGateError

    q = _train_side("convert")
    summary = _train_side("report").summary
    opts = QuantizeOptions(**kw)
    log = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    try:
        report = q.quantize(model, data, out, opts, log=log)
    except QualityGateError as e:
        _echo_json(e.report) if as_json else click.echo(summary(e.report))
        raise click.ClickException(str(e)) from None
    if as_json:
        _echo_json(report)
    else:
        click.echo(summary(report))


@main.command(epilog=_DATA_HELP)
@click.argument("model", type=click.Path(exists=True))
@click.argument("data")
@click.option("--split", type=click.Choice(["test", "val", "train", "all"]), default=None,
              help="Which split to measure. Default: test where DATA has an official test split, else val "
                   "(recreated as in training). 'all' measures every image of DATA, e.g. a folder kept apart "
                   "for testing.")
@click.option("-k", "--top-k", type=click.IntRange(min=1), default=DEFAULT_TOP_K, show_default=True,
              help="k of the top-k accuracy.")
@click.option("--seed", type=int, default=None,
              help="Seed of the train/validation split. Default: the one recorded at training (train_report.json, "
                   f"or the .tflite's edgecnn metadata), else {DEFAULT_SEED}.")
@click.option("--val-split", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              help="Validation fraction, as above (train default 0.1).")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object: {"accuracy": float, "n": int, "top_k", "per_class", "confusion", ...}.')
def evaluate(model, data, split, top_k, seed, val_split, as_json):
    """Accuracy of MODEL (.tflite, .keras or an OUTDIR of edgecnn train) on a split of DATA: top-1, top-k,
    per-class accuracy and the confusion matrix (rows true, columns predicted)."""
    m = _train_side("evaluate").evaluate(model, data, split, top_k, seed, val_split, progress=not as_json)
    if m["top_k"]["k"] < top_k:
        click.echo(f"Note: -k {top_k} is more than the model's {m['top_k']['k']} classes: reporting "
                   f"top-{m['top_k']['k']}", err=True)
    if as_json:
        _echo_json(m)
        return
    click.echo(f"{m['model']} on {m['data']} ({m['split']} split, {m['n']} images): top-1 "
               f"{100 * m['accuracy']:.2f}%, top-{m['top_k']['k']} {100 * m['top_k']['accuracy']:.2f}%")
    w = max(len(k) for k in m["per_class"])
    for k, v in m["per_class"].items():
        click.echo(f"  {k:<{w}}  {'-' if v is None else f'{100 * v:.1f}%'}")
    click.echo("confusion (rows true, columns predicted):")
    for row in m["confusion"]:
        click.echo("  " + " ".join(f"{c:>5}" for c in row))


if __name__ == "__main__":  # pragma: no cover
    main()
