"""Backend fast paths of the `fft` kernel's steps and of the key-chunk loop, in one
table (`FAST_PATHS`), as Keras keeps its own below keras.ops: each has the portable
function's contract (`PORTABLE`), was measured to pay off where it runs, and is tested
against the portable one."""

import math

import keras
import numpy as np

from keras_lambda.ops import devices
from keras_lambda.ops.position import chunks, spectra
from keras_lambda.ops.position.dft_matrices import doubled_bins
from keras_lambda.ops.position.spectra import crop


def correlate_per_key_on_cpu(value_slots, kernel_hat, lengths, spatial):
    """JAX's fast path: `correlate_per_key` where Keras computes on a CPU, where it
    makes the position term's train step faster than the stacked transform
    (benchmarks/history/profile.md, "Per-key transforms on JAX and PyTorch"); elsewhere
    the portable path (not raced on accelerators)."""
    on_cpu = devices.computes_on_cpu(value_slots[0][0])
    correlate = spectra.correlate_per_key if on_cpu else spectra.correlate_portable
    return correlate(value_slots, kernel_hat, lengths, spatial)


def spectrum_torch(x, lengths):
    """On a CPU, `spectrum_portable` as one complex tensor `[..., L_h, F_w]` (torch.fft's
    n-D real FFT, one call, where keras.ops chains 1-D transforms with transposes and
    carries (real, imag) pairs); elsewhere the portable path (not raced on accelerators)."""
    if not devices.computes_on_cpu(x):
        return spectra.spectrum_portable(x, lengths)
    import torch

    return torch.fft.rfftn(x, s=lengths, dim=tuple(range(-len(lengths), 0)))


def correlate_torch(value_slots, kernel_hat, lengths, spatial):
    """`correlate_portable` on complex spectra (`spectrum_torch`), one product and
    inverse transform per key channel: faster than the portable path on a CPU
    (benchmarks/history/profile.md, "Per-key transforms on JAX and PyTorch"). On (real,
    imag) pairs (an accelerator's spectra) the portable path."""
    if isinstance(kernel_hat, tuple):
        return spectra.correlate_portable(value_slots, kernel_hat, lengths, spatial)
    import torch

    axes = tuple(range(-len(lengths), 0))
    lambdas = [
        crop(torch.fft.irfftn(sum(value * weight for value, weight in zip(value_slots, key)),
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

    return tf.constant(np.where(doubled_bins(lengths[-1]), middle, 1.0) * scale, dtype)


def spectrum_tensorflow(x, lengths):
    """`spectrum_portable` as one complex tensor, with tf.signal's 2-D real FFT
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
            return crop(irfft(upstream * tf.cast(weights, upstream.dtype), fft_length=lengths),
                        spatial)

        return rfft(x, fft_length=lengths), gradient

    return padded_rfft(x)


def correlate_tensorflow(value_slots, kernel_hat, lengths, spatial):
    """`correlate_portable` on complex spectra (`spectrum_tensorflow`)."""
    import tensorflow as tf

    kernel_hat = tf.math.conj(kernel_hat)
    # One product and one inverse transform per key channel, their cropped outputs
    # stacked: TensorFlow's complex multiply with a [b, v, 1, *F] x [k, *F] broadcast
    # (and its gradient) is slower; separate transforms, which the executor runs side by
    # side, and no stacked spectrum beat one transform of the stacked spectrum
    # (`python benchmarks/fft_transforms.py`; benchmarks/records/auto.md).
    lambdas = [
        cropped_irfft_tensorflow(
            tf.add_n([value * weight for value, weight in zip(value_slots, tf.unstack(key))]),
            lengths,
            spatial,
        )  # [b, v, *S]
        for key in tf.unstack(kernel_hat, axis=0)
    ]
    return tf.stack(lambdas, axis=2)  # [b, v, k, *S]


def cropped_irfft_tensorflow(spectrum, lengths, spatial):
    """`crop(irfft(spectrum))` with the gradient written out: the forward FFT of
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

        return crop(irfft(spectrum, fft_length=lengths), spatial), gradient

    return cropped_irfft(spectrum)


# Backend fast paths, as Keras keeps its own below keras.ops: (step, backend) → a
# function with the portable one's contract, measured to pay off and tested against it.
FAST_PATHS = {
    # Faster than the portable path; the spectrum's written-out gradient also keeps
    # TensorFlow's [..., L, L] matrices (192 MiB at 128x128) out of the step
    ("fft_spectrum", "tensorflow"): spectrum_tensorflow,
    ("fft_correlate", "tensorflow"): correlate_tensorflow,
    ("chunk_sum", "tensorflow"): chunks.chunk_sum_tensorflow,
    # On a CPU, where they were raced against the portable path (profile.md)
    ("fft_correlate", "jax"): correlate_per_key_on_cpu,
    ("fft_spectrum", "torch"): spectrum_torch,
    ("fft_correlate", "torch"): correlate_torch,
    ("chunk_sum", "jax"): chunks.chunk_sum_scan,
}


PORTABLE = {
    "fft_spectrum": spectra.spectrum_portable,
    "fft_correlate": spectra.correlate_portable,
    "chunk_sum": chunks.chunk_sum_loop,
}


def fast_path(step, backend=None):
    """The function that runs `step` on `backend` (default: Keras's): its fast path,
    or the portable keras.ops one."""
    backend = backend or keras.backend.backend()
    return FAST_PATHS.get((step, backend), PORTABLE[step])
