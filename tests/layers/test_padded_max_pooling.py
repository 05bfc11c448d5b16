"""keras_lambda.layers.PaddedMaxPooling2D: PyTorch's MaxPool2d(3, 2, padding=1)."""

import keras
import numpy as np

from keras_lambda.layers import PaddedMaxPooling2D
from tests.helpers import random_array


def reference(x, size=3, stride=2, pad=1):
    """Max over windows of an input padded with −inf, written out in numpy."""
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
    rows = (padded.shape[1] - size) // stride + 1
    columns = (padded.shape[2] - size) // stride + 1
    out = np.empty((x.shape[0], rows, columns, x.shape[3]), x.dtype)
    for i in range(rows):
        for j in range(columns):
            window = padded[:, i * stride: i * stride + size, j * stride: j * stride + size]
            out[:, i, j] = window.max(axis=(1, 2))
    return out


def test_matches_padding_with_minus_infinity_for_even_and_odd_sizes():
    for shape in ((2, 8, 8, 3), (1, 7, 10, 2)):
        x = random_array(shape) - 3.0  # all negative: zero padding would win at the borders
        ours = keras.ops.convert_to_numpy(PaddedMaxPooling2D()(x))
        np.testing.assert_array_equal(ours, reference(x))
        assert PaddedMaxPooling2D().compute_output_shape(shape) == ours.shape


def test_config_round_trip():
    layer = PaddedMaxPooling2D(pool_size=2, strides=1, padding=0, name="pool")
    restored = PaddedMaxPooling2D.from_config(layer.get_config())
    assert (restored.pool_size, restored.strides, restored.padding) == (2, 1, 0)
