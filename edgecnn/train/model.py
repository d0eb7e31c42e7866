"""Compact, int8-friendly Keras architectures, and their parameter / MAC counts  [train extra].

Every builder takes explicit arguments and returns an uncompiled ``keras.Model`` that maps raw pixels
(1..N, h, w, c) float32 in 0..255 to class probabilities (N, classes) float32 (softmax). The only preprocessing
inside a model is a ``Rescaling(1/255)`` layer: augmentation belongs to training (:mod:`edgecnn.train.fit`).

The layers are chosen so that full-integer TFLite conversion keeps every op in int8: Conv2D / DepthwiseConv2D
followed by BatchNormalization (folded into the convolution by the converter) and ReLU / ReLU6 (fused), Add,
average pooling, Dense and Softmax. Layer names are short on purpose: the TFLite converter builds tensor names
from them, and those strings are stored in the .tflite file.

Nothing here trains; nothing here is imported by the device runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.config import ARCHITECTURES, DEFAULT_ARCH, MOBILENETV2_ALPHAS
from edgecnn.errors import ModelError
from edgecnn.train.tfenv import apply_tensorflow_env

#: L2 weight decay on convolution kernels, as in the MLPerf Tiny ResNet-8 reference.
DEFAULT_WEIGHT_DECAY = 1e-4
#: Momentum of the BatchNormalization moving statistics: 0.9 (PyTorch's default, written 0.1 there) instead of
#: Keras' 0.99, so that the statistics used at inference settle within ~50 steps. With 0.99 a small folder
#: (a few hundred images, a handful of steps per epoch) ends training with statistics still near their initial
#: values and a validation accuracy near chance.
DEFAULT_BN_MOMENTUM = 0.9


def _keras():
    apply_tensorflow_env()
    import keras  # deferred: TensorFlow/Keras only on the training side

    return keras


def _ch(n: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by the width multiplier, rounded to a multiple of ``divisor`` (at least ``divisor``).

    The rounding rule is MobileNet's ``_make_divisible`` (never below 90% of the scaled value).
    """
    v = max(divisor, int(n * width + divisor / 2) // divisor * divisor)
    if v < 0.9 * n * width:
        v += divisor
    return v


def _check(input_shape: tuple[int, int, int], num_classes: int, width: float) -> None:
    if len(input_shape) != 3 or input_shape[2] not in (1, 3) or min(input_shape[:2]) < 8:
        raise ValueError(f"input_shape is {input_shape}, expected (h, w, c) with h, w >= 8 and c in (1, 3)")
    if num_classes < 2:
        raise ValueError(f"num_classes is {num_classes}, expected >= 2")
    if not width > 0:
        raise ValueError(f"width multiplier is {width}, expected > 0")


def resnet8(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
            weight_decay: float = DEFAULT_WEIGHT_DECAY, bn_momentum: float = DEFAULT_BN_MOMENTUM):
    """ResNet-8 of the MLPerf Tiny image-classification benchmark, with a width multiplier.

    Source: mlcommons/tiny, ``benchmark/training/image_classification/keras_model.py`` (``resnet_v1_eembc``):
    a 3x3/16 stem, then three residual stacks of two 3x3 convolutions with 16, 32, 64 filters (strides 1, 2, 2;
    a 1x1 strided projection on the shortcut of stacks 2 and 3), global average pooling and a softmax Dense.
    He-normal init and L2(1e-4) on kernels as there. At width 1.0 on 32x32x3 it has 78k parameters and
    12.5M MACs; on 28x28x1, 78k parameters and 9.3M MACs; on 96x96x3 (the image-folder default), 79k
    parameters and 113M MACs.

    Args:
        input_shape: (h, w, c) in pixels, c = 1 or 3.
        num_classes: >= 2.
        width: multiplies every filter count (rounded to a multiple of 8).
        weight_decay: L2 factor on convolution and dense kernels.
        bn_momentum: BatchNormalization moving-average momentum (:data:`DEFAULT_BN_MOMENTUM`).
    Returns:
        keras.Model named ``resnet8``.
    """
    _check(input_shape, num_classes, width)
    keras = _keras()
    L = keras.layers
    reg = keras.regularizers.L2(weight_decay) if weight_decay else None

    def conv(x, f, k, s, name):
        return L.Conv2D(f, k, strides=s, padding="same", kernel_initializer="he_normal",
                        kernel_regularizer=reg, name=name)(x)

    inp = keras.Input(shape=input_shape, name="input")
    x = L.Rescaling(1.0 / 255.0, name="scale")(inp)
    x = conv(x, _ch(16, width), 3, 1, "c0")
    x = L.BatchNormalization(momentum=bn_momentum, name="n0")(x)
    x = L.ReLU(name="r0")(x)
    for i, (f, s) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        f = _ch(f, width)
        y = conv(x, f, 3, s, f"c{i}a")
        y = L.BatchNormalization(momentum=bn_momentum, name=f"n{i}a")(y)
        y = L.ReLU(name=f"r{i}a")(y)
        y = conv(y, f, 3, 1, f"c{i}b")
        y = L.BatchNormalization(momentum=bn_momentum, name=f"n{i}b")(y)
        if s != 1 or x.shape[-1] != f:
            x = conv(x, f, 1, s, f"p{i}")
        x = L.Add(name=f"a{i}")([x, y])
        x = L.ReLU(name=f"r{i}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(num_classes, activation="softmax", kernel_initializer="he_normal", kernel_regularizer=reg,
                  name="fc")(x)
    return keras.Model(inp, out, name="resnet8")


def mobilenet(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
              weight_decay: float = DEFAULT_WEIGHT_DECAY, dropout: float = 0.1,
              bn_momentum: float = DEFAULT_BN_MOMENTUM):
    """Depthwise-separable MobileNet-v1-style classifier sized for small inputs, with a width multiplier.

    Layout (after Howard et al. 2017, "MobileNets", Table 1, shortened): a 3x3 stem convolution (stride 2 when the
    input is at least 64 pixels on its short side), then depthwise-separable blocks (3x3 depthwise + BN + ReLU6,
    1x1 pointwise + BN + ReLU6) with 64, 128, 128, 256, 256 filters and strides 1, 2, 1, 2, 1, plus one more
    stride-2 256 block for inputs of 64 pixels or more, global average pooling, dropout and a softmax Dense.
    ReLU6 keeps activation ranges bounded, which suits int8.

    Args:
        input_shape: (h, w, c), c = 1 or 3.
        num_classes: >= 2.
        width: multiplies every filter count (rounded to a multiple of 8). 10 classes: width 0.5 has 38k
            parameters and 3.3M MACs on 28x28x1, 57k and 11M on 96x96x3; width 1.0 has 139k on 28x28x1.
        weight_decay: L2 factor on pointwise and dense kernels (none on depthwise kernels, as in MobileNet).
        dropout: rate before the classifier.
        bn_momentum: BatchNormalization moving-average momentum (:data:`DEFAULT_BN_MOMENTUM`).
    Returns:
        keras.Model named ``mobilenet``.
    """
    _check(input_shape, num_classes, width)
    keras = _keras()
    L = keras.layers
    reg = keras.regularizers.L2(weight_decay) if weight_decay else None
    big = min(input_shape[:2]) >= 64
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1)] + ([(256, 2)] if big else [])

    inp = keras.Input(shape=input_shape, name="input")
    x = L.Rescaling(1.0 / 255.0, name="scale")(inp)
    x = L.Conv2D(_ch(32, width), 3, strides=2 if big else 1, padding="same", use_bias=False,
                 kernel_regularizer=reg, name="c0")(x)
    x = L.BatchNormalization(momentum=bn_momentum, name="n0")(x)
    x = L.ReLU(6.0, name="r0")(x)
    for i, (f, s) in enumerate(blocks, start=1):
        x = L.DepthwiseConv2D(3, strides=s, padding="same", use_bias=False, name=f"d{i}")(x)
        x = L.BatchNormalization(momentum=bn_momentum, name=f"n{i}d")(x)
        x = L.ReLU(6.0, name=f"r{i}d")(x)
        x = L.Conv2D(_ch(f, width), 1, use_bias=False, kernel_regularizer=reg, name=f"c{i}")(x)
        x = L.BatchNormalization(momentum=bn_momentum, name=f"n{i}")(x)
        x = L.ReLU(6.0, name=f"r{i}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="drop")(x)
    out = L.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="fc")(x)
    return keras.Model(inp, out, name="mobilenet")


def cnn(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
        weight_decay: float = DEFAULT_WEIGHT_DECAY, dropout: float = 0.2, bn_momentum: float = DEFAULT_BN_MOMENTUM):
    """Plain VGG-style CNN: three stages of two 3x3 convolutions (32, 64, 96 filters) + BN + ReLU, 2x2 max pooling
    after the first two stages, global average pooling, dropout and a softmax Dense.

    10 classes on 28x28x1: width 1.0 has 206k parameters and 25M MACs, 0.75 has 116k, 0.5 has 52k and 6.3M MACs.

    Args:
        input_shape: (h, w, c), c = 1 or 3.
        num_classes: >= 2.
        width: multiplies every filter count (rounded to a multiple of 8).
        weight_decay: L2 factor on kernels.
        dropout: rate before the classifier.
        bn_momentum: BatchNormalization moving-average momentum (:data:`DEFAULT_BN_MOMENTUM`).
    Returns:
        keras.Model named ``cnn``.
    """
    _check(input_shape, num_classes, width)
    keras = _keras()
    L = keras.layers
    reg = keras.regularizers.L2(weight_decay) if weight_decay else None
    inp = keras.Input(shape=input_shape, name="input")
    x = L.Rescaling(1.0 / 255.0, name="scale")(inp)
    stride0 = 2 if min(input_shape[:2]) >= 64 else 1
    for i, f in enumerate((32, 64, 96), start=1):
        for j in "ab":
            s = stride0 if (i, j) == (1, "a") else 1
            x = L.Conv2D(_ch(f, width), 3, strides=s, padding="same", use_bias=False, kernel_regularizer=reg,
                         name=f"c{i}{j}")(x)
            x = L.BatchNormalization(momentum=bn_momentum, name=f"n{i}{j}")(x)
            x = L.ReLU(name=f"r{i}{j}")(x)
        if i < 3:
            x = L.MaxPooling2D(2, name=f"m{i}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="drop")(x)
    out = L.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="fc")(x)
    return keras.Model(inp, out, name="cnn")


# ------------------------------------------------------------------------------------ MobileNetV2 (pretrained)

#: MobileNetV2's input normalisation in pixel units: ``(pixel - 127.5) / 127.5`` maps 0..255 to [-1, 1]
#: (Keras Applications ``mobilenet_v2.preprocess_input``, mode "tf"; the TF-slim training code). It is recorded in
#: preprocessing.json / the .tflite metadata and applied outside the model, never inside as well.
MOBILENETV2_MEAN = 127.5
MOBILENETV2_STD = 127.5
#: Layers of the Keras Applications MobileNetV2 without its top, input layer included (the same at every alpha).
MOBILENETV2_LAYERS = 154
#: Names of the layers edgecnn puts on top of a backbone; every other layer belongs to the backbone.
HEAD_LAYERS = ("gap", "drop", "fc")
#: Input sizes (pixels, square) for which Keras Applications publishes separate ImageNet weight files.
KERAS_WEIGHT_SIZES = (96, 128, 160, 192, 224)


def keras_weights_name(alpha: float, size: int = 224) -> str:
    """File name of the no-top ImageNet weights in Keras' cache (``$KERAS_HOME/models``), as Keras Applications
    names them, e.g. ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5``."""
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{size}_no_top.h5"


def keras_cache_dir() -> Path:
    """``$KERAS_HOME/models`` (default ``~/.keras/models``), where Keras keeps downloaded weights."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def find_cached_weights(alpha: float, size: int):
    """The ImageNet weights already in Keras' cache: the file for ``size`` when Keras publishes one, else (or when
    only that is there) the 224-pixel file, which loads at any input size. Returns a Path or None."""
    names = ([keras_weights_name(alpha, size)] if size in KERAS_WEIGHT_SIZES else []) + [keras_weights_name(alpha)]
    for name in names:
        p = keras_cache_dir() / name
        if p.is_file():
            return p
    return None


def _project_filters(alpha: float) -> int:
    """Filters of MobileNetV2's last projection (``block_16_project``): 320 scaled by alpha, multiple of 8."""
    return _ch(320, alpha)


def check_weights_file(path, alpha: float) -> None:
    """Check that ``path`` holds Keras' no-top MobileNetV2 ImageNet weights for ``alpha`` before loading it.

    Reads the legacy Keras .h5 layout (root attribute ``layer_names``; per layer ``weight_names``).

    Raises:
        ModelError: missing or unreadable file, not that layout, a different layer count (e.g. a with-top or
            another network's file), or another alpha (told by ``block_16_project``'s filters).
    """
    import h5py  # deferred: comes with the train extra (Keras)

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such weights file, expected Keras' MobileNetV2 ImageNet no-top .h5 "
                         f"({keras_weights_name(alpha)})")
    try:
        with h5py.File(p, "r") as f:
            g = f["model_weights"] if "model_weights" in f else f
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("layer_names", [])]
            kernel = None
            if "block_16_project" in g:
                wn = [n.decode() if isinstance(n, bytes) else str(n)
                      for n in g["block_16_project"].attrs.get("weight_names", [])]
                kernel = tuple(g["block_16_project"][wn[0]].shape) if wn else None
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"{p}: cannot read as Keras .h5 weights ({str(e).splitlines()[0][:120]}); expected "
                         f"MobileNetV2 ImageNet no-top weights for alpha {alpha}") from None
    want = _project_filters(alpha)
    if len(names) != MOBILENETV2_LAYERS or kernel is None:
        raise ModelError(f"{p}: {len(names)} layers, expected the {MOBILENETV2_LAYERS} layers of MobileNetV2 "
                         f"without its top (alpha {alpha}, {keras_weights_name(alpha)})")
    if kernel[-1] != want:
        got = next((a for a in MOBILENETV2_ALPHAS if _project_filters(a) == kernel[-1]), None)
        raise ModelError(f"{p}: weights for alpha {got if got is not None else '?'} (block_16_project has "
                         f"{kernel[-1]} filters), expected alpha {alpha} ({want} filters)")


def mobilenetv2(input_shape: tuple[int, int, int], num_classes: int, alpha: float = 0.35, weights=None,
                dropout: float = 0.2):
    """MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks") from Keras
    Applications without its top, then global average pooling, dropout and a softmax Dense (``gap``, ``drop``,
    ``fc``), as one flat functional model (so :func:`layer_costs` sees every layer).

    The input is the *normalised* image, (N, h, w, 3) float32 in [-1, 1] (:data:`MOBILENETV2_MEAN`,
    :data:`MOBILENETV2_STD`): there is no rescaling layer inside, the normalisation is recorded in the
    preprocessing record instead. Alpha 0.35 at 96x96 with 5 classes: 417k parameters, 11M MACs; at 160x160,
    31M MACs (measured with :func:`layer_costs`).

    With ``weights`` (a .h5 path, checked by :func:`check_weights_file`, or ``"imagenet"`` to let Keras fetch
    and cache them) every BatchNormalization layer is frozen (``trainable = False``, which in Keras 3 also runs
    it in inference mode), so that fine-tuning on a few hundred images keeps the ImageNet statistics.

    Args:
        input_shape: (h, w, 3), h and w >= 32.
        num_classes: >= 2.
        alpha: width multiplier, one of :data:`edgecnn.config.MOBILENETV2_ALPHAS`.
        weights: None (random), a path, or "imagenet".
        dropout: rate before the classifier.
    Returns:
        keras.Model named ``mobilenetv2``.
    Raises:
        ValueError: bad shape, classes or alpha; ModelError: a weights file that does not fit.
    """
    _check(input_shape, num_classes, alpha)
    if input_shape[2] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"input_shape is {input_shape}, mobilenetv2 expects (h, w, 3) with h, w >= 32")
    if alpha not in MOBILENETV2_ALPHAS:
        raise ValueError(f"alpha is {alpha}, expected one of {', '.join(map(str, MOBILENETV2_ALPHAS))}")
    if weights not in (None, "imagenet"):
        check_weights_file(weights, alpha)
    keras = _keras()
    L = keras.layers
    try:
        base = keras.applications.MobileNetV2(input_shape=input_shape, alpha=alpha, include_top=False,
                                              weights=None if weights is None else str(weights))
    except Exception as e:  # a download that fails offline, an .h5 Keras cannot map
        where = "download them" if weights == "imagenet" else f"load {weights}"
        raise ModelError(f"cannot {where} as MobileNetV2 alpha {alpha} ImageNet weights "
                         f"({str(e).splitlines()[0][:160]}); offline, pass --weights FILE "
                         f"({keras_weights_name(alpha)}) or put it in {keras_cache_dir()}") from None
    if weights is not None:
        for layer in base.layers:
            if isinstance(layer, L.BatchNormalization):
                layer.trainable = False
    x = L.GlobalAveragePooling2D(name="gap")(base.output)
    if dropout:
        x = L.Dropout(dropout, name="drop")(x)
    out = L.Dense(num_classes, activation="softmax", name="fc")(x)
    return keras.Model(base.input, out, name="mobilenetv2")


def backbone_block(name: str) -> int | None:
    """MobileNetV2 block of a backbone layer name: 0 for the stem and ``expanded_conv``, ``i`` for
    ``block_i_*``, 17 for the final ``Conv_1`` / ``Conv_1_bn`` / ``out_relu``; None for head and input layers."""
    if name in HEAD_LAYERS or name.startswith("input"):
        return None
    if name.startswith("block_"):
        return int(name.split("_")[1])
    if name in ("Conv_1", "Conv_1_bn", "out_relu"):
        return 17
    return 0


def set_phase(model, phase: str, fine_tune_from: int = 0) -> int:
    """Choose what trains in a transfer-learning phase (recompile the model afterwards).

    ``head``: only the head layers (:data:`HEAD_LAYERS`). ``fine-tune``: the head and the backbone layers of
    blocks >= ``fine_tune_from`` (:func:`backbone_block`). BatchNormalization layers stay frozen (inference mode)
    in both phases. Returns the number of trainable weights (scalars).
    """
    if phase not in ("head", "fine-tune"):
        raise ValueError(f"phase is {phase!r}, expected 'head' or 'fine-tune'")
    keras = _keras()
    for layer in model.layers:
        block = backbone_block(layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        elif block is None:
            layer.trainable = True
        else:
            layer.trainable = phase == "fine-tune" and block >= fine_tune_from
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def input_normalisation(arch: str) -> tuple[float, float]:
    """(mean, std) in pixel units that a model of ``arch`` expects outside it: MobileNetV2's [-1, 1]
    (:data:`MOBILENETV2_MEAN`, :data:`MOBILENETV2_STD`); (0, 1), raw pixels, for edgecnn's own networks, which
    rescale inside."""
    return (MOBILENETV2_MEAN, MOBILENETV2_STD) if arch == "mobilenetv2" else (0.0, 1.0)


_BUILDERS = {"resnet8": resnet8, "mobilenet": mobilenet, "cnn": cnn}


def build(arch: str, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0, weights=None):
    """Build architecture ``arch`` (one of :data:`ARCHITECTURES`); for ``mobilenetv2`` ``width`` is alpha and
    ``weights`` is passed on (see :func:`mobilenetv2`). Raises ValueError for an unknown name."""
    if arch == "mobilenetv2":
        return mobilenetv2(input_shape, num_classes, alpha=width, weights=weights)
    if arch not in _BUILDERS:
        raise ValueError(f"architecture is {arch!r}, expected one of {', '.join(ARCHITECTURES)}")
    return _BUILDERS[arch](input_shape, num_classes, width=width)


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer at inference.

    Attributes:
        name, kind: layer name and class name.
        output_shape: without the batch dimension.
        params: trainable + non-trainable weights (BatchNorm statistics included; they fold into the convolution
            in the .tflite file).
        macs: multiply-accumulates per image (convolutions and dense layers; other layers count 0).
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def layer_costs(model) -> list[LayerCost]:
    """Parameters and MACs of every layer of a built functional model, in layer order.

    MACs: Conv2D ``out_h*out_w*k_h*k_w*(in_c/groups)*filters``; DepthwiseConv2D
    ``out_h*out_w*k_h*k_w*in_c*depth_multiplier``; Dense ``in*units``.
    """
    out = []
    for layer in model.layers:
        kind = type(layer).__name__
        try:
            oshape = tuple(int(d) for d in layer.output.shape[1:])
        except (AttributeError, TypeError, ValueError):
            oshape = ()
        macs = 0
        if kind == "Conv2D":
            in_c = int(layer.input.shape[-1])
            kh, kw = layer.kernel_size
            macs = oshape[0] * oshape[1] * kh * kw * (in_c // layer.groups) * layer.filters
        elif kind == "DepthwiseConv2D":
            in_c = int(layer.input.shape[-1])
            kh, kw = layer.kernel_size
            macs = oshape[0] * oshape[1] * kh * kw * in_c * layer.depth_multiplier
        elif kind == "Dense":
            macs = int(layer.input.shape[-1]) * layer.units
        out.append(LayerCost(layer.name, kind, oshape, int(layer.count_params()), int(macs)))
    return out


def cost_table(costs: list[LayerCost]) -> str:
    """Text table of :func:`layer_costs` (layers with no parameters and no MACs left out) with a total line."""
    rows = [c for c in costs if c.params or c.macs]
    w = max([len(c.name) for c in rows] + [5])
    lines = [f"{'layer':<{w}}  {'type':<18} {'output':<14} {'params':>8} {'MACs':>11}"]
    for c in rows:
        shape = "x".join(str(d) for d in c.output_shape)
        lines.append(f"{c.name:<{w}}  {c.kind:<18} {shape:<14} {c.params:>8,} {c.macs:>11,}")
    lines.append(f"{'total':<{w}}  {'':<18} {'':<14} {sum(c.params for c in costs):>8,} "
                 f"{sum(c.macs for c in costs):>11,}")
    return "\n".join(lines)
