"""A global lambda layer serving inputs larger than its table (`larger_inputs="resample"`):
values and gradients against the numpy reference of the paper's formula, fed the table
resampled by an independent numpy bilinear resize; translation equivariance kept."""

import keras
import numpy as np

from keras_lambda.layers import LambdaLayer, RelativePositionEmbedding
from tests import reference
from tests.helpers import layer_gradients, numpy
from tests.layers.test_relative_position_embedding import bilinear_half_pixel

BUILT, LARGER = (4, 3), (6, 5)


def resampling_layer():
    keras.utils.set_random_seed(2)
    table = RelativePositionEmbedding(key_dim=3, spatial_shape=BUILT, larger_inputs="resample")
    layer = LambdaLayer(key_dim=3, num_heads=2, embedding=table, implementation="einsum")
    layer.build((None, *BUILT, 6))
    return layer


def reference_output(layer, inputs, table):
    weights = {**reference.layer_weights(layer), "table": table}
    return reference.lambda_layer(inputs, weights, 2, 3, 1, training=True)


def test_values_and_gradients_match_the_reference_of_the_resampled_table():
    layer = resampling_layer()
    inputs = np.random.default_rng(0).normal(size=(2, *LARGER, 6)).astype("float32")
    probe = np.random.default_rng(1).normal(size=(2, *LARGER, 6))
    stored = numpy(layer.embedding.table).astype(np.float64)
    offsets = tuple(2 * size - 1 for size in LARGER)

    def objective(table):
        return float((reference_output(layer, inputs, bilinear_half_pixel(table, offsets))
                      * probe).sum())

    expected = reference_output(layer, inputs, bilinear_half_pixel(stored, offsets))
    np.testing.assert_allclose(numpy(layer(inputs, training=True)), expected,
                               rtol=1e-4, atol=1e-4)
    value, (_, table_gradient) = layer_gradients(layer, inputs, probe, [layer.embedding.table])
    assert np.isclose(value, objective(stored), rtol=1e-4)
    # The output is affine in the table, so a unit step gives the exact derivative.
    base = objective(stored)
    for index in range(0, stored.size, 5):
        step = np.zeros(stored.size)
        step[index] = 1.0
        derivative = objective(stored + step.reshape(stored.shape)) - base
        assert np.isclose(table_gradient.ravel()[index], derivative, rtol=1e-3, atol=1e-3)


def test_at_the_built_size_nothing_changes():
    layer = resampling_layer()
    inputs = np.random.default_rng(3).normal(size=(2, *BUILT, 6)).astype("float32")
    np.testing.assert_allclose(
        numpy(layer(inputs, training=True)),
        reference_output(layer, inputs, numpy(layer.embedding.table)),
        rtol=1e-4, atol=1e-4)


def test_a_resampled_layer_stays_translation_equivariant():
    """A pattern moved on an empty canvas far larger than the table: the outputs move
    with it (zero inputs give zero queries and values with fresh batch norms)."""
    layer = resampling_layer()
    pattern = np.random.default_rng(0).normal(size=(1, 3, 3, 6)).astype("float32")
    canvas = np.zeros((1, 12, 12, 6), "float32")
    moved = canvas.copy()
    canvas[:, 1:4, 2:5] = pattern
    moved[:, 8:11, 6:9] = pattern  # shifted by (7, 4)
    original, shifted = numpy(layer(canvas)), numpy(layer(moved))
    np.testing.assert_allclose(shifted[:, 8:11, 6:9], original[:, 1:4, 2:5], rtol=1e-5, atol=1e-5)
    assert np.abs(original[:, 1:4, 2:5]).max() > 0.1
