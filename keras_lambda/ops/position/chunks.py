"""Key channels in chunks: how many the `fft` and `dft` kernels compute at a time, and
the loop that sums the chunks' position terms one chunk after the other, so that a
large input's lambdas `[b, n, k, v]` (or their spectra) never exist whole."""

from keras import ops

from keras_lambda.ops.position.common import batch_size, spatial_shape


# Floats of one key chunk's position lambdas on the kernel's grid (the FFT's v·k_c·ΠL,
# the DFT's 2F·W·v·k_c), per example: 8 MiB, so that a 128x128 input's FFT grid of
# [b, v, k, 256, 256] never exists whole.
KEY_CHUNK_FLOATS = 2**21
# On a GPU chunks cost speed (the FFT's steps ran faster unchunked at 64x64 and 128x128,
# benchmarks/records/gpu.md) and memory is larger: 128 MiB per example, so a global
# layer up to 128x128 (v = 32, k = 16) transforms every key channel at once.
GPU_KEY_CHUNK_FLOATS = 2**25


def largest_key_chunk(key_dim, floats_per_key, device=None):
    """The largest divisor of k whose chunk holds at most `KEY_CHUNK_FLOATS` floats per
    example (`GPU_KEY_CHUNK_FLOATS` with `device` "gpu"), `floats_per_key` a key channel
    (at least 1)."""
    limit = GPU_KEY_CHUNK_FLOATS if device == "gpu" else KEY_CHUNK_FLOATS
    budget = max(1, limit // floats_per_key)
    return max(chunk for chunk in range(1, key_dim + 1) if key_dim % chunk == 0 and chunk <= budget)


def sum_over_key_chunks(contract, queries, kernel, chunk, value_dim, chunk_sum):
    """Σ over chunks of k_c key channels of `contract(queries [b, n, h, k_c], kernel
    [k_c, ...])` → `[b, n, h, v]`, one chunk after the other (`chunk_sum`: the
    backend's, `fast_paths.fast_path("chunk_sum")`), or one call when k_c = k."""
    key_dim = kernel.shape[0]
    if key_dim % chunk:
        raise ValueError(f"`key_chunk` must divide k={key_dim}. Received: key_chunk={chunk}")
    if chunk == key_dim:
        return contract(queries, kernel)
    batch, (positions, heads) = batch_size(queries), spatial_shape(queries, 2)
    chunks = key_dim // chunk
    # [b, n, h, k] → [chunks, b, n, h, k_c]; kernel [k, ...] → [chunks, k_c, ...]
    queries = ops.reshape(queries, (batch, positions, heads, chunks, chunk))
    queries = ops.moveaxis(queries, -2, 0)
    kernel = ops.reshape(kernel, (chunks, chunk) + tuple(kernel.shape[1:]))

    def step(outputs, chunk_inputs):
        return outputs + contract(*chunk_inputs)

    initial = ops.zeros((batch, positions, heads, value_dim), queries.dtype)
    return chunk_sum(step, initial, (queries, kernel))


def chunk_sum_loop(step, initial, chunks):
    """`step(total, chunk)` folded over the leading axis of `chunks` (a tuple of
    tensors), one chunk after the other: a Python loop (eager on PyTorch).
    Not `keras.ops.scan`: on PyTorch, and eagerly on TensorFlow, it stacks a
    `[chunks, *total]` tensor of zeros for the outputs `step` does not return
    (1 GiB at 128x128)."""
    total = initial
    for index in range(chunks[0].shape[0]):
        total = step(total, tuple(chunk[index] for chunk in chunks))
    return total


def chunk_sum_scan(step, initial, chunks):
    """`chunk_sum_loop` as `keras.ops.scan` (JAX's `lax.scan`: one compiled loop
    body, so XLA keeps one chunk's buffers, not every chunk's)."""
    return ops.scan(lambda total, chunk: (step(total, chunk), None), initial, chunks)[0]


def chunk_sum_tensorflow(step, initial, chunks):
    """`chunk_sum_loop` as `tf.foldl`: a while loop that runs one chunk at a time
    (`parallel_iterations=1`), where a Python loop unrolls in a traced graph."""
    import tensorflow as tf

    return tf.foldl(step, chunks, initializer=initial, parallel_iterations=1)
