"""keras_lambda.ops.content: content lambdas against a numpy reference."""

import keras
import numpy as np
import pytest

from keras_lambda.ops import causal_content_lambdas, content_lambda
from tests.helpers import float64_enabled, op_gradients, random_array


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("intra_depth", [1, 3])  # u = 1: a batched matmul; u > 1: an einsum
def test_the_content_lambda_is_the_softmaxed_keys_times_the_values(intra_depth):
    keys = random_array((2, 7, 4, intra_depth), 1)  # [b, m, k, u]
    values = random_array((2, 7, 5, intra_depth), 2)
    expected = np.einsum("bmku,bmvu->bkv", softmax(keys.astype("float64"), 1), values)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(content_lambda(keys, values)),
                               expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("intra_depth", [1, 3])
def test_the_content_lambdas_gradients_are_the_softmaxs_chain_rule(intra_depth):
    """dK and dV of Σ λc·P against the chain rule written out in numpy: dV = W·P,
    dW = V·P, dK = W ⊙ (dW − Σ_m W ⊙ dW) (the softmax's Jacobian over m)."""
    keys = random_array((2, 7, 4, intra_depth), 5)  # [b, m, k, u]
    values = random_array((2, 7, 5, intra_depth), 6)
    probe = random_array((2, 4, 5), 7)  # [b, k, v]
    weights = softmax(keys.astype("float64"), 1)
    weights_gradient = np.einsum("bmvu,bkv->bmku", values, probe)
    expected_keys = weights * (weights_gradient
                               - (weights * weights_gradient).sum(axis=1, keepdims=True))
    expected_values = np.einsum("bmku,bkv->bmvu", weights, probe)
    got_keys, got_values = op_gradients(content_lambda, [keys, values], probe)
    np.testing.assert_allclose(got_keys, expected_keys, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_values, expected_values, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("intra_depth", [1, 3])
def test_float64_lambdas_stay_float64(intra_depth):
    """u = 1 runs a matmul, which Keras computes in float32 on PyTorch when given float64."""
    with float64_enabled():
        keys = random_array((2, 7, 4, intra_depth), 8).astype("float64")
        values = random_array((2, 7, 5, intra_depth), 9).astype("float64")
        lambdas = content_lambda(keys, values)
        assert keras.backend.standardize_dtype(lambdas.dtype) == "float64"


def test_causal_lambdas_softmax_each_prefix_on_its_own():
    keys, values = 5 * random_array((2, 6, 3, 2), 3), random_array((2, 6, 4, 2), 4)
    lambdas = keras.ops.convert_to_numpy(causal_content_lambdas(keys, values))  # [b, n, k, v]
    for n in range(6):
        expected = np.einsum("bmku,bmvu->bkv", softmax(keys[:, : n + 1].astype("float64"), 1),
                             values[:, : n + 1])
        np.testing.assert_allclose(lambdas[:, n], expected, rtol=1e-5, atol=1e-6)


def test_half_precision_keys_are_softmaxed_in_float32():
    """Keys of 60 overflow float16's exp; the softmax runs in float32 and stays finite."""
    keys = np.full((1, 4, 2, 1), 60.0, "float16")
    values = np.ones((1, 4, 3, 1), "float16")
    lambdas = keras.ops.convert_to_numpy(content_lambda(keys, values))
    assert lambdas.dtype == np.float16 and np.isfinite(lambdas).all()
    np.testing.assert_allclose(lambdas.astype("float32"), 1.0, rtol=1e-3)
