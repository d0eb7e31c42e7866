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

from dataclasses import dataclass

from edgecnn.config import ARCHITECTURES, DEFAULT_ARCH
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


_BUILDERS = {"resnet8": resnet8, "mobilenet": mobilenet, "cnn": cnn}


def build(arch: str, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0):
    """Build architecture ``arch`` (one of :data:`ARCHITECTURES`). Raises ValueError for an unknown name."""
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
