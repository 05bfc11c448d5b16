"""The `dft` kernel's position term in every chunking, its chunks kept or recomputed in
the backward pass, and its chunk size."""

import keras
import numpy as np
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


@pytest.mark.parametrize("values_shape, kernel_shape, dilation, causal", GEOMETRIES)
@pytest.mark.parametrize("recomputed", [False, True], ids=["kept", "recomputed"])
def test_dft_chunks_recomputed_in_the_backward_pass(monkeypatch, values_shape, kernel_shape,
                                                    dilation, causal, recomputed):
    """Each key chunk's lambdas recomputed in the backward pass (`keras.remat`, what JAX
    runs) or kept, on this backend: values and gradients of the numpy reference either way;
    the chunks are wrapped only on `RECOMPUTED_CHUNK_BACKENDS`, and only when there are
    chunks."""
    monkeypatch.setattr(dft, "RECOMPUTED_CHUNK_BACKENDS",
                        (keras.backend.backend(),) if recomputed else ())
    wrapped, remat = [], keras.remat
    monkeypatch.setattr(keras, "remat", lambda function: wrapped.append(function) or remat(function))

    def run(q, v, t):
        return dft.dft_position_output(q, v, t, dilation, causal, key_chunk=1)

    check_position_output(run, values_shape, kernel_shape, dilation, causal)
    assert bool(wrapped) is recomputed
    wrapped.clear()
    key_dim = kernel_shape[-2]
    queries = random((values_shape[0], int(np.prod(values_shape[1:-2])), 2, key_dim))
    dft.dft_position_output(queries, random(values_shape), random(kernel_shape), dilation,
                            causal, key_chunk=key_dim)  # one chunk: nothing to recompute
    assert not wrapped


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
