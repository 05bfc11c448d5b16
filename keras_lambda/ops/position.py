"""Position lambdas: the relative-position term of the lambda layer.

Every kernel here computes, for each query position n,

    λp_n = Σ_m E_{n,m} V_m          E_{n,m} = T[(m − n) / dilation + centre]

with V the values `[b, *S, v, u]` (S the spatial axes: `(n,)` for sequences,
`(H, W)` for images), T a relative table `[*r, k, u]` (r odd per axis, offset 0 at
its centre) and E zero for offsets outside the table, between dilation steps, past
the borders (zero padding) and, when `causal`, for m > n. The global relative
lambda of the paper is the case where the table covers every offset of the input
(r = 2H − 1): it is a convolution too, so no kernel but `einsum` ever builds the
`[n, m, k]` tensor, `fft` computes it in O(n log n), and `dft` by matmuls alone (a
DFT over H as matrices, a banded Toeplitz product over W: O(n·W), large matmuls,
fastest in between).

All kernels return λp laid out `[b, *S, v, k]` (what the convolutions produce
natively); `position_output`, what the layer calls, contracts it with the queries
over k, or hands the queries to the kernel's `QUERY_FIRST` form: `fft`'s and `dft`'s
contract a chunk of key channels at a time, so that large grids never exist whole; `einsum`'s
contracts the queries with E first where races found that faster (small n, large v).
They are stateless,
take and return tensors, and are written in `keras.ops` so they run on every
Keras 3 backend (`depthwise` is `tf.nn.depthwise_conv2d` on TensorFlow). Backend
fast paths sit in one table, `FAST_PATHS` (today: `fft`'s correlation through
`tf.signal`'s 2-D real FFTs on complex tensors, 2x faster than the portable path
at 64x64; on PyTorch's CPU the same through torch.fft; on JAX's CPU the portable
correlation one key channel at a time; the loop over key chunks as `tf.foldl` and
`lax.scan`), each tested against the portable code.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_lambda.ops import devices, dft
from keras_lambda.ops.embeddings import dense_embeddings


def spatial_shape(x, rank):
    """The spatial sizes of x `[b, *S, ...]`, static where known."""
    dynamic = ops.shape(x)
    return tuple(
        x.shape[1 + axis] if x.shape[1 + axis] is not None else dynamic[1 + axis]
        for axis in range(rank)
    )


def batch_size(x):
    return x.shape[0] if x.shape[0] is not None else ops.shape(x)[0]


def _causal_crop(values, kernel, dilation_rate):
    """Keeps offsets <= 0 of a 1-D kernel and left-pads the sequence to match.

    values `[b, n, ...]`, kernel `[r, k, u]` → (values `[b, n + c·dilation, ...]`,
    kernel `[c + 1, k, u]`) with c = (r − 1) / 2, ready for a 'valid' convolution.
    """
    radius = (kernel.shape[0] - 1) // 2
    padding = [[0, 0]] * len(values.shape)
    padding[1] = [radius * dilation_rate, 0]
    return ops.pad(values, padding), kernel[: radius + 1]


def einsum_position_lambdas(values, kernel, dilation_rate=1, causal=False):
    """The paper's pseudo-code: einsum of materialised E `[n, m, k, u]` with V.

    values `[b, *S, v, u]`, kernel `[*r, k, u]` → λp `[b, *S, v, k]`.
    """
    rank = len(values.shape) - 3
    spatial = spatial_shape(values, rank)
    embeddings = dense_embeddings(kernel, spatial, dilation_rate, causal)
    batch = batch_size(values)
    value_dim, intra_depth = values.shape[-2:]
    flat_values = ops.reshape(values, (batch, -1, value_dim, intra_depth))
    lambdas = ops.einsum("nmku,bmvu->bnvk", embeddings, flat_values)
    return ops.reshape(lambdas, (batch,) + spatial + (value_dim, kernel.shape[-2]))


# Queries first while the weights [b, n, h, m] are at most this many times the
# lambdas [b, n, k, v] (h·m <= c·k·v), per backend: races of the layer's train step
# in benchmarks/profile.md ("The einsum's order"). PyTorch: ties at v = 32 and 64.
QUERIES_FIRST_WEIGHTS_PER_LAMBDA = {"tensorflow": 7.0, "jax": 2.0}


def einsum_queries_first(num_heads, key_dim, value_dim, positions, backend=None):
    """Whether `einsum_position_output` contracts the queries with E first on
    `backend` (default: Keras's): where that takes fewer flops (h·(k + v) < k·v)
    and its weights `[b, n, h, m]` stay within the backend's
    `QUERIES_FIRST_WEIGHTS_PER_LAMBDA` times the lambdas `[b, n, k, v]` (beyond, it
    lost its races); lambdas first for an unknown n and on other backends."""
    bound = QUERIES_FIRST_WEIGHTS_PER_LAMBDA.get(backend or keras.backend.backend())
    return (
        bound is not None
        and isinstance(positions, int)
        and num_heads * (key_dim + value_dim) < key_dim * value_dim
        and num_heads * positions <= bound * key_dim * value_dim
    )


def einsum_position_output(queries, values, kernel, dilation_rate=1, causal=False,
                           queries_first=None):
    """The `einsum` kernel's position term, its contractions in the faster order
    (`einsum_queries_first`, unless `queries_first` says). Lambdas first, the
    pseudo-code: λp = E·V, then q·λp, 2·b·n·m·k·v·u flops. Queries first: weights
    q·E `[b, n, h, m, u]`, then with V, 2·b·n·m·h·(k + v)·u flops (0.375 of the
    other at h = 4, k = 16, v = 32).

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]` →
    `[b, n, h, v]`.
    """
    rank = len(values.shape) - 3
    spatial = spatial_shape(values, rank)
    heads, key_dim = queries.shape[2], kernel.shape[-2]
    batch, (value_dim, intra_depth) = batch_size(values), values.shape[-2:]
    positions = math.prod(spatial) if all(isinstance(s, int) for s in spatial) else None
    if queries_first is None:
        queries_first = einsum_queries_first(heads, key_dim, value_dim, positions)
    if not queries_first:
        return contract_queries(queries, einsum_position_lambdas(values, kernel, dilation_rate,
                                                                 causal))
    embeddings = dense_embeddings(kernel, spatial, dilation_rate, causal)  # [n, m, k, u]
    flat_values = ops.reshape(values, (batch, positions, value_dim, intra_depth))
    if intra_depth == 1:  # no u axis: plain batched matmuls
        # Reshapes, not slices, drop u: a slice's gradient is a copy of all of E.
        embeddings = ops.reshape(embeddings, (positions, positions, key_dim))
        flat_values = ops.reshape(flat_values, (batch, positions, value_dim))
        # Batched over n as `[n, b·h, k] x [n, k, m]` (one matmul per query position):
        # 1.11-1.14x TensorFlow's own einsum of the same product in the layer's step, a
        # tie on JAX (benchmarks/profile.md, "The einsum's order").
        by_position = ops.reshape(ops.transpose(queries, (1, 0, 2, 3)), (positions, -1, key_dim))
        weights = ops.matmul(by_position, ops.swapaxes(embeddings, 1, 2))  # [n, b·h, m]
        weights = ops.transpose(ops.reshape(weights, (positions, -1, heads, positions)),
                                (1, 0, 2, 3))  # [b, n, h, m]
        return ops.einsum("bnhm,bmv->bnhv", weights, flat_values)
    weights = ops.einsum("bnhk,nmku->bnhmu", queries, embeddings)
    return ops.einsum("bnhmu,bmvu->bnhv", weights, flat_values)


def conv_position_lambdas(values, kernel, dilation_rate=1, causal=False):
    """Values as an extra spatial axis: one (rank + 1)-D convolution, u → k channels.

    values `[b, *S, v, u]` convolved with `[*r, 1, u, k]` (conv3d for images,
    conv2d for sequences) → λp `[b, *S, v, k]`.
    """
    rank = len(values.shape) - 3
    padding = "same"
    if causal:
        values, kernel = _causal_crop(values, kernel, dilation_rate)
        padding = "valid"
    # [*r, k, u] → [*r, 1, u, k]: the value axis v is a spatial axis of size 1.
    conv_kernel = ops.expand_dims(ops.swapaxes(kernel, -1, -2), rank)
    return ops.conv(
        values,
        conv_kernel,
        padding=padding,
        dilation_rate=(dilation_rate,) * rank + (1,),
    )


def depthwise_position_lambdas(values, kernel, dilation_rate=1, causal=False):
    """The paper's depthwise formulation: the table tiled over the value channels.

    values `[b, *S, v·u]` run through a depthwise convolution with kernel
    `[*r, v·u, k]` (channel multiplier k), then summed over u → λp `[b, *S, v, k]`.
    """
    rank = len(values.shape) - 3
    value_dim, intra_depth = values.shape[-2:]
    key_dim = kernel.shape[-2]
    padding = "same"
    if causal:
        values, kernel = _causal_crop(values, kernel, dilation_rate)
        padding = "valid"
    spatial = spatial_shape(values, rank)
    batch = batch_size(values)
    channels = ops.reshape(values, (batch,) + spatial + (value_dim * intra_depth,))
    # [*r, k, u] → [*r, u, k] → tiled [*r, v, u, k] → [*r, v·u, k]
    table = ops.swapaxes(kernel, -1, -2)
    tiled = ops.broadcast_to(
        ops.expand_dims(table, rank), kernel.shape[:rank] + (value_dim, intra_depth, key_dim)
    )
    depthwise_kernel = ops.reshape(
        tiled, kernel.shape[:rank] + (value_dim * intra_depth, key_dim)
    )
    lambdas = ops.depthwise_conv(
        channels, depthwise_kernel, padding=padding, dilation_rate=dilation_rate
    )
    if causal:
        spatial = spatial_shape(lambdas, rank)
    lambdas = ops.reshape(lambdas, (batch,) + spatial + (value_dim, intra_depth, key_dim))
    return ops.sum(lambdas, axis=-2)


def _fast_fft_length(minimum):
    """The smallest 2^a·3^b·5^c >= minimum (FFTs are fastest on smooth sizes)."""
    length = minimum
    while True:
        rest = length
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return length
        length += 1


def kernel_reaches(spatial_shape, kernel_shape, dilation_rate=1):
    """Per axis, the kernel's radius (after dilation) clipped to the offsets that
    meet the input (s − 1)."""
    return tuple(min((taps - 1) * dilation_rate // 2, size - 1)
                 for size, taps in zip(spatial_shape, kernel_shape))


def fft_lengths(spatial_shape, kernel_shape, dilation_rate=1):
    """Per axis, the grid `fft_position_lambdas` transforms on: the smallest
    smooth L >= s + reach (`kernel_reaches`)."""
    reaches = kernel_reaches(spatial_shape, kernel_shape, dilation_rate)
    return tuple(_fast_fft_length(size + reach) for size, reach in zip(spatial_shape, reaches))


def _rfftn(x, lengths):
    """Real FFT over the last 1 or 2 axes of x, zero-padded to `lengths`.

    `[..., L]` → complex `[..., L/2 + 1]`; `[..., L_h, L_w]` → complex
    `[..., L_w/2 + 1, L_h]` (the H axis is moved last). Returns (real, imag).
    """
    if len(lengths) == 1:
        return ops.rfft(x, fft_length=lengths[0])
    real, imag = ops.rfft(x, fft_length=lengths[1])  # [..., H, F_w]
    real, imag = ops.swapaxes(real, -1, -2), ops.swapaxes(imag, -1, -2)
    padding = [[0, 0]] * (len(x.shape) - 1) + [[0, lengths[0] - x.shape[-2]]]
    return ops.fft((ops.pad(real, padding), ops.pad(imag, padding)))


def _cropped_irfftn(spectrum, lengths, spatial):
    """Inverse of `_rfftn`, cropped: the real signal's first `spatial` `[..., *S]`
    of the grid `[..., *lengths]`. In 2-D the rows beyond S_h are dropped between
    the two inverse transforms, so the one over W runs on S_h rows, not L_h."""
    real, imag = spectrum
    if len(lengths) == 2:
        # Inverse complex FFT over H as conj(fft(conj(x))) / L_h.
        real, imag = ops.fft((real, -imag))
        rows = slice(0, spatial[0])
        real, imag = real[..., rows] / lengths[0], -imag[..., rows] / lengths[0]
        real, imag = ops.swapaxes(real, -1, -2), ops.swapaxes(imag, -1, -2)
    return ops.irfft((real, imag), fft_length=lengths[-1])[..., : spatial[-1]]


def _dilate(kernel, axis, dilation_rate):
    """Inserts dilation_rate − 1 zeros between the taps of `kernel` along `axis`."""
    if dilation_rate == 1:
        return kernel
    size = kernel.shape[axis]
    taps = ops.expand_dims(kernel, axis + 1)
    zeros_shape = list(taps.shape)
    zeros_shape[axis + 1] = dilation_rate - 1
    spaced = ops.concatenate([taps, ops.zeros(zeros_shape, kernel.dtype)], axis=axis + 1)
    new_shape = list(kernel.shape)
    new_shape[axis] = size * dilation_rate
    spaced = ops.reshape(spaced, new_shape)
    return ops.take(spaced, ops.arange((size - 1) * dilation_rate + 1), axis=axis)


def _clipped_kernel(kernel, spatial, dilation_rate, causal):
    """kernel `[*r, k, u]` → (kernel `[k, u, *t]`, reaches): per axis dilated, then
    clipped to the offsets that meet an input of `spatial` sizes (t = 2·reach + 1
    taps, offset 0 at the centre, one index per offset), offsets > 0 zeroed when
    `causal`."""
    rank = len(spatial)
    kernel = ops.transpose(kernel, (rank, rank + 1) + tuple(range(rank)))
    reaches = []
    for axis, size in enumerate(spatial):
        kernel_axis = 2 + axis
        kernel = _dilate(kernel, kernel_axis, dilation_rate)
        radius = (kernel.shape[kernel_axis] - 1) // 2
        reach = min(radius, size - 1)  # offsets beyond the input meet zeros only
        kernel = ops.take(kernel, ops.arange(radius - reach, radius + reach + 1), axis=kernel_axis)
        if causal:  # keep offsets <= 0 (the first reach + 1 taps)
            mask = ops.cast(ops.arange(2 * reach + 1) <= reach, kernel.dtype)
            kernel = kernel * mask
        reaches.append(reach)
    return kernel, tuple(reaches)


def _known_spatial(values, implementation):
    """The spatial sizes of values `[b, *S, v, u]`; a ValueError if any is unknown."""
    spatial = tuple(values.shape[1:-2])
    if any(size is None for size in spatial):
        raise ValueError(
            f"implementation='{implementation}' needs a known spatial size; received values "
            f"of shape {tuple(values.shape)}. Use 'depthwise' or 'conv' for inputs of "
            "unknown size."
        )
    return spatial


def _compute_dtype(values):
    """float64 for float64 values, else float32 (transforms and their sums of many
    products are not kept in half precision)."""
    return "float64" if keras.backend.standardize_dtype(values.dtype) == "float64" else "float32"


def _fft_operands(values, kernel, dilation_rate, causal):
    """values `[b, *S, v, u]`, kernel `[*r, k, u]` → (values `[b, v, u, *S]`, kernel
    `[k, u, *L]` with offset o at index o mod L, the grid L), in float32 at least."""
    rank = len(values.shape) - 3
    spatial = _known_spatial(values, "fft")
    compute_dtype = _compute_dtype(values)
    values, kernel = ops.cast(values, compute_dtype), ops.cast(kernel, compute_dtype)
    # Spatial axes last: values [b, v, u, *S], kernel [k, u, *t].
    values = ops.transpose(values, (0, rank + 1, rank + 2) + tuple(range(1, rank + 1)))
    kernel, reaches = _clipped_kernel(kernel, spatial, dilation_rate, causal)
    lengths = tuple(_fast_fft_length(size + reach) for size, reach in zip(spatial, reaches))
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


def _crop(signal, spatial):
    """`[..., *L]` → `[..., *S]`: the first S of each of the last axes."""
    return signal[(Ellipsis,) + tuple(slice(0, size) for size in spatial)]


def fft_position_lambdas(values, kernel, dilation_rate=1, causal=False, portable=False):
    """The position lambdas as one FFT convolution: O(n log n), for any scope.

    values `[b, *S, v, u]`, kernel `[*r, k, u]` → λp `[b, *S, v, k]`, computed
    as the circular cross-correlation of V with T on a grid of L >= s + c per
    axis (c the kernel radius within the input), large enough that no offset
    wraps around. Runs in float32 at least (FFTs have no half-precision kernels).
    Needs known spatial sizes. `portable=True` uses the keras.ops path on
    TensorFlow too (for tests; it is the only path on other backends).
    """
    rank = len(values.shape) - 3
    spatial, dtype = tuple(values.shape[1 : 1 + rank]), values.dtype
    values, kernel, lengths = _fft_operands(values, kernel, dilation_rate, causal)
    spectrum, correlate = _fft_steps(portable)
    lambdas = correlate(_value_slots(spectrum(values, lengths)), spectrum(kernel, lengths),
                        lengths, spatial)  # [b, v, k, *S]
    lambdas = ops.transpose(lambdas, (0,) + tuple(range(3, 3 + rank)) + (1, 2))
    return ops.cast(lambdas, dtype)


# Floats of one chunk's position lambdas on the FFT grid, per example (v·k_c·L):
# 8 MiB, so that a 128x128 input's grid of [b, v, k, 256, 256] never exists whole.
FFT_CHUNK_FLOATS = 2**21


def fft_key_chunk(value_dim, key_dim, lengths):
    """How many key channels k_c `fft_position_output` transforms at a time: the
    largest divisor of k that keeps v·k_c·ΠL within `FFT_CHUNK_FLOATS` (at least 1)."""
    return _largest_key_chunk(key_dim, value_dim * math.prod(lengths))


def _largest_key_chunk(key_dim, floats_per_key):
    """The largest divisor of k whose chunk holds at most `FFT_CHUNK_FLOATS` floats per
    example, `floats_per_key` a key channel (at least 1)."""
    budget = max(1, FFT_CHUNK_FLOATS // floats_per_key)
    return max(chunk for chunk in range(1, key_dim + 1) if key_dim % chunk == 0 and chunk <= budget)


def fft_position_output(queries, values, kernel, dilation_rate=1, causal=False,
                        portable=False, key_chunk=None):
    """`fft_position_lambdas` contracted with the queries, k_c key channels at a
    time (`fft_key_chunk`, or `key_chunk`, a divisor of k), one chunk after the
    other (the backend's `chunk_sum`): the spectra and lambdas `[b, v, k, *L]` of a large
    input never exist whole, in the forward pass or the backward.

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]` →
    `[b, n, h, v]`.
    """
    rank = len(values.shape) - 3
    spatial, dtype = tuple(values.shape[1 : 1 + rank]), values.dtype
    batch = batch_size(values)
    values, kernel, lengths = _fft_operands(values, kernel, dilation_rate, causal)
    spectrum, correlate = _fft_steps(portable)
    value_slots = _value_slots(spectrum(values, lengths))
    value_dim, key_dim = values.shape[1], kernel.shape[0]
    chunk = key_chunk or fft_key_chunk(value_dim, key_dim, lengths)
    queries = ops.cast(queries, values.dtype)

    def contract(queries, kernel):  # queries [b, n, h, k_c], kernel [k_c, u, *L]
        lambdas = correlate(value_slots, spectrum(kernel, lengths), lengths, spatial)
        lambdas = ops.reshape(lambdas, (batch, value_dim, kernel.shape[0], -1))
        # [b, n, h, k_c] @ [b, n, k_c, v]: a batched matmul after one transpose,
        # where TensorFlow's einsum transposes both operands.
        return ops.matmul(queries, ops.transpose(lambdas, (0, 3, 2, 1)))

    return ops.cast(_sum_over_key_chunks(contract, queries, kernel, chunk, value_dim), dtype)


def _sum_over_key_chunks(contract, queries, kernel, chunk, value_dim):
    """Σ over chunks of k_c key channels of `contract(queries [b, n, h, k_c], kernel
    [k_c, ...])` → `[b, n, h, v]`, one chunk after the other (the backend's
    `chunk_sum`), or one call when k_c = k."""
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
    return fast_path("chunk_sum")(step, initial, (queries, kernel))


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
    spatial = _known_spatial(values, "dft")
    compute_dtype = _compute_dtype(values)
    values, kernel = ops.cast(values, compute_dtype), ops.cast(kernel, compute_dtype)
    kernel, reaches = _clipped_kernel(kernel, spatial, dilation_rate, causal)
    (height, width), (value_dim, intra_depth) = spatial, values.shape[-2:]
    length = height + reaches[0]
    forward = ops.convert_to_tensor(dft.forward_matrix(height, length), compute_dtype)
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
    per example, within `FFT_CHUNK_FLOATS` (at least 1)."""
    return _largest_key_chunk(key_dim, 2 * dft.frequencies(length) * spatial[-1] * value_dim)


def dft_position_output(queries, values, kernel, dilation_rate=1, causal=False,
                        key_chunk=None):
    """`dft_position_lambdas` contracted with the queries, k_c key channels at a time
    (`dft_key_chunk`, or `key_chunk`, a divisor of k), one chunk after the other.

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]` →
    `[b, n, h, v]`.
    """
    dtype, batch = values.dtype, batch_size(values)
    values_hat, kernel, geometry = _dft_operands(values, kernel, dilation_rate, causal)
    spatial, _, length, value_dim = geometry
    key_dim = kernel.shape[0]
    chunk = key_chunk or dft_key_chunk(value_dim, key_dim, spatial, length)
    queries = ops.cast(queries, values_hat.dtype)

    def contract(queries, kernel):  # queries [b, n, h, k_c], kernel [k_c, u, t_h, t_w]
        lambdas = ops.transpose(_dft_lambdas(values_hat, kernel, *geometry), (3, 0, 2, 1, 4))
        lambdas = ops.reshape(lambdas, (batch, -1, kernel.shape[0], value_dim))  # [b, n, k_c, v]
        return _matmul(queries, lambdas)

    return ops.cast(_sum_over_key_chunks(contract, queries, kernel, chunk, value_dim), dtype)


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
    # layer's step 1.15-1.31x slower (16x16 to 64x64, TensorFlow, races).
    real, imag = spectrum[:, 0], spectrum[:, 1]  # [F, t_w + 1, k_c, u]
    taps = ops.stack([ops.stack([real, -imag], axis=1), ops.stack([imag, real], axis=1)], axis=1)
    blocks = ops.take(taps, dft.band_index(width, reach_w), axis=3)  # [F, 2, 2, n, m, k_c, u]
    blocks = ops.transpose(blocks, (0, 1, 5, 3, 2, 4, 6))  # [F, 2, k_c, n_w, 2, m_w, u]
    blocks = ops.reshape(blocks, (freqs, 2 * keys * width, 2 * width * intra_depth))
    lambdas_hat = ops.reshape(_matmul(blocks, values_hat), (2 * freqs, -1))  # rows (f, re/im)
    inverse = ops.convert_to_tensor(dft.cropped_inverse_matrix(height, length), kernel.dtype)
    return ops.reshape(_matmul(inverse, lambdas_hat), (height, keys, width, -1, value_dim))


def _chunk_sum_loop(step, initial, chunks):
    """`step(total, chunk)` folded over the leading axis of `chunks` (a tuple of
    tensors), one chunk after the other: a Python loop (eager on PyTorch).
    Not `keras.ops.scan`: on PyTorch, and eagerly on TensorFlow, it stacks a
    `[chunks, *total]` tensor of zeros for the outputs `step` does not return
    (1 GiB at 128x128)."""
    total = initial
    for index in range(chunks[0].shape[0]):
        total = step(total, tuple(chunk[index] for chunk in chunks))
    return total


def _chunk_sum_scan(step, initial, chunks):
    """`_chunk_sum_loop` as `keras.ops.scan` (JAX's `lax.scan`: one compiled loop
    body, so XLA keeps one chunk's buffers, not every chunk's)."""
    return ops.scan(lambda total, chunk: (step(total, chunk), None), initial, chunks)[0]


def _chunk_sum_tensorflow(step, initial, chunks):
    """`_chunk_sum_loop` as `tf.foldl`: a while loop that runs one chunk at a time
    (`parallel_iterations=1`), where a Python loop unrolls in a traced graph."""
    import tensorflow as tf

    return tf.foldl(step, chunks, initializer=initial, parallel_iterations=1)


def _spectrum_portable(x, lengths):
    """The real FFT of x `[..., *S]` on the grid `lengths`, as (real, imag)."""
    return _rfftn(x, lengths)


def _correlate_portable(value_slots, kernel_hat, lengths, spatial):
    """Circular cross-correlation from spectra (`_spectrum_portable`): values
    u x `[b, v, *F]` (`_value_slots`), kernel `[k, u, *F]` → `[b, v, k, *S]`, the
    first S of the grid L (a slice: its gradient is a pad)."""
    kernel_real, kernel_imag = kernel_hat
    # Correlation: spectrum = conj(T̂) · V̂, summed over u. Broadcast products,
    # one u at a time (u is small): an einsum here becomes a batched matmul of
    # tiny matrices, one per frequency, which is far slower.
    real = imag = 0.0
    for slot, (v_real, v_imag) in enumerate(value_slots):
        v_real, v_imag = v_real[:, :, None], v_imag[:, :, None]
        k_real, k_imag = kernel_real[None, None, :, slot], kernel_imag[None, None, :, slot]
        real = real + v_real * k_real + v_imag * k_imag  # [b, v, k, *F]
        imag = imag + v_imag * k_real - v_real * k_imag
    return _cropped_irfftn((real, imag), lengths, spatial)


def _correlate_per_key(value_slots, kernel_hat, lengths, spatial):
    """`_correlate_portable` one key channel at a time, the outputs concatenated: k
    products and inverse transforms of `[b, v, 1, *F]` spectra, where the portable
    path transforms the stacked `[b, v, k, *F]` at once."""
    real, imag = kernel_hat
    return ops.concatenate(
        [
            _correlate_portable(value_slots, (real[key : key + 1], imag[key : key + 1]),
                                lengths, spatial)
            for key in range(real.shape[0])
        ],
        axis=2,
    )


def _correlate_per_key_on_cpu(value_slots, kernel_hat, lengths, spatial):
    """JAX's fast path: `_correlate_per_key` where Keras computes on a CPU, where it
    makes the position term's train step 1.8-2.6x faster than the stacked transform
    (global 16x16 to 64x64; benchmarks/profile.md, "Per-key transforms on JAX and
    PyTorch"); elsewhere the portable path (not raced on accelerators)."""
    on_cpu = devices.computes_on_cpu(value_slots[0][0])
    correlate = _correlate_per_key if on_cpu else _correlate_portable
    return correlate(value_slots, kernel_hat, lengths, spatial)


def _spectrum_torch(x, lengths):
    """On a CPU, `_spectrum_portable` as one complex tensor `[..., L_h, F_w]` (torch.fft's
    n-D real FFT, one call, where keras.ops chains 1-D transforms with transposes and
    carries (real, imag) pairs); elsewhere the portable path (not raced on accelerators)."""
    if not devices.computes_on_cpu(x):
        return _spectrum_portable(x, lengths)
    import torch

    return torch.fft.rfftn(x, s=lengths, dim=tuple(range(-len(lengths), 0)))


def _correlate_torch(value_slots, kernel_hat, lengths, spatial):
    """`_correlate_portable` on complex spectra (`_spectrum_torch`), one product and
    inverse transform per key channel: 3.3-4.7x the portable path's train step at global
    16x16 to 64x64 on a CPU, 1.6-2.1x the portable path per key (benchmarks/profile.md,
    "Per-key transforms on JAX and PyTorch"). On (real, imag) pairs (an accelerator's
    spectra) the portable path."""
    if isinstance(kernel_hat, tuple):
        return _correlate_portable(value_slots, kernel_hat, lengths, spatial)
    import torch

    axes = tuple(range(-len(lengths), 0))
    lambdas = [
        _crop(torch.fft.irfftn(sum(value * weight for value, weight in zip(value_slots, key)),
                               s=lengths, dim=axes), spatial)  # [b, v, *S]
        for key in kernel_hat.conj().unbind(0)
    ]
    return torch.stack(lambdas, dim=2)  # [b, v, k, *S]


def _tf_transforms(lengths):
    import tensorflow as tf

    if len(lengths) == 2:
        return tf.signal.rfft2d, tf.signal.irfft2d
    return tf.signal.rfft, tf.signal.irfft


def _bin_weights(lengths, middle, scale, dtype):
    """`[F_last]` of `dtype`: `middle` for the bins of the last axis that stand for two
    frequencies of the full spectrum (not 0, not L/2), 1 for the others; times `scale`."""
    import tensorflow as tf

    return tf.constant(np.where(dft.doubled_bins(lengths[-1]), middle, 1.0) * scale, dtype)


def _spectrum_tensorflow(x, lengths):
    """`_spectrum_portable` as one complex tensor, with tf.signal's 2-D real FFT
    (one op, where keras.ops chains 1-D transforms with transposes). Its gradient
    is written out: rfft's adjoint, an inverse FFT of the gradient (bins that stand
    for two halved, times ΠL) cropped to x. TensorFlow's own builds a `[..., L, L]`
    complex matrix per transformed grid (192 MiB at 128x128, for the values)."""
    import tensorflow as tf

    rfft, irfft = _tf_transforms(lengths)
    spatial = tuple(x.shape[-len(lengths) :])
    weights = _bin_weights(lengths, 0.5, math.prod(lengths), x.dtype)

    @tf.custom_gradient
    def padded_rfft(x):
        def gradient(upstream):
            return _crop(irfft(upstream * tf.cast(weights, upstream.dtype), fft_length=lengths),
                         spatial)

        return rfft(x, fft_length=lengths), gradient

    return padded_rfft(x)


def _correlate_tensorflow(value_slots, kernel_hat, lengths, spatial):
    """`_correlate_portable` on complex spectra (`_spectrum_tensorflow`)."""
    import tensorflow as tf

    kernel_hat = tf.math.conj(kernel_hat)
    # One product and one inverse transform per key channel, their cropped outputs
    # stacked: TensorFlow's complex multiply with a [b, v, 1, *F] x [k, *F] broadcast
    # (and its gradient) is 2x slower; separate transforms, which the executor runs side
    # by side, and no stacked spectrum: 1.3-1.8x one transform of the stacked spectrum
    # (benchmarks/fft_transforms.py, 16x16 to 64x64).
    lambdas = [
        _cropped_irfft_tensorflow(
            tf.add_n([value * weight for value, weight in zip(value_slots, tf.unstack(key))]),
            lengths,
            spatial,
        )  # [b, v, *S]
        for key in tf.unstack(kernel_hat, axis=0)
    ]
    return tf.stack(lambdas, axis=2)  # [b, v, k, *S]


def _cropped_irfft_tensorflow(spectrum, lengths, spatial):
    """`_crop(irfft(spectrum))` with the gradient written out: the forward FFT of
    the cropped gradient, which tf.signal zero-pads to the grid itself, where
    autodiff would first materialise the padded `[..., *L]` gradient."""
    import tensorflow as tf

    rfft, irfft = _tf_transforms(lengths)
    # irfft's adjoint: rfft / ΠL, the bins that stand for two (not 0, not L/2) doubled.
    weights = _bin_weights(lengths, 2.0, 1 / math.prod(lengths), spectrum.dtype.real_dtype)

    @tf.custom_gradient
    def cropped_irfft(spectrum):
        def gradient(upstream):
            return rfft(upstream, fft_length=lengths) * tf.cast(weights, spectrum.dtype)

        return _crop(irfft(spectrum, fft_length=lengths), spatial), gradient

    return cropped_irfft(spectrum)


# Backend fast paths, as Keras keeps its own below keras.ops: (step, backend) → a
# function with the portable one's contract, measured to pay off and tested against it.
FAST_PATHS = {
    # 2x the portable path at 64x64; the spectrum's written-out gradient also keeps
    # TensorFlow's [..., L, L] matrices (192 MiB at 128x128) out of the step
    ("fft_spectrum", "tensorflow"): _spectrum_tensorflow,
    ("fft_correlate", "tensorflow"): _correlate_tensorflow,
    ("chunk_sum", "tensorflow"): _chunk_sum_tensorflow,
    # On a CPU (where they were raced): 1.8-2.6x and 3.3-4.7x the portable path
    ("fft_correlate", "jax"): _correlate_per_key_on_cpu,
    ("fft_spectrum", "torch"): _spectrum_torch,
    ("fft_correlate", "torch"): _correlate_torch,
    ("chunk_sum", "jax"): _chunk_sum_scan,
}
PORTABLE = {
    "fft_spectrum": _spectrum_portable,
    "fft_correlate": _correlate_portable,
    "chunk_sum": _chunk_sum_loop,
}


def fast_path(step, backend=None):
    """The function that runs `step` on `backend` (default: Keras's): its fast path,
    or the portable keras.ops one."""
    backend = backend or keras.backend.backend()
    return FAST_PATHS.get((step, backend), PORTABLE[step])


# The kernels, by the name `LambdaLayer(implementation=...)` takes. Adding one:
# a function with this contract here, and (for `auto`) a rule in `ops/auto.py`.
# KERNELS compute the position lambdas λp `[b, *S, v, k]`, which
# `position_output` contracts with the queries, unless a kernel has a
# QUERY_FIRST form: one that takes the queries and returns the position term
# `[b, n, h, v]` itself (the FFT's, to contract chunk by chunk).
KERNELS = {
    "einsum": einsum_position_lambdas,
    "conv": conv_position_lambdas,
    "depthwise": depthwise_position_lambdas,
    "fft": fft_position_lambdas,
    "dft": dft_position_lambdas,
}
QUERY_FIRST = {
    "einsum": einsum_position_output,
    "fft": fft_position_output,
    "dft": dft_position_output,
}
IMPLEMENTATIONS = tuple(KERNELS)


def position_lambdas(values, kernel, implementation, dilation_rate=1, causal=False):
    """Dispatches to one of `KERNELS`; all return λp `[b, *S, v, k]`."""
    return KERNELS[implementation](values, kernel, dilation_rate, causal)


def position_output(queries, values, kernel, implementation, dilation_rate=1, causal=False):
    """The position term of the output, `[b, n, h, v]` = Σ_k q_{n,h,k} λp_{n,v,k}.

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]`, with any
    of `IMPLEMENTATIONS`.
    """
    if implementation in QUERY_FIRST:
        return QUERY_FIRST[implementation](queries, values, kernel, dilation_rate, causal)
    return contract_queries(
        queries, position_lambdas(values, kernel, implementation, dilation_rate, causal)
    )


def contract_queries(queries, lambdas):
    """Σ_k q_{n,h,k} λp_{n,v,k}: queries `[b, n, h, k]`, lambdas `[b, *S, v, k]` →
    `[b, n, h, v]`."""
    batch = batch_size(lambdas)
    lambdas = ops.reshape(lambdas, (batch, -1) + tuple(lambdas.shape[-2:]))
    return ops.einsum("bnhk,bnvk->bnhv", queries, lambdas)
