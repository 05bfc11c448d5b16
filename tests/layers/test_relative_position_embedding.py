"""keras_lambda.layers.RelativePositionEmbedding: the table, its geometry and crop."""

import numpy as np
import pytest

from keras_lambda.layers import RelativePositionEmbedding
from tests.helpers import numpy


def test_a_global_table_covers_every_offset_of_its_largest_input():
    table = RelativePositionEmbedding(key_dim=4, intra_depth=2, spatial_shape=(5, 7))
    table.build((None, 3, 3, 8))
    assert tuple(table.table.shape) == (9, 13, 4, 2) and table.max_spatial_shape == (5, 7)


def test_smaller_inputs_get_the_central_offsets():
    table = RelativePositionEmbedding(key_dim=2, spatial_shape=(4, 4))
    table.build((None, 4, 4, 8))
    values = np.arange(np.prod(table.table.shape), dtype="float32").reshape(table.table.shape)
    table.table.assign(values)
    kernel = numpy(table.kernel((2, 3)))
    assert kernel.shape == (3, 5, 2, 1)
    # offset 0 stays at the centre: rows 3 - 1 .. 3 + 1, columns 3 - 2 .. 3 + 2 of the 7x7 table
    np.testing.assert_array_equal(kernel, values[2:5, 1:6])
    np.testing.assert_array_equal(numpy(table.kernel((None, None))), values)


def test_a_scope_table_is_r_by_r_and_any_input_uses_it_whole():
    table = RelativePositionEmbedding(key_dim=3, scope=5)
    table.build((None, 40, 30, 8))
    assert tuple(table.table.shape) == (5, 5, 3, 1)
    assert numpy(table.kernel((64, 64))).shape == (5, 5, 3, 1)
    sequence = RelativePositionEmbedding(scope=7)
    sequence.build((None, 100, 8))
    assert tuple(sequence.table.shape) == (7, 16, 1)


def test_a_table_too_small_or_of_another_geometry_is_refused():
    table = RelativePositionEmbedding(key_dim=2, spatial_shape=(4, 4))
    table.build((None, 4, 4, 8))
    with pytest.raises(ValueError, match=r"Input spatial shape \(5, 4\) is larger than the \(4, 4\)"):
        table.kernel((5, 4))
    with pytest.raises(ValueError, match="has key_dim=3 but its shared embedding"):
        table.check_serves((None, 4, 4, 8), 3, 1, None, "lambda")
    with pytest.raises(ValueError, match="receives 1 spatial axes"):
        table.check_serves((None, 16, 8), 2, 1, None, "lambda")


def test_config_round_trip():
    table = RelativePositionEmbedding(key_dim=8, intra_depth=2, spatial_shape=(6, 6), name="t")
    restored = RelativePositionEmbedding.from_config(table.get_config())
    assert (restored.key_dim, restored.intra_depth, restored.scope, restored.spatial_shape,
            restored.name) == (8, 2, None, (6, 6), "t")


def bilinear_half_pixel(table, offsets):
    """numpy oracle: `table` [*R, k, u] resized along its spatial axes to `offsets`,
    axis by axis, sampling source coordinate (i + ½)·R/R' − ½ clamped to the table."""
    result = np.asarray(table, np.float64)
    for axis, size in enumerate(offsets):
        old = result.shape[axis]
        source = np.clip((np.arange(size) + 0.5) * old / size - 0.5, 0, old - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, old - 1)
        weight = (source - low).reshape((-1,) + (1,) * (result.ndim - axis - 1))
        result = (np.take(result, low, axis) * (1 - weight)
                  + np.take(result, high, axis) * weight)
    return result


def test_a_resampling_table_is_unchanged_at_its_size_and_resampled_beyond():
    table = RelativePositionEmbedding(key_dim=2, intra_depth=2, spatial_shape=(4, 3),
                                      larger_inputs="resample")
    table.build((None, 4, 3, 8))
    values = np.random.default_rng(0).normal(size=table.table.shape).astype("float32")
    table.table.assign(values)
    np.testing.assert_array_equal(numpy(table.kernel((4, 3))), values)
    np.testing.assert_array_equal(numpy(table.kernel((2, 3))), values[2:5])
    # (6, 3): 11 row offsets from 7, the 5 column offsets as they are.
    np.testing.assert_allclose(numpy(table.kernel((6, 3))),
                               bilinear_half_pixel(values, (11, 5)), rtol=1e-5, atol=1e-6)
    # offset 0 stays at the centre
    np.testing.assert_allclose(numpy(table.kernel((6, 3)))[5], values[3], rtol=1e-6)
    sequence = RelativePositionEmbedding(spatial_shape=(5,), larger_inputs="resample")
    sequence.build((None, 5, 8))
    np.testing.assert_allclose(numpy(sequence.kernel((8,))),
                               bilinear_half_pixel(numpy(sequence.table), (15,)), rtol=1e-5,
                               atol=1e-6)


def test_the_option_is_checked_and_kept_in_the_config():
    with pytest.raises(ValueError, match=r"`larger_inputs` must be one of 'error', 'resample'"):
        RelativePositionEmbedding(larger_inputs="bicubic")
    table = RelativePositionEmbedding(spatial_shape=(4, 4), larger_inputs="resample")
    assert RelativePositionEmbedding.from_config(table.get_config()).larger_inputs == "resample"
