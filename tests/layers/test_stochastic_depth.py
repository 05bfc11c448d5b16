"""keras_lambda.layers.StochasticDepth: whole samples dropped in training, scaled to keep the mean."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import StochasticDepth


def test_inference_is_the_identity_and_training_drops_whole_samples():
    layer = StochasticDepth(0.5, seed=1)
    x = np.ones((400, 3, 3, 2), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = y.reshape(400, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}  # kept samples scaled by 1 / (1 − rate)
    assert (per_sample == per_sample[:, :1]).all()  # a sample is dropped whole
    assert 0.4 < (per_sample[:, 0] > 0).mean() < 0.6


def test_the_rate_is_checked_and_the_config_round_trips():
    with pytest.raises(ValueError, match="`rate` must be in"):
        StochasticDepth(1.0)
    restored = StochasticDepth.from_config(StochasticDepth(0.2, seed=3).get_config())
    assert (restored.rate, restored.seed) == (0.2, 3)
