"""Building blocks of LambdaResNets as small functional-API functions.

Each `apply_*` function takes a tensor `[b, H, W, c]` and returns one, naming
every layer it creates after `name`, so `model.summary()` reads like the paper.
"""

import keras

from keras_lambda.layers import (
    FusedBatchNormalization,
    LambdaLayer,
    PaddedMaxPooling2D,
    PointwiseConv2D,
    StochasticDepth,
)

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def apply_conv_bn(
    x, filters, kernel_size, strides=1, activation="relu", zero_gamma=False, name=None
):
    """Conv (no bias) → BatchNorm (`FusedBatchNormalization`) → activation (None: none).

    Stride-2 convolutions pad symmetrically, (kernel − 1) // 2 on every side, as
    ResNet-RS and timm do ('same' would pad asymmetrically). 1x1 stride-1 ones are
    `PointwiseConv2D`s (the same weights, a matmul where that is faster).
    """
    padding = "same"
    if strides > 1:
        pad = (kernel_size - 1) // 2
        x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        padding = "valid"
    conv = PointwiseConv2D if kernel_size == 1 and strides == 1 else keras.layers.Conv2D
    x = conv(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = FusedBatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=f"{name}_bn",
    )(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def apply_stem(x, stem, activation, width=64, name="stem"):
    """Stride-4 stem with `width` output channels (64 in every published model).

    "resnet-d" (ResNet-RS): 3x3 s2 (w/2) → 3x3 (w/2) → 3x3 (w) → 3x3 s2 (w), the
    last conv in place of the max pool. "tiered" (timm's ResNet-T): 3x3 s2
    (3w/8) → 3x3 (w/2) → 3x3 (w) → 3x3 s2 max pool padded with −inf. "resnet":
    7x7 s2 (w) → 3x3 s2 max pool.
    """
    half = max(1, width // 2)
    if stem == "resnet-d":
        x = apply_conv_bn(x, half, 3, 2, activation, name=f"{name}_conv1")
        x = apply_conv_bn(x, half, 3, 1, activation, name=f"{name}_conv2")
        x = apply_conv_bn(x, width, 3, 1, activation, name=f"{name}_conv3")
        return apply_conv_bn(x, width, 3, 2, activation, name=f"{name}_conv4")
    if stem == "tiered":
        x = apply_conv_bn(x, max(1, width * 3 // 8), 3, 2, activation, name=f"{name}_conv1")
        x = apply_conv_bn(x, half, 3, 1, activation, name=f"{name}_conv2")
        x = apply_conv_bn(x, width, 3, 1, activation, name=f"{name}_conv3")
        return PaddedMaxPooling2D(3, 2, 1, name=f"{name}_pool")(x)
    x = apply_conv_bn(x, width, 7, 2, activation, name=f"{name}_conv1")
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pool_pad")(x)
    return keras.layers.MaxPooling2D(3, 2, name=f"{name}_pool")(x)


def apply_squeeze_excite(x, reduced_filters, activation, name):
    """Channel attention: x · sigmoid(W2 act(W1 mean_HW(x))), bottleneck `reduced_filters`."""
    filters = x.shape[-1]
    scale = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    scale = PointwiseConv2D(reduced_filters, activation=activation, name=f"{name}_reduce")(scale)
    scale = PointwiseConv2D(filters, activation="sigmoid", name=f"{name}_expand")(scale)
    return keras.layers.Multiply(name=f"{name}_excite")([x, scale])


def apply_shortcut(x, filters, stride, avg_pool_shortcut, name):
    """Identity, or a projection when the shape changes.

    ResNet-D (avg_pool_shortcut): 2x2 s2 average pool, then a 1x1 conv + BN.
    Plain ResNet: a strided 1x1 conv + BN.
    """
    if stride == 1 and x.shape[-1] == filters:
        return x
    if avg_pool_shortcut:
        if stride > 1:
            x = keras.layers.AveragePooling2D(
                stride, stride, padding="same", name=f"{name}_pool"
            )(x)
        return apply_conv_bn(x, filters, 1, 1, None, name=name)
    return apply_conv_bn(x, filters, 1, stride, None, name=name)


def apply_bottleneck_block(
    x,
    filters,
    stride=1,
    lambda_kwargs=None,
    lambda_pool_size=3,
    se_ratio=0.0,
    drop_rate=0.0,
    avg_pool_shortcut=True,
    zero_init_residual=True,
    activation="relu",
    name=None,
):
    """Bottleneck: 1x1 (filters) → spatial mixer (filters) → 1x1 (4·filters) + shortcut.

    The spatial mixer is a 3x3 conv carrying the stride, or, when `lambda_kwargs`
    is given, a `LambdaLayer(output_dim=filters, **lambda_kwargs)` at the block's
    input resolution followed (stride 2) by average pooling of `lambda_pool_size`
    ('same', the paper's 3x3 by default; 2 as timm), then BN + activation.
    Squeeze-excitation (`se_ratio` > 0: filters·se_ratio reduced channels) and
    stochastic depth act on the residual branch, whose last BN starts at zero
    when `zero_init_residual` (ResNet-RS: every block starts as the identity).
    """
    out_filters = 4 * filters
    shortcut = apply_shortcut(x, out_filters, stride, avg_pool_shortcut, f"{name}_shortcut")
    y = apply_conv_bn(x, filters, 1, 1, activation, name=f"{name}_conv1")
    if lambda_kwargs is None:
        y = apply_conv_bn(y, filters, 3, stride, activation, name=f"{name}_conv2")
    else:
        y = LambdaLayer(output_dim=filters, name=f"{name}_lambda", **lambda_kwargs)(y)
        # Under float16 the lambda layer returns float32 (its outputs outgrow float16's
        # range); the pool, which sums before it divides, and the batch norm that brings
        # the values back to unit scale stay in float32 too.
        float16 = keras.config.dtype_policy().compute_dtype == "float16"
        dtype = "float32" if float16 else None
        if stride > 1:
            y = keras.layers.AveragePooling2D(
                lambda_pool_size, stride, padding="same", dtype=dtype, name=f"{name}_lambda_pool"
            )(y)
        y = FusedBatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype, name=f"{name}_lambda_bn"
        )(y)
        y = keras.layers.Activation(activation, name=f"{name}_lambda_{activation}")(y)
    y = apply_conv_bn(y, out_filters, 1, 1, None, zero_gamma=zero_init_residual,
                      name=f"{name}_conv3")
    if se_ratio:
        y = apply_squeeze_excite(y, max(1, int(filters * se_ratio)), activation, f"{name}_se")
    if drop_rate:
        y = StochasticDepth(drop_rate, name=f"{name}_drop")(y)
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation(activation, name=f"{name}_out")(y)
