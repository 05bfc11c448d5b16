"""keras_lambda.models.blocks: the stems and the bottleneck, conv or lambda."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer
from keras_lambda.models import blocks
from tests.helpers import random_array


@pytest.mark.parametrize("stem, channels", [("resnet-d", 64), ("tiered", 64), ("resnet", 64)])
def test_every_stem_has_stride_4(stem, channels):
    inputs = keras.Input((64, 48, 3))
    outputs = blocks.apply_stem(inputs, stem, "relu")
    assert tuple(outputs.shape) == (None, 16, 12, channels)


def test_a_strided_conv_pads_symmetrically():
    """3x3 stride 2 pads one on every side (as PyTorch and ResNet-RS), not 'same''s
    bottom-right only: output (0, 0) sees rows and columns -1..1."""
    inputs = keras.Input((6, 6, 1))
    outputs = blocks.apply_conv_bn(inputs, 1, 3, strides=2, activation=None, name="c")
    model = keras.Model(inputs, outputs)
    model.get_layer("c_conv").kernel.assign(np.ones((3, 3, 1, 1), "float32"))
    x = np.zeros((1, 6, 6, 1), "float32")
    x[0, 0, 0, 0] = 1.0  # only the top-left input
    y = keras.ops.convert_to_numpy(model(x))  # BN at its initial state ≈ identity
    assert y[0, 0, 0, 0] == pytest.approx(1.0, rel=1e-3) and y[0, 1, 1, 0] == 0.0


@pytest.mark.parametrize("stride", [1, 2])
def test_a_lambda_bottleneck_pools_after_a_strided_lambda_layer(stride):
    inputs = keras.Input((8, 8, 32))
    outputs = blocks.apply_bottleneck_block(
        inputs, 16, stride=stride, lambda_kwargs=dict(key_dim=4, num_heads=4, scope=None),
        lambda_pool_size=2, name="b")
    model = keras.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, 8 // stride, 8 // stride, 64)
    names = [layer.name for layer in model.layers]
    assert isinstance(model.get_layer("b_lambda"), LambdaLayer)
    assert ("b_lambda_pool" in names) == (stride == 2)
    assert np.isfinite(keras.ops.convert_to_numpy(model(random_array((2, 8, 8, 32))))).all()


def test_under_float16_the_layers_after_a_lambda_layer_stay_float32():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input((8, 8, 32))
        outputs = blocks.apply_bottleneck_block(
            inputs, 16, stride=2, lambda_kwargs=dict(key_dim=4, num_heads=4, scope=3), name="b")
        model = keras.Model(inputs, outputs)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("b_lambda").output_dtype == "float32"
    for name in ("b_lambda_pool", "b_lambda_bn"):
        assert model.get_layer(name).compute_dtype == "float32"
    assert model.get_layer("b_conv3_conv").compute_dtype == "float16"
