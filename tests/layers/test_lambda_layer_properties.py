"""Properties of the whole layer: equivariances, causality, gradients."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer
from tests.helpers import float64_enabled, layer_gradients, layer_objective, numpy

IMPLEMENTATIONS = ["einsum", "conv", "depthwise", "fft", "dft"]


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
    original = numpy(layer(canvas))
    shifted = numpy(layer(moved))
    np.testing.assert_allclose(shifted[:, 9:12, 7:11], original[:, 1:4, 2:6], rtol=1e-5, atol=1e-5)
    assert np.abs(original[:, 1:4, 2:6]).max() > 0.1


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("scope", [None, 3])
@pytest.mark.parametrize("training", [False, True])
def test_causal_outputs_ignore_later_positions(implementation, scope, training):
    """In training too: no statistic of a normalisation mixes positions."""
    keras.utils.set_random_seed(2)
    inputs = np.random.default_rng(1).normal(size=(2, 12, 8)).astype("float32")
    layer = LambdaLayer(scope=scope, causal=True, implementation=implementation)
    before = numpy(layer(inputs, training=training))
    inputs[:, 7:] += 10.0
    after = numpy(layer(inputs, training=training))
    changed = np.abs(after - before).max(axis=(0, 2)) > 1e-5
    assert not changed[:7].any()
    assert changed[7:].all()


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("scope", [None, 3])
def test_causal_gradients_of_an_output_vanish_for_later_inputs(implementation, scope):
    """d y_i / d x_j = 0 for j > i in training (layer_gradients runs training=True):
    exactly, except through the FFT, whose circular products leave float32 rounding
    (at most 1e-5 of the gradients that do exist)."""
    keras.utils.set_random_seed(3)
    inputs = np.random.default_rng(2).normal(size=(2, 10, 8)).astype("float32")
    layer = LambdaLayer(scope=scope, causal=True, implementation=implementation)
    layer.build(inputs.shape)
    for last in (0, 4, 8):
        probe = np.zeros((2, 10, 8), "float32")
        probe[:, last] = np.random.default_rng(last).normal(size=(2, 8))
        _, (gradient, _) = layer_gradients(layer, inputs, probe, [layer.qkv_kernel])
        present = np.abs(gradient[:, :last + 1]).max()
        leaked = np.abs(gradient[:, last + 1:]).max(initial=0.0)
        assert present > 1e-3
        assert leaked <= (1e-5 * present if implementation == "fft" else 0.0), leaked


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
        numpy(layer(permute(inputs))),
        permute(numpy(layer(inputs))),
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
    permuted_outputs = numpy(layer(inputs[:, order]))
    assert np.abs(permuted_outputs - numpy(layer(inputs))[:, order]).max() > 1e-2


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
    """Float64 on every backend. On TensorFlow float64 is float64 throughout: steps
    of 1e-6, agreement to 1e-5 relative. On JAX (x64 enabled for this test) and
    PyTorch, Keras's float64 layers are only ~1e-7 accurate (even a Dense differs
    from numpy's float64 by 1e-7), which steps of 1e-6 turn into 10% noise: there
    the steps are 1e-3 and the agreement float32-level (2e-3), still far tighter
    than any wrong gradient."""
    backend = keras.backend.backend()
    with float64_enabled():
        keras.utils.set_random_seed(4)
        causal = kwargs.get("causal", False)
        shape = (1, 5, 4) if causal else (1, 3, 4, 4)
        inputs = np.random.default_rng(3).normal(size=shape)
        layer = LambdaLayer(key_dim=3, num_heads=2, dtype="float64", **kwargs)
        layer.build(shape)
        probe = np.random.default_rng(4).normal(size=shape[:-1] + (4,))
        table = layer.embedding.table
        _, (grad_inputs, grad_table) = layer_gradients(layer, inputs, probe, [table])
        exact = backend == "tensorflow"
        step, rtol, atol = (1e-6, 1e-5, 1e-7) if exact else (1e-3, 2e-3, 2e-3)

        flat_inputs = inputs.ravel()
        for index in range(0, flat_inputs.size, 5):
            delta = np.zeros_like(flat_inputs)
            delta[index] = step
            plus, minus = inputs + delta.reshape(shape), inputs - delta.reshape(shape)
            numeric = (layer_objective(layer, plus, probe)
                       - layer_objective(layer, minus, probe)) / (2 * step)
            assert np.isclose(numeric, grad_inputs.ravel()[index], rtol=rtol, atol=atol)

        original = numpy(table)
        for index in range(0, original.size, 7):
            numeric = []
            for sign in (1, -1):
                perturbed = original.copy().ravel()
                perturbed[index] += sign * step
                table.assign(perturbed.reshape(original.shape))
                numeric.append(layer_objective(layer, inputs, probe))
            table.assign(original)
            numeric = (numeric[0] - numeric[1]) / (2 * step)
            assert np.isclose(numeric, grad_table.ravel()[index], rtol=rtol, atol=atol)
