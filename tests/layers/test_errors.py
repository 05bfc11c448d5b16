"""Bad arguments and inputs raise ValueError naming the argument and the value."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer, RelativePositionEmbedding


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"output_dim": 10, "num_heads": 4}, r"`output_dim` must be divisible by `num_heads`=4.*output_dim=10"),
        ({"output_dim": 0}, r"`output_dim`.*>= 1.*output_dim=0"),
        ({"scope": 4}, r"`scope` must be None.*odd integer.*scope=4"),
        ({"scope": 0}, r"`scope`.*scope=0"),
        ({"scope": -3}, r"`scope`.*scope=-3"),
        ({"scope": 2.5}, r"`scope`.*scope=2.5"),
        ({"key_dim": 0}, r"`key_dim`.*key_dim=0"),
        ({"num_heads": 0}, r"`num_heads`.*num_heads=0"),
        ({"intra_depth": 0}, r"`intra_depth`.*intra_depth=0"),
        ({"key_dim": 1.5}, r"`key_dim`.*key_dim=1.5"),
        ({"position": "absolute"}, r"`position` must be one of 'relative', None.*position='absolute'"),
        ({"implementation": "fast"}, r"`implementation` must be one of 'auto', 'einsum', 'conv', 'depthwise', 'fft'.*implementation='fast'"),
        ({"causal": "yes"}, r"`causal` must be one of False, True.*causal='yes'"),
        ({"dilation_rate": 2}, r"`dilation_rate`.*scope=None.*dilation_rate=2"),
        ({"dilation_rate": 0, "scope": 3}, r"`dilation_rate`.*dilation_rate=0"),
        ({"embedding": "table"}, r"`embedding` must be a keras_lambda.layers.RelativePositionEmbedding.*embedding='table'"),
        ({"norm_momentum": 5}, r"`norm_momentum` must be a number in \[0, 1\]. Received: norm_momentum=5"),
        ({"norm_momentum": "high"}, r"`norm_momentum` must be a number in \[0, 1\].*norm_momentum='high'"),
        ({"norm_epsilon": -1}, r"`norm_epsilon` must be a number in \(0, inf\). Received: norm_epsilon=-1"),
        ({"norm_epsilon": float("nan")}, r"`norm_epsilon` must be a number in \(0, inf\).*norm_epsilon=nan"),
    ],
)
def test_bad_constructor_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        LambdaLayer(**kwargs)


def test_output_dim_from_input_channels_must_divide_by_heads():
    with pytest.raises(ValueError, match=r"`output_dim` must be divisible by `num_heads`=4.*output_dim=6"):
        LambdaLayer()(np.zeros((1, 3, 3, 6), "float32"))


@pytest.mark.parametrize("shape", [(2, 8), (1, 2, 3, 4, 8)])
def test_input_rank_other_than_3_or_4(shape):
    with pytest.raises(ValueError, match=r"`inputs` must have rank 3.*or 4.*rank %d" % len(shape)):
        LambdaLayer().build(shape)


def test_causal_on_images():
    with pytest.raises(ValueError, match=r"`causal`=True applies to sequences.*\(2, 4, 4, 8\)"):
        LambdaLayer(causal=True).build((2, 4, 4, 8))


def test_unknown_spatial_size_with_a_global_context():
    with pytest.raises(ValueError, match=r"global context \(scope=None\).*known spatial size.*None"):
        LambdaLayer()(keras.Input((None, None, 8)))
    # A scope or content-only layer accepts it.
    LambdaLayer(scope=3)(keras.Input((None, None, 8)))
    LambdaLayer(position=None)(keras.Input((None, 8)))


def test_input_larger_than_the_global_table():
    layer = LambdaLayer()
    layer.build((None, 4, 4, 8))
    with pytest.raises(ValueError, match=r"\(6, 4\) is larger than the \(4, 4\)"):
        layer(np.zeros((1, 6, 4, 8), "float32"))


@pytest.mark.parametrize(
    "embedding_kwargs, layer_kwargs, pattern",
    [
        ({"key_dim": 8}, {}, r"`embedding` was made with key_dim=8 but this layer has key_dim=16"),
        ({"intra_depth": 2}, {}, r"intra_depth=2 but this layer has intra_depth=1"),
        ({"scope": 3}, {}, r"scope=3 but this layer has scope=None"),
        ({}, {"position": None}, r"`embedding` needs position='relative'"),
    ],
)
def test_mismatched_shared_embedding(embedding_kwargs, layer_kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        LambdaLayer(embedding=RelativePositionEmbedding(**embedding_kwargs), **layer_kwargs)


def test_shared_embedding_too_small_for_a_second_layer():
    shared = RelativePositionEmbedding()
    LambdaLayer(embedding=shared).build((None, 4, 4, 8))
    with pytest.raises(ValueError, match=r"\(8, 8\) is larger than the \(4, 4\)"):
        LambdaLayer(embedding=shared).build((None, 8, 8, 8))
    with pytest.raises(ValueError, match=r"receives 1 spatial axes"):
        LambdaLayer(embedding=shared).build((None, 4, 8))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"spatial_shape": (4, 4), "scope": 3}, r"`spatial_shape` applies to global embeddings.*scope=3"),
        ({"spatial_shape": (1, 2, 3)}, r"`spatial_shape` must be \(n,\) for sequences.*\(1, 2, 3\)"),
        ({"spatial_shape": (0, 4)}, r"`spatial_shape`.*positive integers.*\(0, 4\)"),
        ({"key_dim": -1}, r"`key_dim`.*key_dim=-1"),
        ({"scope": 6}, r"`scope`.*scope=6"),
    ],
)
def test_bad_embedding_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        RelativePositionEmbedding(**kwargs)


def test_integer_inputs_are_computed_as_floats():
    layer = LambdaLayer(8, key_dim=4, num_heads=2, scope=3)
    images = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3) % 5
    as_int = keras.ops.convert_to_numpy(layer(images.astype("int32")))
    as_float = keras.ops.convert_to_numpy(layer(images.astype("float32")))
    assert as_int.dtype == np.float32
    np.testing.assert_array_equal(as_int, as_float)
