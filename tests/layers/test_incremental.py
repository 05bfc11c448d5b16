"""Incremental decoding: a causal layer run one position at a time from a state gives
the full sequence's outputs, and generates as the full layer would."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer
from tests.helpers import numpy

VARIANTS = {
    "global": {},
    "scope-5": {"scope": 5},
    "scope-5-dilated": {"scope": 5, "dilation_rate": 2},
    "content-only": {"position": None},
    "position-bias": {"scope": 3, "position_bias": True},
    "intra-depth-2": {"intra_depth": 2, "scope": 7},
}


def causal_layer(kwargs, length=50, channels=8):
    keras.utils.set_random_seed(0)
    layer = LambdaLayer(key_dim=4, num_heads=2, causal=True, **kwargs)
    layer.build((None, length, channels))
    rng = np.random.default_rng(1)
    for norm in (layer.query_norm, layer.value_norm):  # layer norms that matter
        norm.gamma.assign(rng.uniform(0.5, 1.5, norm.gamma.shape))
        norm.beta.assign(rng.normal(0, 0.3, norm.beta.shape))
    if layer.position_bias:
        layer.position_bias_weight.assign(rng.normal(size=layer.position_bias_weight.shape))
    return layer


@pytest.mark.parametrize("kwargs", VARIANTS.values(), ids=VARIANTS.keys())
def test_steps_give_the_full_sequence_s_outputs(kwargs):
    layer = causal_layer(kwargs)
    inputs = np.random.default_rng(2).normal(size=(3, 50, 8)).astype("float32")
    full = numpy(layer(inputs))
    state = layer.decoding_state(3)
    for position in range(50):
        outputs, state = layer.decode_step(inputs[:, position], state)
        np.testing.assert_allclose(numpy(outputs), full[:, position], rtol=1e-4,
                                   atol=1e-5 * np.abs(full).max(), err_msg=f"position {position}")


@pytest.mark.parametrize("kwargs", [{}, {"scope": 5}], ids=["global", "scope-5"])
def test_fifty_generated_steps_are_what_the_full_layer_computes(kwargs):
    """Each output, fed back as the next input, generates a sequence of 50; the full
    layer on that sequence gives the same outputs."""
    layer = causal_layer(kwargs)
    state = layer.decoding_state(2)
    current = np.random.default_rng(3).normal(size=(2, 8)).astype("float32")
    generated, outputs = [], []
    for _ in range(50):
        generated.append(current)
        output, state = layer.decode_step(current, state)
        outputs.append(numpy(output))
        current = np.tanh(numpy(output)).astype("float32")  # the next input
    full = numpy(layer(np.stack(generated, axis=1)))
    np.testing.assert_allclose(np.stack(outputs, axis=1), full, rtol=1e-4,
                               atol=1e-5 * np.abs(full).max())


def test_only_a_built_causal_layer_decodes():
    with pytest.raises(ValueError, match="needs a built causal LambdaLayer"):
        LambdaLayer(scope=3).decoding_state(1)
