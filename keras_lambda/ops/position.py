"""Position lambdas: the relative-position term of the lambda layer.

Every kernel here computes, for each query position n,

    λp_n = Σ_m E_{n,m} V_m          E_{n,m} = T[(m − n) / dilation + centre]

with V the values `[b, *S, v, u]` (S the spatial axes: `(n,)` for sequences,
`(H, W)` for images), T a relative table `[*r, k, u]` (r odd per axis, offset 0 at
its centre) and E zero for offsets outside the table, between dilation steps, past
the borders (zero padding) and, when `causal`, for m > n. The global relative
lambda of the paper is the case where the table covers every offset of the input
(r = 2H − 1): it is a convolution too, so no kernel but `einsum` ever builds the
`[n, m, k]` tensor, and `fft` computes it in O(n log n).

All kernels return λp laid out `[b, *S, v, k]` (what the convolutions produce
natively); the caller contracts it with the queries over k. They are stateless,
take and return tensors, and are written in `keras.ops` so they run on every
Keras 3 backend (`depthwise` is `tf.nn.depthwise_conv2d` on TensorFlow). Backend
fast paths sit in one table, `FAST_PATHS` (today: `fft`'s correlation through
`tf.signal`'s 2-D real FFTs on complex tensors, 2x faster than the portable path
at 64x64), each tested against the portable code.
"""

import keras
from keras import ops


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


def dense_embeddings(kernel, spatial_shape, dilation_rate=1, causal=False):
    """Materialises E `[n, m, k, u]` from a relative kernel T `[*r, k, u]`.

    The paper's formulation: memory Θ(n·m·k·u). `spatial_shape` is S, n = m = Π S.
    One gather from the flattened table with a zero row appended, which every
    (n, m) pair outside the scope (or between dilation taps, or in the future
    when causal) points at: no mask multiply, one scatter-add in the gradient.
    """
    rank = len(spatial_shape)
    index = in_scope = None
    for axis, size in enumerate(spatial_shape):
        radius = (kernel.shape[axis] - 1) // 2
        position = ops.arange(size, dtype="int32")
        offset = position[None, :] - position[:, None]  # [s_n, s_m]: m − n
        valid = ops.logical_and(
            ops.equal(offset % dilation_rate, 0),
            ops.less_equal(ops.abs(offset), radius * dilation_rate),
        )
        if causal:
            valid = ops.logical_and(valid, ops.less_equal(offset, 0))
        axis_index = ops.clip(offset // dilation_rate + radius, 0, 2 * radius)
        if index is None:
            index, in_scope = axis_index, valid
        else:  # 2-D: [H_n, H_m] and [W_n, W_m] → [H_n, W_n, H_m, W_m], row-major table
            index = index[:, None, :, None] * kernel.shape[axis] + axis_index[None, :, None, :]
            in_scope = ops.logical_and(in_scope[:, None, :, None], valid[None, :, None, :])
    size = 1
    for s in spatial_shape:
        size = size * s
    rows = 1
    for r in kernel.shape[:rank]:
        rows = rows * r
    index = ops.where(
        ops.reshape(in_scope, (size, size)), ops.reshape(index, (size, size)), rows
    )
    channels = tuple(kernel.shape[rank:])  # (k, u)
    table = ops.concatenate(
        [ops.reshape(kernel, (rows,) + channels), ops.zeros((1,) + channels, kernel.dtype)],
        axis=0,
    )
    return ops.take(table, index, axis=0)


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


def fft_lengths(spatial_shape, kernel_shape, dilation_rate=1):
    """Per axis, the grid `fft_position_lambdas` transforms on: the smallest
    smooth L >= s + reach, reach = the kernel radius (after dilation) clipped to
    the offsets that meet the input (s − 1)."""
    lengths = []
    for size, taps in zip(spatial_shape, kernel_shape):
        reach = min((taps - 1) * dilation_rate // 2, size - 1)
        lengths.append(_fast_fft_length(size + reach))
    return tuple(lengths)


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


def _irfftn(spectrum, lengths):
    """Inverse of `_rfftn`: the real signal of shape `[..., *lengths]`."""
    real, imag = spectrum
    if len(lengths) == 2:
        # Inverse complex FFT over H as conj(fft(conj(x))) / L_h.
        real, imag = ops.fft((real, -imag))
        real, imag = real / lengths[0], -imag / lengths[0]
        real, imag = ops.swapaxes(real, -1, -2), ops.swapaxes(imag, -1, -2)
    return ops.irfft((real, imag), fft_length=lengths[-1])


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
    spatial = tuple(values.shape[1 : 1 + rank])
    if any(size is None for size in spatial):
        raise ValueError(
            "implementation='fft' needs a known spatial size; received values of "
            f"shape {tuple(values.shape)}. Use 'depthwise' or 'conv' for inputs of "
            "unknown size."
        )
    dtype = values.dtype
    compute_dtype = "float64" if dtype == "float64" else "float32"
    values = ops.cast(values, compute_dtype)
    kernel = ops.cast(kernel, compute_dtype)
    # Spatial axes last: values [b, v, u, *S], kernel [k, u, *r].
    values = ops.transpose(values, (0, rank + 1, rank + 2) + tuple(range(1, rank + 1)))
    kernel = ops.transpose(kernel, (rank, rank + 1) + tuple(range(rank)))
    lengths = fft_lengths(spatial, kernel.shape[2:], dilation_rate)
    for axis, (size, length) in enumerate(zip(spatial, lengths)):
        kernel_axis = 2 + axis
        kernel = _dilate(kernel, kernel_axis, dilation_rate)
        radius = (kernel.shape[kernel_axis] - 1) // 2
        reach = min(radius, size - 1)  # offsets beyond the input meet zeros only
        kernel = ops.take(kernel, ops.arange(radius - reach, radius + reach + 1), axis=kernel_axis)
        if causal:  # keep offsets <= 0 (the first reach + 1 taps)
            mask = ops.cast(ops.arange(2 * reach + 1) <= reach, kernel.dtype)
            kernel = kernel * mask
        # Offset o at index o mod L: pad to L, then roll the centre to index 0.
        padding = [[0, 0]] * len(kernel.shape)
        padding[kernel_axis] = [0, length - (2 * reach + 1)]
        kernel = ops.roll(ops.pad(kernel, padding), -reach, axis=kernel_axis)
    correlate = _correlate_portable if portable else fast_path("fft_correlate")
    lambdas = correlate(values, kernel, lengths)
    # [b, v, k, *L] → crop to [b, v, k, *S] (a slice: its gradient is a pad) → [b, *S, v, k]
    lambdas = lambdas[(slice(None),) * 3 + tuple(slice(0, size) for size in spatial)]
    lambdas = ops.transpose(lambdas, (0,) + tuple(range(3, 3 + rank)) + (1, 2))
    return ops.cast(lambdas, dtype)


def _correlate_portable(values, kernel, lengths):
    """Circular cross-correlation in keras.ops: values `[b, v, u, *S]`, kernel
    `[k, u, *L]` → `[b, v, k, *L]`, spectra as (real, imag) pairs."""
    values_real, values_imag = _rfftn(values, lengths)
    kernel_real, kernel_imag = _rfftn(kernel, lengths)
    # Correlation: spectrum = conj(T̂) · V̂, summed over u. Broadcast products,
    # one u at a time (u is small): an einsum here becomes a batched matmul of
    # tiny matrices, one per frequency, which is far slower.
    real = imag = 0.0
    for slot in range(values.shape[2]):
        v_real, v_imag = values_real[:, :, slot, None], values_imag[:, :, slot, None]
        k_real, k_imag = kernel_real[None, None, :, slot], kernel_imag[None, None, :, slot]
        real = real + v_real * k_real + v_imag * k_imag  # [b, v, k, *F]
        imag = imag + v_imag * k_real - v_real * k_imag
    return _irfftn((real, imag), lengths)


def _correlate_tensorflow(values, kernel, lengths):
    """`_correlate_portable` with tf.signal: complex tensors and one 2-D real FFT
    op per transform, where keras.ops chains 1-D transforms with transposes and
    splits every complex tensor into two real ones."""
    import tensorflow as tf

    rfft, irfft = (tf.signal.rfft, tf.signal.irfft)
    if len(lengths) == 2:
        rfft, irfft = (tf.signal.rfft2d, tf.signal.irfft2d)
    values_hat = rfft(values, fft_length=lengths)  # [b, v, u, *F]
    kernel_hat = tf.math.conj(rfft(kernel, fft_length=lengths))  # [k, u, *F]
    spectrum = 0.0
    for slot in range(values.shape[2]):
        spectrum = spectrum + values_hat[:, :, slot, None] * kernel_hat[None, None, :, slot]
    return irfft(spectrum, fft_length=lengths)  # [b, v, k, *L]


# Backend fast paths, as Keras keeps its own below keras.ops: (step, backend) → a
# function with the portable one's contract, measured to pay off and tested against it.
FAST_PATHS = {
    ("fft_correlate", "tensorflow"): _correlate_tensorflow,  # 2x the portable path at 64x64
}
PORTABLE = {"fft_correlate": _correlate_portable}


def fast_path(step, backend=None):
    """The function that runs `step` on `backend` (default: Keras's): its fast path,
    or the portable keras.ops one."""
    backend = backend or keras.backend.backend()
    return FAST_PATHS.get((step, backend), PORTABLE[step])


# The kernels, by the name `LambdaLayer(implementation=...)` takes. Adding one:
# a function with this contract here, and (for `auto`) a rule in `ops/auto.py`.
KERNELS = {
    "einsum": einsum_position_lambdas,
    "conv": conv_position_lambdas,
    "depthwise": depthwise_position_lambdas,
    "fft": fft_position_lambdas,
}
IMPLEMENTATIONS = tuple(KERNELS)


def position_lambdas(values, kernel, implementation, dilation_rate=1, causal=False):
    """Dispatches to one of `IMPLEMENTATIONS`; all return λp `[b, *S, v, k]`."""
    return KERNELS[implementation](values, kernel, dilation_rate, causal)
