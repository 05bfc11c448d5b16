"""The `fft` kernel: the position lambdas as one FFT convolution, O(n log n) for any
scope, and its query-first form that contracts them with the queries a chunk of key
channels at a time."""

import math

from keras import ops

from keras_lambda.ops import devices
from keras_lambda.ops.position.chunks import largest_key_chunk, sum_over_key_chunks
from keras_lambda.ops.position.common import (
    batch_size,
    clipped_kernel,
    compute_dtype,
    known_spatial,
)
from keras_lambda.ops.position.fast_paths import PORTABLE, fast_path
from keras_lambda.ops.position.spectra import fast_fft_length


def _fft_operands(values, kernel, dilation_rate, causal):
    """values `[b, *S, v, u]`, kernel `[*r, k, u]` → (values `[b, v, u, *S]`, kernel
    `[k, u, *L]` with offset o at index o mod L, the grid L), in float32 at least."""
    rank = len(values.shape) - 3
    spatial = known_spatial(values, "fft")
    working_dtype = compute_dtype(values)
    values, kernel = ops.cast(values, working_dtype), ops.cast(kernel, working_dtype)
    # Spatial axes last: values [b, v, u, *S], kernel [k, u, *t].
    values = ops.transpose(values, (0, rank + 1, rank + 2) + tuple(range(1, rank + 1)))
    kernel, reaches = clipped_kernel(kernel, spatial, dilation_rate, causal)
    lengths = tuple(fast_fft_length(size + reach) for size, reach in zip(spatial, reaches))
    for axis, reach in enumerate(reaches):
        # Offset o at index o mod L: pad to L, then roll the centre to index 0.
        padding = [[0, 0]] * len(kernel.shape)
        padding[2 + axis] = [0, lengths[axis] - (2 * reach + 1)]
        kernel = ops.roll(ops.pad(kernel, padding), -reach, axis=2 + axis)
    return values, kernel, lengths


def _fft_steps(portable):
    """(spectrum, correlate): the backend's fast paths, or the portable ones."""
    if portable:
        return PORTABLE["fft_spectrum"], PORTABLE["fft_correlate"]
    return fast_path("fft_spectrum"), fast_path("fft_correlate")


def _value_slots(values_hat):
    """A values spectrum `[b, v, u, *F]` (complex, or a (real, imag) pair) as u
    spectra `[b, v, *F]`: split once, outside any loop over key chunks, so that a
    backward pass keeps one copy (a slice's gradient would also pad every time)."""
    if isinstance(values_hat, tuple):
        return list(zip(*(ops.unstack(part, axis=2) for part in values_hat)))
    return ops.unstack(values_hat, axis=2)


def fft_position_lambdas(values, kernel, dilation_rate=1, causal=False, portable=False):
    """The position lambdas as one FFT convolution: O(n log n), for any scope.

    values `[b, *S, v, u]`, kernel `[*r, k, u]` → λp `[b, *S, v, k]`, computed
    as the circular cross-correlation of V with T on a grid of L >= s + c per
    axis (c the kernel radius within the input), large enough that no offset
    wraps around. Runs in float32 at least (FFTs have no half-precision kernels).
    Needs known spatial sizes. `portable=True` uses the keras.ops path on
    TensorFlow too (for tests; it is the only path on other backends).

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import fft_position_lambdas

    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(5, 5, 16, 1).astype("float32")       # a scope of 5: [r, r, k, u]
    print(fft_position_lambdas(values, table).shape)   # (2, 8, 8, 32, 16): [b, H, W, v, k]
    ```
    """
    rank = len(values.shape) - 3
    spatial, dtype = tuple(values.shape[1 : 1 + rank]), values.dtype
    values, kernel, lengths = _fft_operands(values, kernel, dilation_rate, causal)
    spectrum, correlate = _fft_steps(portable)
    lambdas = correlate(_value_slots(spectrum(values, lengths)), spectrum(kernel, lengths),
                        lengths, spatial)  # [b, v, k, *S]
    lambdas = ops.transpose(lambdas, (0,) + tuple(range(3, 3 + rank)) + (1, 2))
    return ops.cast(lambdas, dtype)


def fft_key_chunk(value_dim, key_dim, lengths, device=None):
    """How many key channels k_c `fft_position_output` transforms at a time: the
    largest divisor of k that keeps v·k_c·ΠL within `KEY_CHUNK_FLOATS` (at least 1;
    on a GPU, `device` "gpu", within `GPU_KEY_CHUNK_FLOATS`).

    Example:
    ```python
    from keras_lambda.ops import fft_key_chunk

    print(fft_key_chunk(32, 16, (256, 256)))    # key channels a chunk at 128 x 128 (global)
    print(fft_key_chunk(32, 16, (32, 32)))      # 16: small inputs transform every key at once
    print(fft_key_chunk(32, 16, (256, 256), device="gpu"))   # 16: a GPU's budget is larger
    ```
    """
    return largest_key_chunk(key_dim, value_dim * math.prod(lengths), device)


def fft_position_output(queries, values, kernel, dilation_rate=1, causal=False,
                        portable=False, key_chunk=None):
    """`fft_position_lambdas` contracted with the queries, k_c key channels at a
    time (`fft_key_chunk`, or `key_chunk`, a divisor of k), one chunk after the
    other (the backend's `chunk_sum`): the spectra and lambdas `[b, v, k, *L]` of a large
    input never exist whole, in the forward pass or the backward.

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]` →
    `[b, n, h, v]`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import fft_position_output

    queries = np.random.rand(2, 64, 4, 16).astype("float32")    # [b, n, h, k], n = 8 x 8
    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(15, 15, 16, 1).astype("float32")     # global: [2H - 1, 2W - 1, k, u]
    print(fft_position_output(queries, values, table, key_chunk=4).shape)   # (2, 64, 4, 32)
    ```
    """
    rank = len(values.shape) - 3
    spatial, dtype = tuple(values.shape[1 : 1 + rank]), values.dtype
    batch = batch_size(values)
    values, kernel, lengths = _fft_operands(values, kernel, dilation_rate, causal)
    spectrum, correlate = _fft_steps(portable)
    value_slots = _value_slots(spectrum(values, lengths))
    value_dim, key_dim = values.shape[1], kernel.shape[0]
    chunk = key_chunk or fft_key_chunk(value_dim, key_dim, lengths, devices.kind(values))
    queries = ops.cast(queries, values.dtype)

    def contract(queries, kernel):  # queries [b, n, h, k_c], kernel [k_c, u, *L]
        lambdas = correlate(value_slots, spectrum(kernel, lengths), lengths, spatial)
        lambdas = ops.reshape(lambdas, (batch, value_dim, kernel.shape[0], -1))
        # [b, n, h, k_c] @ [b, n, k_c, v]: a batched matmul after one transpose,
        # where TensorFlow's einsum transposes both operands.
        return ops.matmul(queries, ops.transpose(lambdas, (0, 3, 2, 1)))

    outputs = sum_over_key_chunks(contract, queries, kernel, chunk, value_dim,
                                  fast_path("chunk_sum"))
    return ops.cast(outputs, dtype)
