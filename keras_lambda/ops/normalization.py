"""Batch normalization's training step in one kernel, where a backend has one.

Keras computes a batch norm's training step from its parts (the batch's mean and
variance, then the normalization), each a pass over `[b, H, W, c]` forward and more
backward. TensorFlow has the whole step as one kernel, `FusedBatchNormV3` (what
tf.keras ran before Keras 3): its train step (forward, gradients of the input, scale
and offset) is faster on a CPU at ResNet-50's shapes (races: `python
benchmarks/batch_norms.py --layers`, benchmarks/history/history.md); PyTorch has
`torch.native_batch_norm`.
Not raced on accelerators, so they run where Keras computes on a CPU.
"""

import keras

from keras_lambda.ops.devices import computes_on_cpu


def _fused_tensorflow(x, gamma, beta, epsilon):
    import tensorflow as tf

    outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=tf.zeros([0], x.dtype),
        variance=tf.zeros([0], x.dtype), epsilon=epsilon, data_format="NHWC",
        is_training=True)
    # The kernel returns the unbiased variance (÷ (N − 1)) for the moving average.
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
    return outputs, mean, variance * (count - 1) / count


def _fused_torch(x, gamma, beta, epsilon):
    import torch

    # [b, H, W, c] seen as [b, c, H, W] in channels-last memory: no copy, and the
    # kernel PyTorch keeps for channels-last tensors.
    outputs, mean, inverse_std = torch.native_batch_norm(
        x.permute(0, 3, 1, 2), gamma, beta, None, None, True, 0.0, epsilon)
    variance = 1.0 / inverse_std.detach() ** 2 - epsilon
    return outputs.permute(0, 2, 3, 1), mean.detach(), variance


FUSED = {"tensorflow": _fused_tensorflow, "torch": _fused_torch}
FLOAT32_COMPUTED = ("float16", "bfloat16", "float32")


def fuses_batch_norm(inputs):
    """Whether `fused_batch_norm_training` runs for `inputs` (channels last
    `[b, H, W, c]`, computed in float32 as Keras's batch norm computes float16 and
    bfloat16 ones; TensorFlow's kernel has no float64): a backend in `FUSED`, on a CPU."""
    return (keras.backend.backend() in FUSED and len(inputs.shape) == 4
            and keras.backend.standardize_dtype(inputs.dtype) in FLOAT32_COMPUTED
            and computes_on_cpu(inputs))


def fused_batch_norm_training(x, gamma, beta, epsilon):
    """x `[b, H, W, c]` normalized with its batch statistics over b, H, W, then
    scaled by gamma `[c]` and offset by beta `[c]`, in one kernel.

    Returns (outputs `[b, H, W, c]`, mean `[c]`, variance `[c]`), float32 like x;
    the variance is the biased one (divided by b·H·W), as keras.ops.moments gives.
    """
    return FUSED[keras.backend.backend()](x, gamma, beta, epsilon)
