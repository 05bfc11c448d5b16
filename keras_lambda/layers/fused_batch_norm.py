"""Batch normalization whose training step runs as one kernel where a backend has one."""

import keras

from keras_lambda.ops.normalization import fused_batch_norm_training, fuses_batch_norm


@keras.saving.register_keras_serializable(package="keras_lambda")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step over channels-last
    `[b, H, W, c]` runs as one kernel where Keras computes on a CPU (TensorFlow's
    `FusedBatchNormV3`, PyTorch's `torch.native_batch_norm`; faster there):
    the same weights, outputs, gradients and moving averages.

    Everything else (inference, masks, renorm, synchronized statistics, other ranks,
    axes and backends) is Keras's own batch norm.

    Example:
    ```python
    import numpy as np
    from keras_lambda.layers import FusedBatchNormalization

    layer = FusedBatchNormalization(momentum=0.9)      # as keras.layers.BatchNormalization
    outputs = layer(np.random.rand(4, 8, 8, 16).astype("float32"), training=True)
    ```
    """

    def call(self, inputs, training=None, mask=None):
        fusable = (training and self.trainable and mask is None and not self.renorm
                   and not self.synchronized and self.axis in (-1, len(inputs.shape) - 1)
                   and fuses_batch_norm(inputs))
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        # Computed in float32 under any policy, as Keras's batch norm is (float64 is not
        # fused).
        dtype = "float32"
        channels = inputs.shape[-1]
        gamma = keras.ops.cast(self.gamma, dtype) if self.scale else keras.ops.ones(
            (channels,), dtype)
        beta = keras.ops.cast(self.beta, dtype) if self.center else keras.ops.zeros(
            (channels,), dtype)
        outputs, mean, variance = fused_batch_norm_training(
            keras.ops.cast(inputs, dtype), gamma, beta, self.epsilon)
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum
                          + keras.ops.cast(batch, moving.dtype) * (1.0 - self.momentum))
        return keras.ops.cast(outputs, self.compute_dtype)
