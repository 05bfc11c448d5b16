"""The `dft` kernel: the position lambdas by matrix products only (a DFT over H as
matrices, a banded Toeplitz product over W per frequency, the inverse DFT over H),
O(n·W) per channel: between the einsum's sizes and the FFT's."""

import keras
from keras import ops

from keras_lambda.ops.position import dft_matrices as dft
from keras_lambda.ops.position.chunks import largest_key_chunk, sum_over_key_chunks
from keras_lambda.ops.position.common import (
    batch_size,
    clipped_kernel,
    compute_dtype,
    known_spatial,
)
from keras_lambda.ops.position.fast_paths import fast_path


# Backends on which each key chunk's lambdas are recomputed in the backward pass instead of
# kept (`keras.remat` around a chunk): JAX, where the step then holds about half the memory
# and is no slower (CPU races, benchmarks/history/profile.md "The dft's chunks recomputed on
# JAX"). Not TensorFlow, where `tf.recompute_grad` made the step slower.
RECOMPUTED_CHUNK_BACKENDS = ("jax",)


def _matmul(a, b):
    """`ops.matmul`, but float64 stays float64 (Keras's matmul computes float64 in
    float32 on PyTorch; its einsum keeps it)."""
    if keras.backend.standardize_dtype(a.dtype) == "float64":
        return ops.einsum("...ij,...jk->...ik", a, b)
    return ops.matmul(a, b)


def _dft_operands(values, kernel, dilation_rate, causal):
    """values `[b, *S, v, u]`, kernel `[*r, k, u]` → (the values' DFT over H
    `[F, 2·W·u, b·v]`, rows (re/im, m_w, u); kernel taps `[k, u, t_h, t_w]`; and
    the geometry `_dft_lambdas` takes: (H, W), (reach_h, reach_w), L, v), in float32
    at least. A sequence is an image of one row."""
    if len(values.shape) == 4:
        values, kernel = ops.expand_dims(values, 1), ops.expand_dims(kernel, 0)
    spatial = known_spatial(values, "dft")
    working_dtype = compute_dtype(values)
    values, kernel = ops.cast(values, working_dtype), ops.cast(kernel, working_dtype)
    kernel, reaches = clipped_kernel(kernel, spatial, dilation_rate, causal)
    (height, width), (value_dim, intra_depth) = spatial, values.shape[-2:]
    length = height + reaches[0]
    forward = ops.convert_to_tensor(dft.forward_matrix(height, length), working_dtype)
    values = ops.reshape(ops.transpose(values, (1, 2, 4, 0, 3)), (height, -1))  # [H, W·u·b·v]
    values_hat = ops.reshape(_matmul(forward, values),
                             (dft.frequencies(length), 2 * width * intra_depth, -1))
    return values_hat, kernel, (spatial, reaches, length, value_dim)


def dft_position_lambdas(values, kernel, dilation_rate=1, causal=False):
    """The position lambdas by matrix products only: the DFT over H as matrices
    (on L = H + reach points, no FFT), a banded Toeplitz product over W per
    frequency, the inverse DFT over H (`_dft_lambdas`). O(n·W) per channel against
    the einsum's O(n²): between the einsum's sizes and the FFT's.

    values `[b, *S, v, u]`, kernel `[*r, k, u]` → λp `[b, *S, v, k]`. Needs known
    spatial sizes.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import dft_position_lambdas

    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(5, 5, 16, 1).astype("float32")       # a scope of 5: [r, r, k, u]
    print(dft_position_lambdas(values, table).shape)   # (2, 8, 8, 32, 16): [b, H, W, v, k]
    ```
    """
    rank, dtype = len(values.shape) - 3, values.dtype
    values_hat, kernel, geometry = _dft_operands(values, kernel, dilation_rate, causal)
    lambdas = _dft_lambdas(values_hat, kernel, *geometry)  # [H, k, W, b, v]
    lambdas = ops.transpose(lambdas, (3, 0, 2, 4, 1))  # [b, H, W, v, k]
    if rank == 1:
        lambdas = ops.squeeze(lambdas, axis=1)
    return ops.cast(lambdas, dtype)


def dft_key_chunk(value_dim, key_dim, spatial, length):
    """How many key channels k_c `dft_position_output` computes at a time: the largest
    divisor of k that keeps one chunk's lambdas on the DFT grid, 2F·W·v·k_c floats
    per example, within `KEY_CHUNK_FLOATS` (at least 1)."""
    return largest_key_chunk(key_dim, 2 * dft.frequencies(length) * spatial[-1] * value_dim)


def dft_position_output(queries, values, kernel, dilation_rate=1, causal=False,
                        key_chunk=None):
    """`dft_position_lambdas` contracted with the queries, k_c key channels at a time
    (`dft_key_chunk`, or `key_chunk`, a divisor of k), one chunk after the other; on
    `RECOMPUTED_CHUNK_BACKENDS` each chunk's lambdas are recomputed in the backward pass.

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]` →
    `[b, n, h, v]`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import dft_position_output

    queries = np.random.rand(2, 64, 4, 16).astype("float32")    # [b, n, h, k], n = 8 x 8
    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(15, 15, 16, 1).astype("float32")     # global: [2H - 1, 2W - 1, k, u]
    print(dft_position_output(queries, values, table).shape)    # (2, 64, 4, 32): [b, n, h, v]
    ```
    """
    dtype, batch = values.dtype, batch_size(values)
    values_hat, kernel, geometry = _dft_operands(values, kernel, dilation_rate, causal)
    spatial, _, length, value_dim = geometry
    key_dim = kernel.shape[0]
    chunk = key_chunk or dft_key_chunk(value_dim, key_dim, spatial, length)
    queries = ops.cast(queries, values_hat.dtype)

    def chunk_output(queries, kernel, values_hat):  # [b, n, h, k_c], [k_c, u, t_h, t_w], ...
        lambdas = ops.transpose(_dft_lambdas(values_hat, kernel, *geometry), (3, 0, 2, 1, 4))
        lambdas = ops.reshape(lambdas, (batch, -1, kernel.shape[0], value_dim))  # [b, n, k_c, v]
        return _matmul(queries, lambdas)

    if chunk < key_dim and keras.backend.backend() in RECOMPUTED_CHUNK_BACKENDS:
        # Every tensor an argument: TensorFlow's recompute_grad has no gradient for a
        # tensor the function only closes over.
        chunk_output = keras.remat(chunk_output)
    outputs = sum_over_key_chunks(
        lambda queries, kernel: chunk_output(queries, kernel, values_hat),
        queries, kernel, chunk, value_dim, fast_path("chunk_sum"))
    return ops.cast(outputs, dtype)


def _dft_lambdas(values_hat, kernel, spatial, reaches, length, value_dim):
    """The position lambdas of the key channels in `kernel` (taps `[k_c, u, t_h,
    t_w]`) → `[H, k_c, W, b, v]`: per frequency f of H, the conjugate kernel's
    transform as a banded Toeplitz matrix over W, `[2·k_c·W, 2·W·u]` in real blocks
    [[Re, −Im], [Im, Re]], times the values' transform `[2·W·u, b·v]`; then the
    inverse DFT over H, cropped. All matmuls."""
    (height, width), (reach_h, reach_w) = spatial, reaches
    keys, intra_depth, taps_h, taps_w = kernel.shape
    freqs = dft.frequencies(length)
    offsets = ops.convert_to_tensor(dft.conjugate_offsets_matrix(reach_h, length), kernel.dtype)
    taps = ops.reshape(ops.transpose(kernel, (2, 3, 0, 1)), (taps_h, -1))  # [t_h, t_w·k_c·u]
    spectrum = ops.reshape(_matmul(offsets, taps), (freqs, 2, taps_w, keys, intra_depth))
    spectrum = ops.pad(spectrum, [[0, 0], [0, 0], [0, 1], [0, 0], [0, 0]])  # a zero tap
    # The real blocks built on the taps, then one gather: slicing and stacking the
    # gathered matrices instead (their gradients fill zeros the matrices' size) made the
    # layer's step slower (TensorFlow races, benchmarks/history/history.md).
    real, imag = spectrum[:, 0], spectrum[:, 1]  # [F, t_w + 1, k_c, u]
    taps = ops.stack([ops.stack([real, -imag], axis=1), ops.stack([imag, real], axis=1)], axis=1)
    blocks = ops.take(taps, dft.band_index(width, reach_w), axis=3)  # [F, 2, 2, n, m, k_c, u]
    blocks = ops.transpose(blocks, (0, 1, 5, 3, 2, 4, 6))  # [F, 2, k_c, n_w, 2, m_w, u]
    blocks = ops.reshape(blocks, (freqs, 2 * keys * width, 2 * width * intra_depth))
    lambdas_hat = ops.reshape(_matmul(blocks, values_hat), (2 * freqs, -1))  # rows (f, re/im)
    inverse = ops.convert_to_tensor(dft.cropped_inverse_matrix(height, length), kernel.dtype)
    return ops.reshape(_matmul(inverse, lambdas_hat), (height, keys, width, -1, value_dim))
