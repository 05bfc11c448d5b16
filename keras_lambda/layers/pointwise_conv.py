"""A 1x1 convolution run as one matmul over the channels, where that is faster."""

import keras

# Backends whose pointwise convolutions run as `[b·H·W, c_in] @ [c_in, c_out]`: TensorFlow
# on a CPU, where Eigen's convolution gradients are slow for few positions and many
# channels (a train step of a 1x1 convolution, batch 16: 1.1x at 32x32, 64 → 256 channels,
# 2.9x at 4x4, 512 → 2048; benchmarks/profile.md, "LambdaResNet-50's pointwise
# convolutions"). Elsewhere `keras.ops.conv`: not raced there.
MATMUL_BACKENDS = ("tensorflow",)


@keras.saving.register_keras_serializable(package="keras_lambda")
class PointwiseConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with a 1x1 kernel and stride 1 (channels last), computed
    as a matmul on the backends of `MATMUL_BACKENDS`: the same weights (`kernel`
    `[1, 1, c_in, c_out]`, `bias`), the same function, a faster gradient.

    inputs `[b, H, W, c_in]` → `[b, H, W, filters]`.
    """

    def __init__(self, filters, kernel_size=1, strides=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, **kwargs)
        for argument, value in (("kernel_size", self.kernel_size), ("strides", self.strides),
                                ("dilation_rate", self.dilation_rate)):
            if tuple(value) != (1, 1):
                raise ValueError(f"PointwiseConv2D: `{argument}` must be 1 (a pointwise "
                                 f"convolution), got {value}; use keras.layers.Conv2D")
        if self.data_format != "channels_last" or self.groups != 1:
            raise ValueError("PointwiseConv2D: `data_format` must be 'channels_last' and "
                             f"`groups` 1, got {self.data_format!r} and {self.groups}")

    def convolution_op(self, inputs, kernel):
        if keras.backend.backend() not in MATMUL_BACKENDS:
            return super().convolution_op(inputs, kernel)
        channels_in, channels_out = kernel.shape[-2:]
        # One 2-D matmul: a 4-D operand would broadcast the kernel over b·H·W and sum
        # its gradient back, several times slower than the convolution.
        outputs = keras.ops.matmul(keras.ops.reshape(inputs, (-1, channels_in)),
                                   keras.ops.reshape(kernel, (channels_in, channels_out)))
        return keras.ops.reshape(outputs, keras.ops.shape(inputs)[:-1] + (channels_out,))
