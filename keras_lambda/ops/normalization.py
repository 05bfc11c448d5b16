"""Batch normalization's training step in one kernel, where a backend has one.

Keras computes a batch norm's training step from its parts (the batch's mean and
variance, then the normalization), each a pass over `[b, H, W, c]` forward and more
backward. TensorFlow has the whole step as one kernel, `FusedBatchNormV3` (what
tf.keras ran before Keras 3): its train step (forward, gradients of the input, scale
and offset) is 1.9-2.6x faster on a CPU (`python benchmarks/batch_norms.py --layers`).
Not raced on accelerators, so it runs where Keras computes on a CPU.
"""

import keras

from keras_lambda.ops.devices import computes_on_cpu


def fuses_batch_norm(inputs):
    """Whether `fused_batch_norm_training` runs for `inputs` (channels last
    `[b, H, W, c]`, computed in float32 as Keras's batch norm computes float16 and
    bfloat16 ones; the kernel has no float64): TensorFlow, on a CPU."""
    return (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
            and keras.backend.result_type(inputs.dtype, "float32") == "float32"
            and computes_on_cpu(inputs))


def fused_batch_norm_training(x, gamma, beta, epsilon):
    """x `[b, H, W, c]` normalized with its batch statistics over b, H, W, then
    scaled by gamma `[c]` and offset by beta `[c]`, in one kernel.

    Returns (outputs `[b, H, W, c]`, mean `[c]`, variance `[c]`), float32 like x;
    the variance is the biased one (divided by b·H·W), as keras.ops.moments gives.
    """
    import tensorflow as tf

    outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=tf.zeros([0], x.dtype),
        variance=tf.zeros([0], x.dtype), epsilon=epsilon, data_format="NHWC",
        is_training=True)
    # The kernel returns the unbiased variance (÷ (N − 1)) for the moving average.
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
    return outputs, mean, variance * (count - 1) / count
