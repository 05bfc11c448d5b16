"""Analytic multiply-add counts against published figures and brute force."""

import itertools

import keras
import pytest

from keras_lambda.layers import LambdaLayer
from keras_lambda.models import LambdaResNet
from keras_lambda.models.flops import count_macs, lambda_layer_macs


def test_resnet50_v1_5_is_4_1_gmacs_at_224():
    """torchvision's ResNet-50 (v1.5) is listed at 4.09 GFLOPs (multiply-adds)."""
    model = LambdaResNet(depth=50, base="resnet", placement="CCCC", input_shape=(224, 224, 3))
    assert count_macs(model) / 1e9 == pytest.approx(4.09, abs=0.01)


def test_keras_resnet50_is_v1_with_its_strides_in_the_1x1_convolutions():
    """keras.applications.ResNet50 strides the first 1x1 convolution of c3..c5 (ResNet
    v1, He et al. 2016: "3.8 x 10^9 FLOPs"), v1.5 the 3x3 after it: in each of those
    three blocks v1's 1x1 runs on a quarter of the positions v1.5's does. Its input:
    56x56x256 (c3), 28x28x512 (c4), 14x14x1024 (c5), with widths 128, 256, 512."""
    resnet50 = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    v1_5 = LambdaResNet(depth=50, base="resnet", placement="CCCC", input_shape=(224, 224, 3))
    saved = sum(0.75 * size * size * channels * width
                for size, channels, width in ((56, 256, 128), (28, 512, 256), (14, 1024, 512)))
    assert count_macs(resnet50) == count_macs(v1_5) - saved
    assert count_macs(resnet50) / 1e9 == pytest.approx(3.86, abs=0.01)


@pytest.mark.parametrize("scope", [None, 3, 5])
def test_lambda_layer_macs_by_brute_force(scope):
    h, k, u, c, d = 2, 4, 1, 6, 8
    spatial = (5, 4)
    layer = LambdaLayer(output_dim=d, key_dim=k, num_heads=h, intra_depth=u, scope=scope)
    layer.build((None,) + spatial + (c,))
    v = d // h
    positions = list(itertools.product(range(5), range(4)))
    pairs = sum(
        1
        for (a, b), (p, q) in itertools.product(positions, positions)
        if scope is None or (abs(a - p) <= scope // 2 and abs(b - q) <= scope // 2)
    )
    n = len(positions)
    expected = n * c * (h * k + k * u + v * u) + n * k * u * v + pairs * k * u * v + 2 * n * h * k * v
    assert lambda_layer_macs(layer, spatial + (c,)) == expected


def test_count_macs_sums_layers():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    assert count_macs(keras.Model(inputs, outputs)) == 8 * 8 * 9 * 3 * 4 + 4 * 5
