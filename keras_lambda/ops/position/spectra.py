"""The circular cross-correlation of the values with the table through real FFTs, in
keras.ops (the portable path of the `fft` kernel; the backends' faster forms are in
`fast_paths`)."""

from keras import ops

from keras_lambda.ops.position.common import kernel_reaches


def fast_fft_length(minimum):
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
    smooth L >= s + reach (`kernel_reaches`)."""
    reaches = kernel_reaches(spatial_shape, kernel_shape, dilation_rate)
    return tuple(fast_fft_length(size + reach) for size, reach in zip(spatial_shape, reaches))


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


def crop(signal, spatial):
    """`[..., *L]` → `[..., *S]`: the first S of each of the last axes."""
    return signal[(Ellipsis,) + tuple(slice(0, size) for size in spatial)]


def spectrum_portable(x, lengths):
    """The real FFT of x `[..., *S]` on the grid `lengths`, as (real, imag)."""
    return _rfftn(x, lengths)


def correlate_portable(value_slots, kernel_hat, lengths, spatial):
    """Circular cross-correlation from spectra (`spectrum_portable`): values
    u x `[b, v, *F]` (one per intra-depth slot), kernel `[k, u, *F]` → `[b, v, k, *S]`, the
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


def correlate_per_key(value_slots, kernel_hat, lengths, spatial):
    """`correlate_portable` one key channel at a time, the outputs concatenated: k
    products and inverse transforms of `[b, v, 1, *F]` spectra, where the portable
    path transforms the stacked `[b, v, k, *F]` at once."""
    real, imag = kernel_hat
    return ops.concatenate(
        [
            correlate_portable(value_slots, (real[key : key + 1], imag[key : key + 1]),
                               lengths, spatial)
            for key in range(real.shape[0])
        ],
        axis=2,
    )
