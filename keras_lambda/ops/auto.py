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
   sequence's `dft` is a dense Toeplitz product, slower than the einsum: auto.md).
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
    # Every bound sits where the races put one kernel ahead of the next: the races, their
    # ratios and the ties are in benchmarks/records/auto.md (TensorFlow) and
    # auto_backends.md (JAX, PyTorch); auto_decisions.json pins the decisions.
    # TensorFlow: depthwise for small kernels (the FFT leads from 7x7); the einsum (queries
    # first, diagonal sums for the table's gradient) while E is small next to the FFT's
    # work; the `dft` (matmuls only) from there to about 100x100 global; the FFT beyond.
    "tensorflow": Rule(25, "depthwise", 6, dft_work_per_fft_work=10,
                       einsum_pairs_per_fft_value_beside_dft=2.1),
    # JAX: XLA's depthwise gradient on a CPU is far slower than the FFT, which also beats
    # `conv` from 3x3, so convolutions only for inputs of unknown size. With its chunks
    # recomputed in the backward pass (JAX only, for memory), the `dft` stays ahead of the
    # FFT to 192x192 global, and ties it at 64x64 with scopes 7 and 23 in less memory.
    "jax": Rule(0, "conv", 5, dft_work_per_fft_work=17,
                einsum_pairs_per_fft_value_beside_dft=1.5),
    # PyTorch: convolutions ahead of the FFT up to 7x7, `conv` ahead of `depthwise`; the
    # FFT on complex spectra (its CPU fast path). Its `dft` bound stops short of 128x128,
    # where kept chunks cost memory (PyTorch keeps them; its memory not measured).
    "torch": Rule(49, "conv", 3.5, dft_work_per_fft_work=10,
                  einsum_pairs_per_fft_value_beside_dft=1.5),
}

# On a GPU (any backend; the races ran on JAX, benchmarks/records/gpu.md): the FFT ahead
# of the einsum and of the convolutions at 64x64 and 128x128, so convolutions only for
# inputs of unknown size. The einsum's bound below that is JAX's CPU one: no GPU race at
# small sizes yet. Never the `dft`, which no GPU has timed.
GPU_RULE = Rule(0, "conv", 5)


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
    device=None,
):
    """The position-lambda kernel for inputs of `spatial_shape` ((n,) or (H, W),
    None for unknown sizes): "einsum", "conv", "depthwise", "dft" or "fft".

    `scope` None is a global context; `value_dim` is v = d / h (needed unless a
    convolution is chosen on the geometry alone: ValueError). `backend` names
    the Keras backend the kernel will run on: "jax" and "torch" have rules of
    their own; any other (numpy, openvino) and None take TensorFlow's, the first
    one measured. `device` "gpu" takes `GPU_RULE` whatever the backend; "cpu" and
    None the backend's (a `LambdaLayer` passes where Keras computes).

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
    if device not in (None, "cpu", "gpu"):
        raise ValueError(f"`device` must be None, 'cpu' or 'gpu'. Received: device={device!r}")
    rule = GPU_RULE if device == "gpu" else RULES.get(backend, RULES["tensorflow"])
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
