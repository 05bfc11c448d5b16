"""`implementation="auto"`: which position-lambda kernel to run, as a pure function
of the geometry (and the backend).

An empirical cost model from train-step races on CPU (TensorFlow, b = 8; the
measurements behind every bound are in benchmarks/auto.md, and the decisions
they pin are benchmarks/auto_decisions.json, which the tests read):

1. A convolution costs per kernel tap: `depthwise` (`conv` when u > 1, which
   contracts u inside the convolution) while the kernel meets the input in at
   most `CONVOLUTION_MAX_TAPS` taps and the input has `SMALL_KERNEL_RATIO` times
   more positions; also for inputs of unknown size, which only convolutions take.
2. 7x7 scopes on images of `DEPTHWISE_MIN_POSITIONS` or more at
   v <= `DEPTHWISE_MAX_VALUE_DIM` (u = 1, undilated): `depthwise`.
3. Else `einsum` while n² <= `EINSUM_PAIRS_PER_FFT_VALUE`·G·v (its n² position
   pairs against the FFT's grid G times the v channels it transforms) and
   n² <= `EINSUM_MAX_PAIRS`; `fft` beyond.
"""

import math

from keras_lambda.ops.position import fft_lengths

SMALL_KERNEL_RATIO = 16
CONVOLUTION_MAX_TAPS = 25
DEPTHWISE_MAX_TAPS = 49
DEPTHWISE_MAX_VALUE_DIM = 32
DEPTHWISE_MIN_POSITIONS = 64 * 64
EINSUM_PAIRS_PER_FFT_VALUE = 6
EINSUM_MAX_PAIRS = 2**20


def kernel_taps(spatial_shape, scope, dilation_rate=1, causal=False):
    """Per axis, the kernel's taps (2s − 1 when global) and the taps that meet an
    input of `spatial_shape`, in all (half of them when causal)."""
    taps = [2 * size - 1 if scope is None else scope for size in spatial_shape]
    area = 1
    for size, axis_taps in zip(spatial_shape, taps):
        area *= min(axis_taps, 2 * ((size - 1) // dilation_rate) + 1)
    if causal:
        area = (area + 1) // 2
    return taps, area


def choose_implementation(
    spatial_shape,
    *,
    scope,
    value_dim=None,
    dilation_rate=1,
    intra_depth=1,
    causal=False,
    backend=None,
):
    """The position-lambda kernel for inputs of `spatial_shape` ((n,) or (H, W),
    None for unknown sizes): "einsum", "conv", "depthwise" or "fft".

    `scope` None is a global context; `value_dim` is v = d / h (needed unless a
    convolution is chosen on the geometry alone: ValueError). `backend` names
    the Keras backend the kernel will run on (None: any); the rule was measured
    on TensorFlow and is the same for every backend until another one is measured.
    """
    del backend  # one rule for all backends today (benchmarks/auto.md)
    convolution = "depthwise" if intra_depth == 1 else "conv"
    if any(size is None for size in spatial_shape):
        return convolution
    positions = math.prod(spatial_shape)
    taps, area = kernel_taps(spatial_shape, scope, dilation_rate, causal)
    if area <= CONVOLUTION_MAX_TAPS and positions >= SMALL_KERNEL_RATIO * area:
        return convolution
    if value_dim is None:
        raise ValueError(
            "choose_implementation needs value_dim (v = d / h) for this geometry: "
            f"spatial_shape={tuple(spatial_shape)}, scope={scope}"
        )
    if (
        intra_depth == 1
        and len(spatial_shape) == 2
        and dilation_rate == 1
        and area <= DEPTHWISE_MAX_TAPS
        and value_dim <= DEPTHWISE_MAX_VALUE_DIM
        and positions >= DEPTHWISE_MIN_POSITIONS
    ):
        return "depthwise"
    grid = math.prod(fft_lengths(spatial_shape, taps, dilation_rate))
    if positions**2 <= min(EINSUM_PAIRS_PER_FFT_VALUE * grid * value_dim, EINSUM_MAX_PAIRS):
        return "einsum"
    return "fft"
