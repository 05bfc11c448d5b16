"""The `dft` kernel's position term in every chunking, and its chunk size."""

import pytest

from keras_lambda.ops.position import dft
from tests.ops.position.checks import GEOMETRIES, check_position_output, random


@pytest.mark.parametrize("values_shape, kernel_shape, dilation, causal", GEOMETRIES)
@pytest.mark.parametrize("key_chunk", [None, 1, 2])
def test_dft_position_output_in_every_chunking(values_shape, kernel_shape, dilation, causal,
                                               key_chunk):
    """The DFT-and-Toeplitz kernel, its key channels at once or a chunk at a time."""
    def run(q, v, t):
        return dft.dft_position_output(q, v, t, dilation, causal, key_chunk=key_chunk)

    check_position_output(run, values_shape, kernel_shape, dilation, causal)


def test_dft_key_chunk_keeps_a_chunk_within_budget():
    # 2F·W·v·k_c <= 2^21 floats, F = (H + reach) // 2 + 1: 32x32 global (F = 32) all 16
    # at once, 64x64 (F = 64) 8, 128x128 (F = 128) 2.
    assert dft.dft_key_chunk(32, 16, (32, 32), 63) == 16
    assert dft.dft_key_chunk(32, 16, (64, 64), 127) == 8
    assert dft.dft_key_chunk(32, 16, (128, 128), 255) == 2
    assert dft.dft_key_chunk(32, 12, (64, 64), 127) == 6  # a divisor of k: 8 would fit
    with pytest.raises(ValueError, match="`key_chunk` must divide k=4"):
        dft.dft_position_output(random((1, 4, 2)), random((1, 4, 2, 1)),
                                random((7, 4, 1)), key_chunk=3)
