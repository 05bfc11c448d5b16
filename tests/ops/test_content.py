"""keras_lambda.ops.content: content lambdas against a numpy reference."""

import keras
import numpy as np

from keras_lambda.ops import causal_content_lambdas, content_lambda
from tests.helpers import random_array


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_the_content_lambda_is_the_softmaxed_keys_times_the_values():
    keys, values = random_array((2, 7, 4, 3), 1), random_array((2, 7, 5, 3), 2)  # [b, m, k, u]
    expected = np.einsum("bmku,bmvu->bkv", softmax(keys.astype("float64"), 1), values)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(content_lambda(keys, values)),
                               expected, rtol=1e-5, atol=1e-6)


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
