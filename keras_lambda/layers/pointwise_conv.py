"""A 1x1 convolution run as one matmul over the channels, where that is faster."""

import keras

from keras_lambda.ops.devices import computes_on_cpu

# On a CPU every backend's 1x1 convolution trains faster as a matmul, and LambdaResNet-50's
# step with it (`python benchmarks/pointwise_convs.py --layers`; benchmarks/history/profile.md,
# "LambdaResNet-50's pointwise convolutions"): their convolution gradients are slow where
# there are few positions and many channels. On GPUs and TPUs, not raced: convolutions.


@keras.saving.register_keras_serializable(package="keras_lambda")
class PointwiseConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with a 1x1 kernel and stride 1 (channels last), computed
    as a matmul on a CPU: the same weights (`kernel` `[1, 1, c_in, c_out]`, `bias`),
    the same function, a faster gradient.

    inputs `[b, H, W, c_in]` → `[b, H, W, filters]`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.layers import PointwiseConv2D

    layer = PointwiseConv2D(64)                        # as keras.layers.Conv2D(64, 1)
    outputs = layer(np.zeros((2, 8, 8, 32), "float32"))   # [2, 8, 8, 64]
    ```
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
        if not computes_on_cpu(inputs):
            return super().convolution_op(inputs, kernel)
        channels_in, channels_out = kernel.shape[-2:]
        # One 2-D matmul, b·H·W rows: what the convolution computes, with a matmul's
        # gradients.
        outputs = keras.ops.matmul(keras.ops.reshape(inputs, (-1, channels_in)),
                                   keras.ops.reshape(kernel, (channels_in, channels_out)))
        return keras.ops.reshape(outputs, keras.ops.shape(inputs)[:-1] + (channels_out,))
