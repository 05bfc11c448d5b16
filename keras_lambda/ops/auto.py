"""`implementation="auto"`: which position-lambda kernel to run, as a pure function
of the geometry and the backend.

An empirical cost model from train-step races on CPU (b = 8; the measurements
behind every bound are in benchmarks/records/auto.md and benchmarks/records/auto_backends.md, and
the decisions they pin are benchmarks/records/auto_decisions.json, which the tests read).
Each backend has its bounds (`RULES`):

1. A convolution costs per kernel tap: the backend's u = 1 convolution
   (`conv` when u > 1, which contracts u inside the convolution) while the kernel
   meets the input in at most `convolution_max_taps` taps and the input has
   `SMALL_KERNEL_RATIO` times more positions; also for inputs of unknown size,
   which only convolutions take.
2. Else `einsum` while n²·u <= `einsum_pairs_per_fft_value`·G·v (E's n²·u
   entries per key channel against the FFT's grid G times the v channels it
   transforms) and n²·u <= `einsum_max_pairs`; where rule 3 picks `dft`, the
   einsum's bound is `einsum_pairs_per_fft_value_beside_dft` instead.
3. Else, for images, `dft` while its matmuls' work per channel, L_h·W·(2W + H)
   (L = s + reach per axis: the Toeplitz products over W at each of the L_h/2
   frequencies of H, then the inverse over H), is at most `dft_work_per_fft_work`
   times the FFT's G·log2(G), G = L_h·L_w; `fft` beyond, and for sequences (a
   sequence's `dft` is a dense Toeplitz product: 3-6x the einsum).
"""

import dataclasses
import math

from keras_lambda.ops.position import fft_lengths, kernel_reaches

SMALL_KERNEL_RATIO = 16


@dataclasses.dataclass(frozen=True)
class Rule:
    """One backend's bounds: rule 1 up to `convolution_max_taps` (0: never) with
    `convolution` as the u = 1 kernel; rule 2's `einsum_pairs_per_fft_value` and
    `einsum_max_pairs`."""

    convolution_max_taps: int
    convolution: str
    einsum_pairs_per_fft_value: float
    einsum_max_pairs: int = 2**20  # 32x32 (u = 1); beyond, the einsum slows faster than n²
    dft_work_per_fft_work: float = 0.0  # 0: never `dft`
    einsum_pairs_per_fft_value_beside_dft: float = 0.0


RULES = {
    # Depthwise up to 5x5 (7x7: the FFT ahead since #17's FFT work); the einsum (queries
    # first, diagonal sums for the table's gradient) ahead up to n²·u/(G·v) = 5.3, a tie
    # at 6.25 (40x40, v = 64), the FFT (a transform per key channel) from 8.
    # The `dft` kernel (matmuls only) ahead of the einsum from n²·u/(G·v) = 2.25 (24x24 at
    # v = 64, 1.19x; a tie at 2.0, the einsum ahead at 1.0), and of the FFT to 96x96 global
    # (1.31x, work ratio 9.6; a tie at 128x128, 12).
    "tensorflow": Rule(25, "depthwise", 6, dft_work_per_fft_work=10,
                       einsum_pairs_per_fft_value_beside_dft=2.1),
    # XLA's depthwise gradient on CPU is 10-20x slower than the FFT, and the FFT beats
    # `conv` from 3x3 (2x); with a transform per key channel (JAX's CPU fast path) the einsum
    # ahead up to n²/(G·v) = 4.5 (24x24, 1.09x), the FFT from 5.3 (28x28, 1.12x).
    # With its chunks recomputed in the backward pass (JAX only: the 128x128 step in 0.66
    # GiB, not 1.38), the `dft` ahead of the FFT to 192x192 global (work ratio 16.8, 1.12x;
    # 128x128 1.17x, 160x160 1.26x) and tied with it at 64x64 with scopes 7 and 23 (15.1,
    # 13.2), where it holds less memory: `dft_work_per_fft_work` 17 (was 10).
    "jax": Rule(0, "conv", 5, dft_work_per_fft_work=17,
                einsum_pairs_per_fft_value_beside_dft=1.5),
    # Convolutions ahead of the FFT up to 7x7 (1.15-1.7x at 32x32 and 64x64), `conv` ahead
    # of `depthwise` (by 30-50%); with torch.fft on complex spectra, one inverse transform
    # per key channel (PyTorch's CPU fast path), the einsum ahead at n²/(G·v) = 2 (16x16,
    # 1.46x), a tie at 3.1 (20x20), the FFT from 4 (32x32 at d = 256, 1.5x).
    # On both, the `dft` ahead of the einsum from n²·u/(G·v) = 2 (16x16 at v = 32: 1.14x on
    # JAX, 1.23x on PyTorch; the einsum ahead at 1.1 and below) and of the FFT up to
    # 128x128 (1.33x, 1.27x); PyTorch's bound stops short of 128x128 (work ratio 12; 96x96
    # is 9.6), where JAX's dft step compiled to 1.48 GiB against the FFT's 0.97 before its
    # chunks were recomputed (PyTorch keeps them; its memory not measured).
    "torch": Rule(49, "conv", 3.5, dft_work_per_fft_work=10,
                  einsum_pairs_per_fft_value_beside_dft=1.5),
}


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
    None for unknown sizes): "einsum", "conv", "depthwise", "dft" or "fft".

    `scope` None is a global context; `value_dim` is v = d / h (needed unless a
    convolution is chosen on the geometry alone: ValueError). `backend` names
    the Keras backend the kernel will run on: "jax" and "torch" have rules of
    their own; any other (numpy, openvino) and None take TensorFlow's, the first
    one measured.

    Example:
    ```python
    from keras_lambda.ops import choose_implementation

    print(choose_implementation((16, 16), scope=None, value_dim=32))     # 'einsum'
    print(choose_implementation((64, 64), scope=None, value_dim=32))     # 'dft'
    print(choose_implementation((256, 256), scope=None, value_dim=32))   # 'fft'
    print(choose_implementation((None, None), scope=5))                  # 'depthwise'
    print(choose_implementation((128, 128), scope=None, value_dim=32, backend="jax"))  # 'dft'
    ```
    """
    rule = RULES.get(backend, RULES["tensorflow"])
    convolution = rule.convolution if intra_depth == 1 else "conv"
    if any(size is None for size in spatial_shape):
        return convolution
    positions = math.prod(spatial_shape)
    taps, area = kernel_taps(spatial_shape, scope, dilation_rate, causal)
    if area <= rule.convolution_max_taps and positions >= SMALL_KERNEL_RATIO * area:
        return convolution
    if value_dim is None:
        raise ValueError(
            "choose_implementation needs value_dim (v = d / h) for this geometry: "
            f"spatial_shape={tuple(spatial_shape)}, scope={scope}"
        )
    grid = math.prod(fft_lengths(spatial_shape, taps, dilation_rate))
    pairs = positions**2 * intra_depth  # E's entries per key channel
    dft = _dft_ahead_of_fft(spatial_shape, taps, dilation_rate, rule)
    einsum_ratio = (rule.einsum_pairs_per_fft_value_beside_dft if dft
                    else rule.einsum_pairs_per_fft_value)
    if pairs <= min(einsum_ratio * grid * value_dim, rule.einsum_max_pairs):
        return "einsum"
    return "dft" if dft else "fft"


def _dft_ahead_of_fft(spatial_shape, taps, dilation_rate, rule):
    """Rule 3: an image whose `dft` work L_h·W·(2W + H) is within the rule's multiple of
    the FFT's G·log2(G), G = L_h·L_w with L = s + reach (not rounded to the FFT's fast
    lengths, so that the pick changes once as the image grows)."""
    if len(spatial_shape) != 2:
        return False
    reaches = kernel_reaches(spatial_shape, taps, dilation_rate)
    lengths = [size + reach for size, reach in zip(spatial_shape, reaches)]
    height, width = spatial_shape
    work = lengths[0] * width * (2 * width + height)
    grid = math.prod(lengths)
    return work <= rule.dft_work_per_fft_work * grid * math.log2(grid)
