"""Properties of the whole layer: equivariances, causality, gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lambda.layers import LambdaLayer

IMPLEMENTATIONS = ["einsum", "conv", "depthwise", "fft"]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("scope", [None, 5])
def test_relative_embeddings_are_translation_equivariant(implementation, scope):
    """A pattern moved on an empty canvas gives the same outputs, moved.

    With fresh batch norms a zero input gives zero queries and values, so the
    background adds nothing and the borders play no part.
    """
    keras.utils.set_random_seed(1)
    pattern = np.random.default_rng(0).normal(size=(1, 3, 4, 8)).astype("float32")
    canvas = np.zeros((1, 14, 14, 8), "float32")
    moved = canvas.copy()
    canvas[:, 1:4, 2:6] = pattern
    moved[:, 9:12, 7:11] = pattern  # shifted by (8, 5)
    layer = LambdaLayer(scope=scope, implementation=implementation)
    original = np.asarray(layer(canvas))
    shifted = np.asarray(layer(moved))
    np.testing.assert_allclose(shifted[:, 9:12, 7:11], original[:, 1:4, 2:6], rtol=1e-5, atol=1e-5)
    assert np.abs(original[:, 1:4, 2:6]).max() > 0.1


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("scope", [None, 3])
def test_causal_outputs_ignore_later_positions(implementation, scope):
    keras.utils.set_random_seed(2)
    inputs = np.random.default_rng(1).normal(size=(2, 12, 8)).astype("float32")
    layer = LambdaLayer(scope=scope, causal=True, implementation=implementation)
    before = np.asarray(layer(inputs))
    inputs[:, 7] += 3.0
    after = np.asarray(layer(inputs))
    changed = np.abs(after - before).max(axis=(0, 2)) > 1e-5
    assert not changed[:7].any()
    assert changed[7:].all()


@pytest.mark.parametrize("input_shape", [(2, 10, 8), (2, 4, 5, 8)])
def test_content_only_is_permutation_equivariant(input_shape):
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=input_shape).astype("float32")
    layer = LambdaLayer(position=None)
    positions = int(np.prod(input_shape[1:-1]))
    order = rng.permutation(positions)

    def permute(x):
        flat = x.reshape(x.shape[0], positions, x.shape[-1])
        return flat[:, order].reshape(x.shape)

    np.testing.assert_allclose(
        np.asarray(layer(permute(inputs))),
        permute(np.asarray(layer(inputs))),
        rtol=1e-5,
        atol=1e-6,
    )


def test_relative_layer_is_not_permutation_equivariant():
    """The control for the test above: position embeddings do see the order."""
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(2, 10, 8)).astype("float32")
    layer = LambdaLayer()
    order = rng.permutation(10)
    permuted_outputs = np.asarray(layer(inputs[:, order]))
    assert np.abs(permuted_outputs - np.asarray(layer(inputs))[:, order]).max() > 1e-2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"implementation": "einsum"},
        {"implementation": "conv", "scope": 3, "intra_depth": 2},
        {"implementation": "depthwise", "scope": 3},
        {"implementation": "depthwise", "causal": True},
    ],
    ids=["global-einsum", "scope-conv-u2", "scope-depthwise", "causal"],
)
def test_gradients_match_finite_differences(kwargs):
    keras.utils.set_random_seed(4)
    causal = kwargs.get("causal", False)
    shape = (1, 5, 4) if causal else (1, 3, 4, 4)
    inputs = tf.constant(np.random.default_rng(3).normal(size=shape))
    layer = LambdaLayer(key_dim=3, num_heads=2, dtype="float64", **kwargs)
    layer.build(shape)
    probe = tf.constant(np.random.default_rng(4).normal(size=shape[:-1] + (4,)))
    table = layer.embedding.table

    def objective():
        return tf.reduce_sum(layer(inputs, training=True) * probe)

    with tf.GradientTape() as tape:
        tape.watch(inputs)
        value = objective()
    grad_inputs, grad_table = tape.gradient(value, [inputs, table.value])
    grad_table = np.asarray(grad_table)

    step = 1e-6
    flat_inputs = inputs.numpy().ravel()
    for index in range(0, flat_inputs.size, 5):
        delta = np.zeros_like(flat_inputs)
        delta[index] = step
        plus, minus = inputs + delta.reshape(shape), inputs - delta.reshape(shape)
        numeric = (
            float(tf.reduce_sum(layer(plus, training=True) * probe))
            - float(tf.reduce_sum(layer(minus, training=True) * probe))
        ) / (2 * step)
        assert np.isclose(numeric, np.asarray(grad_inputs).ravel()[index], rtol=1e-5, atol=1e-7)

    original = table.numpy()
    for index in range(0, original.size, 7):
        numeric = []
        for sign in (1, -1):
            perturbed = original.copy().ravel()
            perturbed[index] += sign * step
            table.assign(perturbed.reshape(original.shape))
            numeric.append(float(objective()))
        table.assign(original)
        numeric = (numeric[0] - numeric[1]) / (2 * step)
        assert np.isclose(numeric, grad_table.ravel()[index], rtol=1e-5, atol=1e-7)
