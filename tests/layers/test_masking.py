"""Padding masks: padded positions leave every lambda and every statistic, so a padded
batch gives, at its real positions, what each sequence gives unpadded."""

import warnings

import keras
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer
from tests.helpers import layer_gradients, numpy

KERNELS = ["einsum", "conv", "depthwise", "fft", "dft"]
VARIANTS = {
    "global": {},
    "scope-5": {"scope": 5},
    "content-only": {"position": None},
    "causal": {"causal": True},
    "causal-scope-3": {"causal": True, "scope": 3},
}
CASES = [(variant, kernel) for variant in VARIANTS
         for kernel in (["einsum"] if variant == "content-only" else KERNELS)]
LENGTHS = (5, 9)  # the real lengths of the two sequences of a batch padded to 12


def layer_for(variant, implementation):
    keras.utils.set_random_seed(0)
    kwargs = dict(VARIANTS[variant])
    if kwargs.get("position", "relative") is not None:
        kwargs["implementation"] = implementation
    layer = LambdaLayer(key_dim=4, num_heads=2, **kwargs)
    layer.build((None, 12, 8))
    return layer


def padded_batch(seed, padded_length=12):
    rng = np.random.default_rng(seed)
    real = [np.random.default_rng(length).normal(size=(length, 8)) for length in LENGTHS]
    inputs = rng.normal(scale=5.0, size=(2, padded_length, 8))  # padding: anything
    mask = np.zeros((2, padded_length), bool)
    for index, sequence in enumerate(real):
        inputs[index, :len(sequence)] = sequence
        mask[index, :len(sequence)] = True
    return inputs.astype("float32"), mask, real


@pytest.mark.parametrize("variant, implementation", CASES)
def test_a_padded_batch_gives_each_sequence_s_own_outputs(variant, implementation):
    """Inference: the padded batch at its real positions against each sequence alone."""
    layer = layer_for(variant, implementation)
    inputs, mask, real = padded_batch(seed=1)
    outputs = numpy(layer(inputs, mask=mask))
    for index, sequence in enumerate(real):
        alone = numpy(layer(sequence[None].astype("float32")))[0]
        np.testing.assert_allclose(outputs[index, :len(sequence)], alone, rtol=1e-5,
                                   atol=1e-5 * np.abs(alone).max())


@pytest.mark.parametrize("variant, implementation", CASES)
def test_in_training_the_padding_s_contents_and_length_change_nothing(variant, implementation):
    """Training (batch-norm statistics from the batch): the same real positions padded
    to 12 with some contents and to 10 with others give the same outputs there."""
    layer = layer_for(variant, implementation)
    first, first_mask, real = padded_batch(seed=2)
    second, second_mask, _ = padded_batch(seed=3, padded_length=10)
    a = numpy(layer(first, mask=first_mask, training=True))
    b = numpy(layer(second, mask=second_mask, training=True))
    for index, sequence in enumerate(real):
        np.testing.assert_allclose(a[index, :len(sequence)], b[index, :len(sequence)],
                                   rtol=1e-5, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("variant, implementation", CASES)
def test_gradients_are_those_of_the_real_positions_alone(variant, implementation):
    """Training, an objective over the real positions: the gradients with respect to the
    inputs and the weights are the same padded to 12 with some contents and to 10 with
    others, and the padding's own gradient is zero."""
    layer = layer_for(variant, implementation)
    first, first_mask, real = padded_batch(seed=2)
    second, second_mask, _ = padded_batch(seed=3, padded_length=10)
    probe = np.random.default_rng(4).normal(size=(2, 12, 8)).astype("float32")
    probe *= first_mask[..., None]  # nothing asked of the padding's outputs
    _, (inputs_a, weights_a) = layer_gradients(layer, first, probe, [layer.qkv_kernel],
                                               mask=first_mask)
    _, (inputs_b, weights_b) = layer_gradients(layer, second, probe[:, :10], [layer.qkv_kernel],
                                               mask=second_mask)
    assert np.abs(inputs_a).max() > 1e-3
    assert np.abs(inputs_a[~first_mask]).max() == 0.0
    assert np.abs(inputs_b[~second_mask]).max() == 0.0
    for index, sequence in enumerate(real):
        np.testing.assert_allclose(inputs_a[index, :len(sequence)], inputs_b[index, :len(sequence)],
                                   rtol=1e-4, atol=1e-5 * np.abs(inputs_a).max())
    np.testing.assert_allclose(weights_a, weights_b, rtol=1e-4, atol=1e-5 * np.abs(weights_a).max())


@pytest.mark.parametrize("implementation", KERNELS)
@pytest.mark.parametrize("variant", ["causal", "causal-scope-3"])
def test_causal_under_a_mask_in_training(variant, implementation):
    """d y_i / d x_j = 0 for j > i with padding, in training: exactly, except through
    the FFT (float32 rounding of its circular products, at most 1e-5 of the rest)."""
    layer = layer_for(variant, implementation)
    inputs, mask, _ = padded_batch(seed=5)
    for last in (1, 4):
        probe = np.zeros((2, 12, 8), "float32")
        probe[:, last] = np.random.default_rng(last).normal(size=(2, 8))
        _, (gradient, _) = layer_gradients(layer, inputs, probe, [layer.qkv_kernel], mask=mask)
        present = np.abs(gradient[:, :last + 1]).max()
        leaked = np.abs(gradient[:, last + 1:]).max()
        assert present > 1e-3
        assert leaked <= (1e-5 * present if implementation == "fft" else 0.0), leaked


def test_the_mask_flows_from_an_embedding_through_the_layer():
    inputs = keras.Input((12,), dtype="int32")
    embedded = keras.layers.Embedding(20, 8, mask_zero=True)(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when a layer destroys a mask
        outputs = LambdaLayer(key_dim=4, num_heads=2, scope=5)(embedded)
    pooled = keras.layers.GlobalAveragePooling1D()(outputs)  # averages real positions only
    model = keras.Model(inputs, pooled)
    tokens = np.array([[3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0]])
    layer_outputs = keras.Model(inputs, outputs).predict(tokens, verbose=0)
    np.testing.assert_allclose(model.predict(tokens, verbose=0)[0],
                               layer_outputs[0, :5].mean(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"scope": 3, "implementation": "conv"},
                                    {"implementation": "fft"}], ids=["global", "scope-3", "fft"])
def test_an_image_padded_to_a_larger_canvas_gives_its_own_outputs(kwargs):
    keras.utils.set_random_seed(0)
    layer = LambdaLayer(key_dim=4, num_heads=2, **kwargs)
    layer.build((None, 6, 6, 8))
    image = np.random.default_rng(0).normal(size=(1, 4, 5, 8)).astype("float32")
    canvas = np.random.default_rng(1).normal(scale=5.0, size=(1, 6, 6, 8)).astype("float32")
    canvas[:, :4, :5] = image
    mask = np.zeros((1, 6, 6), bool)
    mask[:, :4, :5] = True
    padded = numpy(layer(canvas, mask=mask))[:, :4, :5]
    alone = numpy(layer(image))
    np.testing.assert_allclose(padded, alone, rtol=1e-5, atol=1e-5 * np.abs(alone).max())
