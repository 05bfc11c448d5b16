"""Every implementation of LambdaLayer against the numpy reference of the paper."""

import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer, RelativePositionEmbedding
from tests import reference
from tests.helpers import numpy

IMPLEMENTATIONS = ["einsum", "conv", "depthwise", "fft", "dft", "auto"]
TOLERANCE = 1e-5  # max |error| relative to max |reference|, float32 vs float64


def randomise_norms(layer, seed):
    """Gives the batch norms non-trivial statistics so they are really tested."""
    rng = np.random.default_rng(seed)
    for norm in (layer.query_norm, layer.value_norm):
        size = norm.gamma.shape[0]
        norm.gamma.assign(rng.uniform(0.5, 1.5, size))
        norm.beta.assign(rng.normal(0.0, 0.3, size))
        if not hasattr(norm, "moving_mean"):  # a causal layer's layer norm
            continue
        norm.moving_mean.assign(rng.normal(0.0, 0.3, size))
        norm.moving_variance.assign(rng.uniform(0.5, 2.0, size))


def assert_matches_reference(layer, inputs, training=False):
    outputs = numpy(layer(inputs, training=training))
    expected = reference.lambda_layer(
        inputs,
        reference.layer_weights(layer),
        num_heads=layer.num_heads,
        key_dim=layer.key_dim,
        intra_depth=layer.intra_depth,
        scope=layer.scope,
        dilation=layer.dilation_rate,
        causal=layer.causal,
        position=layer.position is not None,
        epsilon=layer.norm_epsilon,
        training=training,
    )
    assert outputs.shape == expected.shape
    error = np.max(np.abs(outputs - expected)) / np.max(np.abs(expected))
    assert error < TOLERANCE, f"relative error {error:.2e}"


def check(input_shape, seed=0, training=False, **layer_kwargs):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=input_shape).astype("float32")
    layer = LambdaLayer(**layer_kwargs)
    layer.build(input_shape)
    randomise_norms(layer, seed)
    assert_matches_reference(layer, inputs, training)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("intra_depth", [1, 4])
@pytest.mark.parametrize("num_heads", [1, 4, 8])
def test_global_non_square_image(implementation, intra_depth, num_heads):
    check(
        (2, 6, 5, 16),
        implementation=implementation,
        intra_depth=intra_depth,
        num_heads=num_heads,
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("intra_depth", [1, 4])
@pytest.mark.parametrize("scope", [1, 3, 5, 23])
def test_lambda_convolution_image(implementation, intra_depth, scope):
    check((2, 7, 9, 16), scope=scope, implementation=implementation, intra_depth=intra_depth)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("num_heads", [1, 8])
def test_lambda_convolution_heads(implementation, num_heads):
    check((2, 6, 7, 16), scope=3, implementation=implementation, num_heads=num_heads)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dilation_rate", [2, 3])
def test_dilated_scope(implementation, dilation_rate):
    check((2, 9, 8, 16), scope=3, dilation_rate=dilation_rate, implementation=implementation)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("intra_depth", [1, 4])
@pytest.mark.parametrize("scope", [None, 5, 23])
def test_sequence(implementation, causal, intra_depth, scope):
    check(
        (2, 11, 16),
        scope=scope,
        causal=causal,
        implementation=implementation,
        intra_depth=intra_depth,
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_causal_dilated_sequence(implementation):
    check((2, 13, 8), scope=5, dilation_rate=2, causal=True, implementation=implementation)


@pytest.mark.parametrize(
    "input_shape, causal", [((2, 6, 5, 16), False), ((2, 9, 16), False), ((2, 9, 16), True)]
)
def test_content_only(input_shape, causal):
    check(input_shape, position=None, causal=causal)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_training_mode_batch_statistics(implementation):
    check((3, 5, 6, 8), training=True, implementation=implementation, intra_depth=2)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_output_dim_differs_from_input_channels(implementation):
    check((2, 5, 4, 6), output_dim=12, num_heads=3, implementation=implementation)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_smaller_input_uses_central_part_of_global_table(implementation):
    """A table built for 8x7 serves a 5x6 input with its central offsets."""
    embedding = RelativePositionEmbedding(key_dim=16, spatial_shape=(8, 7))
    layer = LambdaLayer(embedding=embedding, implementation=implementation)
    layer.build((2, 5, 6, 16))
    assert tuple(embedding.table.shape) == (15, 13, 16, 1)
    randomise_norms(layer, 3)
    inputs = np.random.default_rng(3).normal(size=(2, 5, 6, 16)).astype("float32")
    assert_matches_reference(layer, inputs)
