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
