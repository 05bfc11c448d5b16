"""keras_lambda.baselines: the paper's pseudo-code and attention compute what they claim."""

import numpy as np
import pytest

from keras_lambda import baselines
from tests import reference
from tests.helpers import random_array


@pytest.mark.parametrize("training", [False, True])
def test_paper_pseudo_code_baseline_matches_the_numpy_reference(training):
    layer = baselines.PaperLambdaLayer(8, key_dim=4, num_heads=2)
    x = random_array((2, 5, 4, 6))
    layer.build(x.shape)
    for norm, seed in ((layer.query_norm, 1), (layer.value_norm, 2)):  # non-trivial statistics
        norm.moving_mean.assign(random_array(norm.moving_mean.shape, seed) * 0.1)
        norm.moving_variance.assign(np.abs(random_array(norm.moving_variance.shape, seed + 5)) + 0.5)
        norm.gamma.assign(random_array(norm.gamma.shape, seed + 9) * 0.2 + 1)
    weights = {
        "qkv": np.concatenate(
            [np.asarray(w) for w in (layer.query_kernel, layer.key_kernel, layer.value_kernel)], -1
        ),
        "query_norm": tuple(np.asarray(w) for w in (
            layer.query_norm.gamma, layer.query_norm.beta,
            layer.query_norm.moving_mean, layer.query_norm.moving_variance)),
        "value_norm": tuple(np.asarray(w) for w in (
            layer.value_norm.gamma, layer.value_norm.beta,
            layer.value_norm.moving_mean, layer.value_norm.moving_variance)),
        "table": np.asarray(layer.table)[..., None],  # u = 1
    }
    expected = reference.lambda_layer(x, weights, num_heads=2, key_dim=4, intra_depth=1,
                                      training=training)
    np.testing.assert_allclose(np.asarray(layer(x, training=training)), expected,
                               rtol=1e-4, atol=1e-4)


def test_relative_indices_point_at_the_offset():
    indices = baselines.relative_indices(3, 4)  # table [5, 7]
    n = 1 * 4 + 2  # position (1, 2)
    m = 2 * 4 + 0  # position (2, 0): offset (+1, −2) → table row 1 + 2, column −2 + 3
    assert indices[n, m] == (1 + 2) * 7 + (-2 + 3)
    assert indices[m, m] == 2 * 7 + 3  # zero offset: the centre


def test_global_attention_is_multi_head_attention_over_all_positions():
    layer = baselines.GlobalAttention(8, num_heads=4)
    x = random_array((2, 3, 5, 8))
    y = np.asarray(layer(x))
    flat = x.reshape(2, 15, 8)
    expected = np.asarray(layer.attention(flat, flat)).reshape(2, 3, 5, 8)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    moved = np.asarray(layer(x[:, ::-1]))  # attention has no notion of position
    np.testing.assert_allclose(moved, y[:, ::-1], rtol=1e-5, atol=1e-5)
