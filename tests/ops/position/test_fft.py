"""The `fft` kernel: its fast paths against the portable path and numpy, values and
gradients, and its query-first form in every chunking."""

import numpy as np
import pytest

from keras_lambda.ops.position import fast_paths, fft, spectra
from tests import reference
from tests.helpers import numpy, op_gradients
from tests.ops.position.checks import GEOMETRIES, random, reference_lambdas


@pytest.mark.parametrize("values_shape, kernel_shape, dilation, causal", GEOMETRIES)
def test_fft_fast_path_matches_portable_path_and_reference(
    values_shape, kernel_shape, dilation, causal
):
    """The backend's fast path (TensorFlow: tf.signal; PyTorch: torch.fft on complex
    tensors; JAX: the portable correlation per key) and the keras.ops path agree,
    values and gradients; undilated, the values match the numpy reference."""
    values = random(values_shape)
    kernel = random(kernel_shape, seed=3)
    probe = random(values_shape[:-1] + (kernel_shape[-2],), seed=5)
    results = {}
    for portable in (False, True):

        def lambdas(values, kernel, portable=portable):
            return fft.fft_position_lambdas(values, kernel, dilation, causal, portable)

        results[portable] = [numpy(lambdas(values, kernel)),
                             *op_gradients(lambdas, [values, kernel], probe)]
    for fast, portable in zip(results[False], results[True]):
        np.testing.assert_allclose(fast, portable, rtol=1e-4, atol=1e-4)
    if dilation == 1:
        scope = None if kernel_shape[0] >= 2 * values_shape[1] - 1 else kernel_shape[0]
        expected = reference_lambdas(values, kernel, scope, dilation, causal)
        np.testing.assert_allclose(results[False][0], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("values_shape, kernel_shape, dilation, causal", GEOMETRIES)
def test_fft_per_key_correlation_matches_the_stacked_one_and_reference(
    monkeypatch, values_shape, kernel_shape, dilation, causal
):
    """JAX's CPU fast path (the portable correlation one key channel at a time) gives
    the stacked correlation's lambdas and gradients; and, undilated, the numpy
    reference's: λp from the reference E, dV = Σ_n E·probe, and dT the sum of
    each (n, m) pair's Σ probe·V over the pairs that read each table entry."""
    values, kernel = random(values_shape), random(kernel_shape, seed=3)
    probe = random(values_shape[:-1] + (kernel_shape[-2],), seed=5)

    def lambdas(values, kernel):
        return fft.fft_position_lambdas(values, kernel, dilation, causal, portable=True)

    results = {}
    for name, correlate in (("stacked", spectra.correlate_portable),
                            ("per key", spectra.correlate_per_key)):
        monkeypatch.setitem(fast_paths.PORTABLE, "fft_correlate", correlate)
        results[name] = [numpy(lambdas(values, kernel)),
                         *op_gradients(lambdas, [values, kernel], probe)]
    for per_key, stacked in zip(results["per key"], results["stacked"]):
        np.testing.assert_allclose(per_key, stacked, rtol=1e-4, atol=1e-4)
    if dilation > 1:
        return
    scope = None if kernel_shape[0] >= 2 * values_shape[1] - 1 else kernel_shape[0]
    spatial = values_shape[1:-2]
    embeddings = reference.relative_embeddings(kernel, spatial, scope, 1, causal)
    flat_probe = probe.reshape(values_shape[0], -1, *probe.shape[-2:])  # [b, n, v, k]
    values_gradient = np.einsum("nmku,bnvk->bmvu", embeddings, flat_probe)
    # Each (n, m) pair's gradient Σ_{b,v} probe·V lands on the table entry E_{n,m}
    # reads: the reference E of a table of entry numbers (1, 2, ...; 0: none).
    taps = kernel_shape[:-2]
    numbers = np.arange(1, np.prod(taps) + 1, dtype="float64").reshape(taps + (1, 1))
    entry = reference.relative_embeddings(numbers, spatial, scope, 1, causal)[..., 0, 0]
    flat_values = values.reshape(values_shape[0], -1, *values_shape[-2:])  # [b, m, v, u]
    pair_gradients = np.einsum("bnvk,bmvu->nmku", flat_probe, flat_values)
    kernel_gradient = np.zeros((numbers.size + 1,) + kernel_shape[-2:])
    np.add.at(kernel_gradient, entry.astype(int), pair_gradients)
    expected = [reference_lambdas(values, kernel, scope, causal=causal),
                values_gradient.reshape(values_shape), kernel_gradient[1:].reshape(kernel_shape)]
    for per_key, reference_value in zip(results["per key"], expected):
        np.testing.assert_allclose(per_key, reference_value, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "values_shape, kernel_shape, causal",
    [
        ((2, 6, 5, 3, 1), (11, 9, 4, 1), False),  # global 2-D
        ((2, 6, 5, 3, 2), (3, 3, 4, 2), False),  # local, u = 2
        ((2, 9, 3, 1), (17, 4, 1), True),  # causal sequence
    ],
)
@pytest.mark.parametrize("key_chunk", [None, 1, 2])
def test_fft_position_output_matches_reference_in_every_chunking(
    values_shape, kernel_shape, causal, key_chunk
):
    """Σ_k q_{n,h,k} λp_{n,v,k} from the numpy reference, whether the key channels
    are transformed at once or a chunk at a time (`keras.ops.scan`)."""
    values = random(values_shape)
    kernel = random(kernel_shape, seed=3)
    positions = int(np.prod(values_shape[1:-2]))
    queries = random((values_shape[0], positions, 3, kernel_shape[-2]), seed=4)
    scope = None if kernel_shape[0] >= 2 * values_shape[1] - 1 else kernel_shape[0]
    lambdas = reference_lambdas(values, kernel, scope, causal=causal)
    expected = np.einsum("bnhk,bnvk->bnhv", queries,
                         lambdas.reshape(values_shape[0], positions, -1, kernel_shape[-2]))
    outputs = fft.fft_position_output(queries, values, kernel, causal=causal,
                                      key_chunk=key_chunk)
    np.testing.assert_allclose(numpy(outputs), expected, rtol=1e-4, atol=1e-4)


def test_fft_key_chunk_keeps_a_chunk_within_budget():
    # v·k_c·ΠL <= 2^21 floats: 32x32 (grid 64²) all 16 at once, 64x64 (128²) 4, 128x128 (256²) 1.
    assert fft.fft_key_chunk(32, 16, (64, 64)) == 16
    assert fft.fft_key_chunk(32, 16, (128, 128)) == 4
    assert fft.fft_key_chunk(32, 16, (256, 256)) == 1
    assert fft.fft_key_chunk(32, 12, (64, 128)) == 6  # a divisor of k: 8 would fit
    with pytest.raises(ValueError, match="`key_chunk` must divide k=4"):
        fft.fft_position_output(random((1, 4, 2)), random((1, 4, 2, 1)),
                                random((7, 4, 1)), key_chunk=3)
