"""Key channels in chunks: the loops that sum them, and layers whose kernels run a
chunk at a time."""

import numpy as np
import pytest

from keras_lambda.ops.position import chunks, fast_paths
from tests.helpers import numpy
from tests.ops.position.checks import random


def test_fft_chunks_keep_the_gradients(monkeypatch):
    """A layer whose FFT runs one key channel at a time has the gradients of the
    layer that transforms them all at once (the scan's backward pass)."""
    from keras_lambda.layers import LambdaLayer
    from tests.helpers import layer_gradients

    inputs = random((2, 6, 5, 8))
    probe = random((2, 6, 5, 8), seed=1)
    layer = LambdaLayer(key_dim=4, num_heads=2, implementation="fft")
    layer(inputs)
    variables = [layer.qkv_kernel, layer.embedding.trainable_variables[0]]
    whole = layer_gradients(layer, inputs, probe, variables)
    monkeypatch.setattr(chunks, "KEY_CHUNK_FLOATS", 1)  # k_c = 1: four chunks
    chunked = layer_gradients(layer, inputs, probe, variables)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-5)
    for chunked_gradient, whole_gradient in zip(chunked[1], whole[1]):
        scale = np.abs(whole_gradient).max()
        assert scale > 1e-3
        # Sums in another order: float32 rounding of the largest terms (~1e-7 of the
        # scale each) lands on the small elements, so the absolute tolerance scales.
        np.testing.assert_allclose(chunked_gradient, whole_gradient, rtol=1e-4,
                                   atol=2e-6 * scale)


def test_chunk_sums_fold_every_chunk_in_order():
    """The backend's loop over key chunks and the portable one both give
    step(...step(step(initial, chunk 0), chunk 1)..., chunk last)."""
    left, right = random((3, 2, 4)), random((3, 4), seed=1)
    initial = random((2, 4), seed=2)

    def step(total, chunk):  # not commutative: the order shows
        return total * 0.5 + chunk[0] * chunk[1][None]

    expected = numpy(initial)
    for index in range(3):
        expected = expected * 0.5 + numpy(left)[index] * numpy(right)[index][None]
    for chunk_sum in (fast_paths.fast_path("chunk_sum"), fast_paths.PORTABLE["chunk_sum"]):
        result = chunk_sum(step, initial, (left, right))
        np.testing.assert_allclose(numpy(result), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("implementation", ["fft", "dft"])
def test_key_chunks_take_an_unknown_batch(monkeypatch, implementation):
    """A graph traced for any batch size (as `model.fit` may retrace one) runs the
    chunked FFT (or DFT) and gives the eager result."""
    import tensorflow as tf

    from keras_lambda.layers import LambdaLayer

    monkeypatch.setattr(chunks, "KEY_CHUNK_FLOATS", 1)  # k_c = 1: four chunks
    inputs = random((3, 6, 5, 8))
    layer = LambdaLayer(key_dim=4, num_heads=2, implementation=implementation)
    eager = numpy(layer(inputs))
    traced = tf.function(lambda x: layer(x), input_signature=[tf.TensorSpec((None, 6, 5, 8))])
    np.testing.assert_allclose(traced(inputs).numpy(), eager, rtol=1e-5, atol=1e-6)
