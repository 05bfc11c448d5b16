"""The discrete Fourier transform along one axis as matrices (numpy), for the
`dft` position kernel (`keras_lambda.ops.position.dft`).

On a grid of L >= S + reach points a circular correlation equals the linear one
for every offset |o| <= reach, so L need not be a fast FFT size: these are
matrices, multiplied in matmuls. F = L // 2 + 1 frequencies (a real signal's
half spectrum); complex numbers are (real, imaginary) pairs along an axis of 2,
always the inner one next to f: rows or columns ordered (f, re/im).
"""

import numpy as np


def frequencies(length):
    """F, the real DFT's frequencies on `length` points."""
    return length // 2 + 1


def doubled_bins(length):
    """`[F]` bool: the bins of a real DFT on `length` points that stand for two
    frequencies of the full spectrum (not 0, not L/2)."""
    bins = np.arange(frequencies(length))
    return (bins > 0) & (2 * bins != length)


def _phases(length, points):
    """2π·f·p / L for f = 0..F − 1 (rows) and the points p (columns)."""
    f = np.arange(frequencies(length))[:, None]
    return 2 * np.pi * f * np.asarray(points)[None, :] / length


def forward_matrix(size, length):
    """`[2F, S]`: the real DFT on `length` points of a signal of `size` (zero-padded):
    x̂_f = Σ_p x_p e^{−2πi f p / L}."""
    phases = _phases(length, np.arange(size))
    return np.stack([np.cos(phases), -np.sin(phases)], axis=1).reshape(-1, size)


def conjugate_offsets_matrix(reach, length):
    """`[2F, 2·reach + 1]`: the conjugate DFT of a kernel over the offsets
    o = −reach..reach, conj(T̂_f) = Σ_o T_o e^{+2πi f o / L} (a correlation multiplies
    the values' spectrum by the kernel's conjugate)."""
    phases = _phases(length, np.arange(-reach, reach + 1))
    return np.stack([np.cos(phases), np.sin(phases)], axis=1).reshape(-1, 2 * reach + 1)


def cropped_inverse_matrix(size, length):
    """`[S, 2F]`: the inverse real DFT on `length` points, its first `size` points:
    x_p = (1/L) Σ_f w_f Re(x̂_f e^{2πi f p / L}), w_f = 2 for the frequencies that
    stand for two (not 0, not L/2), 1 for the others."""
    weights = np.where(doubled_bins(length), 2.0, 1.0)
    phases = _phases(length, np.arange(size)).T  # [S, F]
    matrix = np.stack([np.cos(phases), -np.sin(phases)], axis=2) * weights[:, None] / length
    return matrix.reshape(size, -1)


def band_index(size, reach):
    """`[S, S]` int32: for output n and input m, the tap of offset m − n in a kernel
    of 2·reach + 1 taps (index o + reach), or 2·reach + 1 (a zero tap appended to the
    kernel) where |m − n| > reach: the banded Toeplitz matrix as one gather."""
    offsets = np.arange(size)[None, :] - np.arange(size)[:, None]
    return np.where(np.abs(offsets) <= reach, offsets + reach, 2 * reach + 1).astype("int32")
