"""What every position kernel shares: the shapes of its inputs, the relative table
clipped (and dilated) to the offsets that meet the input, and the contraction of the
position lambdas with the queries."""

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


def contract_queries(queries, lambdas):
    """Σ_k q_{n,h,k} λp_{n,v,k}: queries `[b, n, h, k]`, lambdas `[b, *S, v, k]` →
    `[b, n, h, v]`."""
    batch = batch_size(lambdas)
    lambdas = ops.reshape(lambdas, (batch, -1) + tuple(lambdas.shape[-2:]))
    return ops.einsum("bnhk,bnvk->bnhv", queries, lambdas)


def causal_crop(values, kernel, dilation_rate):
    """Keeps offsets <= 0 of a 1-D kernel and left-pads the sequence to match.

    values `[b, n, ...]`, kernel `[r, k, u]` → (values `[b, n + c·dilation, ...]`,
    kernel `[c + 1, k, u]`) with c = (r − 1) / 2, ready for a 'valid' convolution.
    """
    radius = (kernel.shape[0] - 1) // 2
    padding = [[0, 0]] * len(values.shape)
    padding[1] = [radius * dilation_rate, 0]
    return ops.pad(values, padding), kernel[: radius + 1]


def kernel_reaches(spatial_shape, kernel_shape, dilation_rate=1):
    """Per axis, the kernel's radius (after dilation) clipped to the offsets that
    meet the input (s − 1)."""
    return tuple(min((taps - 1) * dilation_rate // 2, size - 1)
                 for size, taps in zip(spatial_shape, kernel_shape))


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


def clipped_kernel(kernel, spatial, dilation_rate, causal):
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


def known_spatial(values, implementation):
    """The spatial sizes of values `[b, *S, v, u]`; a ValueError if any is unknown."""
    spatial = tuple(values.shape[1:-2])
    if any(size is None for size in spatial):
        raise ValueError(
            f"implementation='{implementation}' needs a known spatial size; received values "
            f"of shape {tuple(values.shape)}. Use 'depthwise' or 'conv' for inputs of "
            "unknown size."
        )
    return spatial


def compute_dtype(values):
    """float64 for float64 values, else float32 (transforms and their sums of many
    products are not kept in half precision)."""
    return "float64" if keras.backend.standardize_dtype(values.dtype) == "float64" else "float32"
