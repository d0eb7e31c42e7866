"""Option records and defaults: the one place edgecnn's defaults live, each with its unit.

Nothing here imports more than the standard library.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace

#: Resize rules understood by :func:`edgecnn.preprocess.resize`.
#: ``center-crop``: crop the largest centred region with the model's aspect ratio, then resize (default for photos
#: and camera frames); ``stretch``: resize to the model size ignoring aspect ratio; ``letterbox``: resize to fit
#: inside the model size keeping aspect ratio and pad the rest with :data:`LETTERBOX_FILL`.
RESIZE_RULES = ("center-crop", "stretch", "letterbox")
DEFAULT_RESIZE = "center-crop"
#: Pixel value (0..255, every channel) of letterbox padding.
LETTERBOX_FILL = 0

#: Interpreter packages in the order they are tried, with the pip package that provides each.
BACKENDS = ("ai_edge_litert", "tflite_runtime", "tensorflow")
BACKEND_PIP = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}

#: Name of the edgecnn record inside a .tflite file's ``metadata`` table (a JSON buffer).
METADATA_NAME = "edgecnn"

DEFAULT_TOP_K = 3
#: Scores below this (0..1) are not reported.
DEFAULT_THRESHOLD = 0.0
#: A float output is taken as a probability vector when it lies in [0, 1] and sums to 1 within this tolerance.
PROBABILITY_SUM_TOLERANCE = 0.02

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm", ".pbm")


def check_normalisation(mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> None:
    """The rule for pixel-unit normalisation values (``--mean``/``--std``, a model's record): given together, finite,
    and every std > 0 (the model input is ``(pixel - mean) / std``).

    Raises:
        ValueError: naming the values and what was expected.
    """
    if (mean is None) != (std is None):
        raise ValueError("mean and std must be given together")
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and not all(math.isfinite(v) for v in values):
            raise ValueError(f"{name} is {values}, expected finite numbers")
    if std is not None and any(s <= 0 for s in std):
        raise ValueError(f"std is {std}, expected values > 0")


def default_threads() -> int:
    """Number of interpreter threads when ``--threads`` is not given: the CPU cores available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Preprocessing:
    """How a decoded image becomes the model's input tensor; stored inside edgecnn's .tflite files.

    Attributes:
        height, width: model input size in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        resize: one of :data:`RESIZE_RULES`.
        mean, std: per-channel (or single) values in pixel units (0..255) such that the model's real-valued input is
            ``(pixel - mean) / std``; ``None`` when unknown. edgecnn's own models take raw pixels (mean 0, std 1)
            because their normalisation (``Rescaling``) lives inside the model.
    """

    height: int
    width: int
    channels: int = 3
    resize: str = DEFAULT_RESIZE
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels is {self.channels}, expected 1 or 3")
        if self.resize not in RESIZE_RULES:
            raise ValueError(f"resize rule is {self.resize!r}, expected one of {', '.join(RESIZE_RULES)}")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"input size is {self.height}x{self.width}, expected positive")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and len(values) not in (1, self.channels):
                raise ValueError(f"{name} has {len(values)} values, the input has {self.channels} channel"
                                 f"{'s' if self.channels > 1 else ''} (expected 1 or {self.channels} values)")
        check_normalisation(self.mean, self.std)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        for k in ("mean", "std"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        Raises:
            ValueError: ``d`` is not a dict, or holds values of the wrong type or range.
        """
        if not isinstance(d, dict):
            raise ValueError(f"preprocessing record is {type(d).__name__}, expected a JSON object")
        kw = {k: d[k] for k in ("height", "width", "channels", "resize", "mean", "std") if k in d}
        try:
            for k in ("height", "width", "channels"):
                if k in kw:
                    kw[k] = int(kw[k])
            for k in ("mean", "std"):
                if kw.get(k) is not None:
                    v = kw[k]
                    kw[k] = tuple(float(x) for x in (v if isinstance(v, (list, tuple)) else [v]))
        except (TypeError, ValueError) as e:
            raise ValueError(f"preprocessing record has a bad value ({e})") from None
        return cls(**kw)


@dataclass(frozen=True)
class RuntimeOptions:
    """Options for building a :class:`edgecnn.runtime.Classifier` (shared by classify, camera and bench).

    Attributes:
        backend: interpreter package name (one of :data:`BACKENDS`) or None for the first that imports.
        threads: interpreter threads; None means :func:`default_threads`.
        labels_path: label file overriding labels embedded in the model.
        mean, std: override the model's normalisation, pixel units (see :class:`Preprocessing`).
        resize: override the resize rule.
        softmax: apply a softmax to the (dequantized) output before ranking.
    """

    backend: str | None = None
    threads: int | None = None
    labels_path: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: str | None = None
    softmax: bool = False

    def __post_init__(self) -> None:
        check_normalisation(self.mean, self.std)


# ----------------------------------------------------------------------------------- workstation (edgecnn[train])

#: Architectures of :func:`edgecnn.train.model.build`.
ARCHITECTURES = ("resnet8", "mobilenet", "cnn", "mobilenetv2")
DEFAULT_ARCH = "resnet8"
#: Width multipliers (``--alpha``) of ``mobilenetv2`` with published ImageNet weights (Keras Applications), and the
#: default: alpha 0.35 has 410k backbone parameters, small enough for an int8 file well under 1 MB.
MOBILENETV2_ALPHAS = (0.35, 0.5, 0.75, 1.0)
DEFAULT_ALPHA = 0.35
#: Pretrained weights understood by ``--pretrained``.
PRETRAINED = ("imagenet",)
#: Augmentation recipes (``--augment``): ``shift`` (flip, translation with zero padding, brightness; stateless
#: tf.image ops, suits small grayscale images) and ``photo`` (Keras preprocessing layers: random resized crop,
#: flip, small rotation, colour jitter, pixel noise; for colour photos).
AUGMENTATIONS = ("shift", "photo")
#: Strength of the ``photo`` augmentation: ``zoom`` is the largest zoom-in, as a share of each side (random
#: resized crop: each side independently, so the aspect ratio changes too), ``translate`` a fraction of the size,
#: ``rotation`` a fraction of a full turn (0.03 = +-11 degrees), ``brightness``/``contrast``/``saturation``
#: fractions of change. Values follow the usual ImageNet fine-tuning recipes, kept mild for small images.
#: ``noise`` is the standard deviation of Gaussian noise added to every pixel, a fraction of 0..255 (0.02 = about
#: 5 levels, camera sensor noise): besides noisy camera frames it teaches the fine-tuned blocks to tolerate small
#: errors in the frozen blocks' features, which is what int8 rounding adds (on flowers5 at 160 px the int8 model
#: agreed with the float one on 98.0% of the test photos with these defaults, 96.7% without noise;
#: docs/performance.md, "Transfer learning").
PHOTO_AUGMENT = {"zoom": 0.3, "translate": 0.1, "rotation": 0.03, "brightness": 0.15, "contrast": 0.15,
                 "saturation": 0.2, "noise": 0.02}
#: Transfer learning (``--pretrained``): epochs training only the new classifier head on the frozen backbone,
#: then epochs fine-tuning the backbone from block ``DEFAULT_FINE_TUNE_FROM`` (MobileNetV2 has blocks 0..16, then
#: the last 1x1 convolution) at a lower learning rate, BatchNorm kept in inference mode throughout.
DEFAULT_HEAD_EPOCHS = 5
DEFAULT_FINE_TUNE_EPOCHS = 20
DEFAULT_FINE_TUNE_FROM = 8
DEFAULT_HEAD_LR = 1e-3
DEFAULT_FINE_TUNE_LR = 2e-4
#: Label smoothing of the cross-entropy loss when fine-tuning a pretrained model (Szegedy et al. 2016,
#: "Rethinking the Inception Architecture for Computer Vision", section 7: the target puts 1 - eps on the class and
#: eps / K on every class). On a few hundred photos per class it keeps the fine-tuned network from becoming
#: over-confident on its training photos: on flowers5 at 160 px, eight runs with 0.1 gave int8 top-1 88.0-90.3%
#: (mean 88.8%) against 86.8-88.5% (mean 87.9%) in three without (docs/performance.md, "Transfer learning").
#: Models trained from random weights default to 0.
DEFAULT_LABEL_SMOOTHING = 0.1
#: Epochs and peak Adam learning rate of a model trained from random weights.
DEFAULT_EPOCHS = 30
DEFAULT_SCRATCH_LR = 2e-3
#: A class with fewer training images than this gets a warning (its accuracy is unreliable and it may be missed).
SMALL_CLASS_IMAGES = 20
#: Default square input size (pixels) of models trained on an image folder (IDX data keeps its own size).
DEFAULT_FOLDER_SIZE = 96
#: Default fraction of the training data held out for validation, and default seed of split/init/augmentation.
DEFAULT_VAL_SPLIT = 0.1
DEFAULT_SEED = 0
#: Default number of calibration images (class-balanced, from the training split) for int8 quantization.
DEFAULT_CALIB_SAMPLES = 500
#: Largest square input size (pixels) ``edgecnn train`` accepts: far above what a compact CNN on a small device
#: runs, and below sizes whose training batches exhaust a workstation's memory.
MAX_IMG_SIZE = 1024
#: Smallest input size (pixels) the architectures take (two stride-2 stages still leave a feature map).
MIN_IMG_SIZE = 8
#: Interface dtypes of a quantized model (``edgecnn quantize --io``); float32 keeps a float interface around the
#: int8 graph.
IO_TYPES = ("int8", "uint8", "float32")


@dataclass(frozen=True)
class TrainOptions:
    """Options of ``edgecnn train`` (:func:`edgecnn.train.fit.train`).

    Attributes:
        arch: one of :data:`ARCHITECTURES`.
        width: width multiplier (scales every filter count).
        img_size: square input size in pixels; None = the data's own size (IDX) or :data:`DEFAULT_FOLDER_SIZE`.
        channels: 1 or 3; None = 1 for IDX sources, 3 for image folders.
        resize: one of :data:`RESIZE_RULES`; None = ``stretch`` for IDX, ``center-crop`` for image folders.
        epochs: passes over the training split.
        batch_size: images per step. 32 (Keras' default) gives small folders enough steps per epoch; large
            datasets train faster per epoch with 128.
        lr: peak learning rate of Adam; cosine decay to ``lr * lr_floor`` over all steps.
        lr_floor: final learning rate as a fraction of ``lr``.
        seed: seeds the split, weight init, shuffling and augmentation.
        val_split: fraction of the training data held out for validation (stratified), in (0, 1).
        flip: random horizontal flip (turn off where mirroring changes the class: digits, text).
        shift: random translation, fraction of the image size (zero padding, then a random crop).
        brightness: random brightness change, fraction of the 0..255 range (added to every pixel, clipped).
        strict: reject the dataset if any file is unusable instead of skipping it.
        alpha: MobileNetV2 width multiplier, one of :data:`MOBILENETV2_ALPHAS`; None = :data:`DEFAULT_ALPHA` for
            ``mobilenetv2`` (other architectures take ``width``).
        pretrained: ``imagenet`` (``mobilenetv2`` only) or None for random initial weights.
        weights: local .h5 file of the ImageNet backbone (Keras Applications' no-top file); implies
            ``pretrained="imagenet"``.
        head_epochs: epochs training the new head on the frozen pretrained backbone (pretrained only).
        fine_tune_from: first MobileNetV2 block (0..17; 17 = only the last 1x1 convolution) trained in the
            fine-tuning phase; the blocks before it stay frozen.
        fine_tune_lr: peak learning rate of the fine-tuning phase (cosine decay to ``lr_floor`` of it).
        augment: one of :data:`AUGMENTATIONS`; None = ``photo`` for a pretrained model, else ``shift``.
        label_smoothing: label smoothing eps of the loss, in [0, 1); None = :data:`DEFAULT_LABEL_SMOOTHING` for
            a pretrained model, else 0.

    With ``pretrained`` set, ``epochs`` counts the fine-tuning epochs (after ``head_epochs``) and ``lr`` is the
    head phase's learning rate; None picks the defaults of :meth:`resolved`.
    """

    arch: str = DEFAULT_ARCH
    width: float = 1.0
    img_size: int | None = None
    channels: int | None = None
    resize: str | None = None
    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None
    lr_floor: float = 0.01
    seed: int = DEFAULT_SEED
    val_split: float = DEFAULT_VAL_SPLIT
    flip: bool = True
    shift: float = 0.1
    brightness: float = 0.1
    strict: bool = False
    alpha: float | None = None
    pretrained: str | None = None
    weights: str | None = None
    head_epochs: int = DEFAULT_HEAD_EPOCHS
    fine_tune_from: int = DEFAULT_FINE_TUNE_FROM
    fine_tune_lr: float = DEFAULT_FINE_TUNE_LR
    augment: str | None = None
    label_smoothing: float | None = None

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch is {self.arch!r}, expected one of {', '.join(ARCHITECTURES)}")
        if not self.width > 0:
            raise ValueError(f"width is {self.width}, expected > 0")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} is {getattr(self, name)}, expected >= 1")
        if self.img_size is not None and not MIN_IMG_SIZE <= self.img_size <= MAX_IMG_SIZE:
            raise ValueError(f"img_size is {self.img_size}, expected {MIN_IMG_SIZE} to {MAX_IMG_SIZE} pixels")
        self._check_transfer()
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels is {self.channels}, expected 1 or 3")
        if self.resize is not None and self.resize not in RESIZE_RULES:
            raise ValueError(f"resize rule is {self.resize!r}, expected one of {', '.join(RESIZE_RULES)}")
        if not 0.0 < self.val_split < 1.0:
            raise ValueError(f"val_split is {self.val_split}, expected a fraction in (0, 1)")
        if not 0.0 <= self.shift < 0.5:
            raise ValueError(f"shift is {self.shift}, expected a fraction in [0, 0.5)")
        if not 0.0 <= self.brightness <= 1.0:
            raise ValueError(f"brightness is {self.brightness}, expected a fraction in [0, 1]")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr is {self.lr}, expected a finite number > 0")
        if self.label_smoothing is not None and not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing is {self.label_smoothing}, expected a fraction in [0, 1)")
        if self.augment is not None and self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment is {self.augment!r}, expected one of {', '.join(AUGMENTATIONS)}")

    def _check_transfer(self) -> None:
        v2 = self.arch == "mobilenetv2"
        if self.alpha is not None and not v2:
            raise ValueError(f"alpha is for --arch mobilenetv2, not {self.arch} (use --width)")
        if self.alpha is not None and self.alpha not in MOBILENETV2_ALPHAS:
            raise ValueError(f"alpha is {self.alpha}, expected one of {', '.join(map(str, MOBILENETV2_ALPHAS))}")
        if v2 and self.width != 1.0:
            raise ValueError(f"width is {self.width}; mobilenetv2 takes --alpha instead")
        if self.pretrained is not None and self.pretrained not in PRETRAINED:
            raise ValueError(f"pretrained is {self.pretrained!r}, expected one of {', '.join(PRETRAINED)}")
        if (self.pretrained or self.weights) and not v2:
            raise ValueError(f"pretrained weights exist for --arch mobilenetv2, not {self.arch}")
        if self.head_epochs < 0:
            raise ValueError(f"head_epochs is {self.head_epochs}, expected >= 0")
        if not 0 <= self.fine_tune_from <= 17:
            raise ValueError(f"fine_tune_from is {self.fine_tune_from}, expected a MobileNetV2 block 0..17")
        if not (math.isfinite(self.fine_tune_lr) and self.fine_tune_lr > 0):
            raise ValueError(f"fine_tune_lr is {self.fine_tune_lr}, expected a finite number > 0")

    def resolved(self) -> "TrainOptions":
        """A copy with every None default filled in: ``alpha`` (mobilenetv2), ``pretrained`` (set by ``weights``),
        ``epochs`` (:data:`DEFAULT_FINE_TUNE_EPOCHS` when pretrained, else :data:`DEFAULT_EPOCHS`), ``lr``
        (:data:`DEFAULT_HEAD_LR` when pretrained, else 2e-3), ``augment`` and ``label_smoothing``."""
        pretrained = self.pretrained or ("imagenet" if self.weights else None)
        return replace(
            self, pretrained=pretrained,
            alpha=self.alpha if self.alpha is not None or self.arch != "mobilenetv2" else DEFAULT_ALPHA,
            epochs=self.epochs or (DEFAULT_FINE_TUNE_EPOCHS if pretrained else DEFAULT_EPOCHS),
            lr=self.lr or (DEFAULT_HEAD_LR if pretrained else DEFAULT_SCRATCH_LR),
            augment=self.augment or ("photo" if pretrained else "shift"),
            label_smoothing=(self.label_smoothing if self.label_smoothing is not None
                             else DEFAULT_LABEL_SMOOTHING if pretrained else 0.0))

    @property
    def transfer(self) -> bool:
        """True when training starts from pretrained weights (two phases: head, then fine-tuning)."""
        return bool(self.pretrained or self.weights)


@dataclass(frozen=True)
class QuantizeOptions:
    """Options of ``edgecnn quantize``.

    Attributes:
        calib_samples: calibration images, drawn class-balanced from the training split.
        io: interface dtype, one of :data:`IO_TYPES`.
        max_drop: largest allowed float-minus-int8 top-1 drop, in percentage points; None = no gate.
        allow_float: accept float ops left by the converter.
        float_out: also write the float32 .tflite here.
        seed, val_split: recreate the training split; None = the values in train_report.json.
        overwrite: replace existing output files.
        keep_names: keep the converter's long tensor names (see :func:`edgecnn.train.convert.shorten_tensor_names`).
        resize: resize rule recorded in the .tflite (and used for calibration and the report) instead of the
            training record's; None = the training record's. For data already at the model size (e.g. 28x28 IDX)
            the pixels are identical; the rule then only decides how the device fits camera frames.
    """

    calib_samples: int = DEFAULT_CALIB_SAMPLES
    io: str = "int8"
    max_drop: float | None = None
    allow_float: bool = False
    float_out: str | None = None
    seed: int | None = None
    val_split: float | None = None
    overwrite: bool = False
    keep_names: bool = False
    resize: str | None = None


# ----------------------------------------------------------------------------------- device: camera and bench

#: ``edgecnn bench``: timed runs per row, untimed warm-up runs before them (after the first invoke, which is
#: reported on its own), and the seed of the random input.
DEFAULT_BENCH_RUNS = 200
DEFAULT_BENCH_WARMUP = 20
DEFAULT_BENCH_SEED = 0
#: ``edgecnn camera``: consecutive failed reads after which a source counts as failed ("a few": a Pi CSI camera
#: through plain OpenCV fails every read at once, a flaky stream may drop one or two).
CAMERA_MAX_FAILURES = 5
#: Seconds a live source may go without a new frame before the read counts as failed.
CAMERA_READ_TIMEOUT_S = 2.0
#: ``edgecnn camera``: frames whose per-stage latencies are kept for the summary's p50/p90/p99 (the most recent ones;
#: counts, means and maxima cover the whole run). 100,000 frames is about 1 hour at 30 frames/s and takes
#: 8 bytes x 7 series x 100,000 = 5.6 MB, however long the service runs.
LATENCY_WINDOW_FRAMES = 100_000
#: Frame rate (frames/s) written into ``--record`` videos when the source does not report one.
DEFAULT_RECORD_FPS = 15.0
#: --record stops (one line, exit 1, nothing left under the name) when the file system has less room than this,
#: in bytes: OpenCV's VideoWriter only warns about frames it could not write (loop.Recorder).
RECORD_MIN_FREE_BYTES = 256 * 1024


# ----------------------------------------------------------------------------------- camera as a service
#: ``--smooth``: frames whose scores are averaged (1 = no smoothing). ``--hold``: consecutive frames a new smoothed
#: top-1 must hold before it is an event (1 = at once).
DEFAULT_SMOOTH_FRAMES = 1
DEFAULT_HOLD_FRAMES = 1
#: ``--exec``: seconds an event command may run before it is killed.
DEFAULT_EXEC_TIMEOUT_S = 10.0
#: Environment variables that hand an event to the ``--exec`` command.
EXEC_ENV_PREFIX = "EDGECNN_"
#: ``--serve``: address when only a port is given (loopback: serving the network is the user's explicit choice),
#: the most JPEG frames per second sent to stream clients, and their JPEG quality (0..100, OpenCV's scale).
DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_SERVE_FPS = 10.0
SERVE_JPEG_QUALITY = 80
#: ``/healthz`` answers 503 when no frame was processed for this many seconds, or three ``--max-fps`` periods if
#: longer (a camera that stalls; the loop itself gives up after :data:`CAMERA_MAX_FAILURES` reads of
#: :data:`CAMERA_READ_TIMEOUT_S`).
SERVE_STALE_S = 5.0
#: ``/stats.json`` percentiles are recomputed at most this often (seconds), shared by every client.
SERVE_STATS_MAX_AGE_S = 0.5
#: ``--mqtt``: broker port when the URL has none (the IANA-registered MQTT port), keep-alive (s), and the reconnect
#: back-off (s): the delay doubles from min to max after each failed attempt (paho-mqtt ``reconnect_delay_set``).
MQTT_DEFAULT_PORT = 1883
MQTT_KEEPALIVE_S = 30
MQTT_RECONNECT_MIN_S = 1
MQTT_RECONNECT_MAX_S = 30
#: Seconds the camera waits, once at start-up, for the first answer from the broker (connected, refused or
#: unreachable), so the first events of a run are not dropped while the connection is still being made.
MQTT_START_WAIT_S = 3.0
#: Environment variables with the broker credentials (used when the URL carries none; never printed).
MQTT_ENV_USERNAME = "EDGECNN_MQTT_USERNAME"
MQTT_ENV_PASSWORD = "EDGECNN_MQTT_PASSWORD"
#: Topic prefix of Home Assistant MQTT discovery (Home Assistant's default ``discovery_prefix``).
MQTT_DISCOVERY_PREFIX = "homeassistant"
#: ``--print-systemd-unit``: the dedicated service user, seconds between restarts, and the optional environment
#: file for secrets such as the MQTT password.
SYSTEMD_USER = "edgecnn"
SYSTEMD_RESTART_SEC = 5
SYSTEMD_ENVIRONMENT_FILE = "/etc/default/edgecnn"


@dataclass(frozen=True)
class EventOptions:
    """Smoothing and events of ``edgecnn camera`` (:mod:`edgecnn.events`).

    Attributes:
        smooth: frames whose score vectors are averaged (1 = none).
        hold: consecutive frames a new smoothed top-1 must hold before it becomes an event.
        threshold: minimum smoothed top-1 score (0..1) for an event.
        only: labels (or output indices as strings) that may produce events; None = every class.
    """

    smooth: int = DEFAULT_SMOOTH_FRAMES
    hold: int = DEFAULT_HOLD_FRAMES
    threshold: float = DEFAULT_THRESHOLD
    only: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.smooth < 1:
            raise ValueError(f"smooth is {self.smooth}, expected >= 1 frames")
        if self.hold < 1:
            raise ValueError(f"hold is {self.hold}, expected >= 1 frames")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is {self.threshold}, expected 0..1")


@dataclass(frozen=True)
class ServiceOptions:
    """What ``edgecnn camera`` does besides classifying (:mod:`edgecnn.service`); each part is optional.

    Attributes:
        rotate: clockwise rotation of every frame, degrees (0, 90, 180, 270).
        roi: (x, y, w, h) pixels of the rotated frame that are classified; None = the whole frame.
        events: smoothing and event rules.
        exec_command: command line run once per event (split like a shell would, never run by one); None = none.
        exec_timeout_s: seconds an event command may run before it is killed.
        serve: (host, port) of the web view; None = no web view. Port 0 picks a free port.
        serve_fps: most JPEG frames per second sent to stream clients.
        mqtt_url: ``mqtt://[user:pass@]host[:port]/topic``; None = no MQTT.
        mqtt_discovery: also publish Home Assistant MQTT discovery.
        max_fps: most frames read per second (files play at about this rate); None = as fast as they come.
    """

    rotate: int = 0
    roi: tuple[int, int, int, int] | None = None
    events: EventOptions = EventOptions()
    exec_command: str | None = None
    exec_timeout_s: float = DEFAULT_EXEC_TIMEOUT_S
    serve: tuple[str, int] | None = None
    serve_fps: float = DEFAULT_SERVE_FPS
    mqtt_url: str | None = field(default=None, repr=False)  # may hold credentials: never printed
    mqtt_discovery: bool = False
    max_fps: float | None = None

    def __post_init__(self) -> None:
        if self.rotate not in (0, 90, 180, 270):
            raise ValueError(f"rotate is {self.rotate}, expected 0, 90, 180 or 270 degrees")
        if not self.exec_timeout_s > 0:
            raise ValueError(f"exec timeout is {self.exec_timeout_s}, expected > 0 seconds")
        if not self.serve_fps > 0:
            raise ValueError(f"serve fps is {self.serve_fps}, expected > 0 frames/s")
        if self.max_fps is not None and not self.max_fps > 0:
            raise ValueError(f"max fps is {self.max_fps}, expected > 0 frames/s")
        if self.serve is not None and not 0 <= self.serve[1] <= 65535:
            raise ValueError(f"port is {self.serve[1]}, expected 0..65535")


# ----------------------------------------------------------------------------------- device: explain

@dataclass(frozen=True)
class ExplainOptions:
    """Options of ``edgecnn explain`` (see :mod:`edgecnn.explain`).

    Attributes:
        layers: operators to draw feature maps of: op indices or op names (e.g. ("0", "CONV_2D")); None: every
            operator with a spatial (N, H, W, C) output.
        max_channels: feature-map channels shown per layer (the strongest by mean |activation|); the page says
            how many of how many are shown.
        occlusion: compute the occlusion-sensitivity map.
        patch, stride: occlusion patch side and step in model-input pixels; None: a sixth of the short side and
            half of the patch (:func:`edgecnn.explain.default_patch`).
        batch: occlusion images per invoke, when the model takes a batch dimension other than 1.
        fill: occlusion patch pixel value (128: mid grey, before the model's normalisation).
        target: class index the occlusion map follows; None: the top-1 prediction.
        top_k: predictions listed on the page.
    """

    layers: tuple[str, ...] | None = None
    max_channels: int = 32
    occlusion: bool = True
    patch: int | None = None
    stride: int | None = None
    batch: int = 32
    fill: int = 128
    target: int | None = None
    top_k: int = 5


@dataclass(frozen=True)
class LoopOptions:
    """Options of the camera loop (:func:`edgecnn.loop.run_loop`).

    Attributes:
        top_k: classes reported per frame; threshold: minimum score (0..1) reported.
        max_frames: stop after this many processed frames (None: no limit).
        duration_s: stop after this many seconds (None: no limit).
        max_failures: consecutive failed reads after which the source counts as failed.
        latency_window: most recent frames whose latencies are kept for percentiles (frames; bounds memory).
    """

    top_k: int = DEFAULT_TOP_K
    threshold: float = DEFAULT_THRESHOLD
    max_frames: int | None = None
    duration_s: float | None = None
    max_failures: int = CAMERA_MAX_FAILURES
    latency_window: int = LATENCY_WINDOW_FRAMES

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k is {self.top_k}, expected >= 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames is {self.max_frames}, expected >= 1")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration_s is {self.duration_s}, expected > 0 seconds")
        if self.max_failures < 1:
            raise ValueError(f"max_failures is {self.max_failures}, expected >= 1")
        if self.latency_window < 1:
            raise ValueError(f"latency_window is {self.latency_window}, expected >= 1 frames")
