"""Properties of the position-lambda kernels (translation, locality, causality)."""

import numpy as np
import pytest

from keras_lambda.ops import position
from tests import reference
from tests.helpers import numpy, op_gradients

KERNELS = sorted(position.KERNELS)


# (values [b, *S, v, u], kernel [*r, k, u], dilation, causal)
GEOMETRIES = [
    ((2, 6, 5, 3, 1), (11, 9, 4, 1), 1, False),  # global 2-D, u = 1
    ((2, 6, 5, 3, 2), (3, 3, 4, 2), 1, False),  # local, u = 2
    ((2, 7, 7, 3, 1), (3, 3, 4, 1), 2, False),  # dilated
    ((2, 9, 3, 2), (17, 4, 2), 1, True),  # causal sequence
    ((1, 10, 3, 1), (5, 2, 1), 1, False),  # local sequence
]


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def reference_lambdas(values, kernel, scope=None, dilation=1, causal=False):
    """λp [b, *S, v, k] from materialised reference embeddings."""
    spatial = values.shape[1:-2]
    embeddings = reference.relative_embeddings(kernel, spatial, scope, dilation, causal)
    flat = values.reshape(values.shape[0], -1, *values.shape[-2:])
    lambdas = np.einsum("nmku,bmvu->bnvk", embeddings, flat)
    return lambdas.reshape(values.shape[:-1] + (kernel.shape[-2],))


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("scope", [3, 7])
def test_matches_reference_embeddings(kernel_name, scope):
    values = random((2, 6, 5, 3, 2))
    kernel = random((scope, scope, 4, 2), seed=1)
    lambdas = numpy(position.KERNELS[kernel_name](values, kernel))
    np.testing.assert_allclose(
        lambdas, reference_lambdas(values, kernel, scope), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("global_context", [False, True])
def test_translation_equivariance(kernel_name, global_context):
    """Shifting the values shifts the position lambdas: E depends on m − n only."""
    patch = random((1, 3, 4, 2, 1))
    canvas = np.zeros((1, 12, 12, 2, 1), "float32")
    shifted = canvas.copy()
    canvas[:, 2:5, 3:7] = patch
    shifted[:, 6:9, 5:9] = patch  # moved by (4, 2)
    size = 23 if global_context else 5  # 23 = 2·12 − 1 covers every offset
    kernel = random((size, size, 3, 1), seed=2)
    run = position.KERNELS[kernel_name]
    original = numpy(run(canvas, kernel))
    moved = numpy(run(shifted, kernel))
    # Compare where both windows lie inside the canvas.
    np.testing.assert_allclose(moved[:, 4:, 2:], original[:, :8, :10], rtol=1e-5, atol=1e-6)
    assert np.abs(original).max() > 0.1


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("scope, dilation", [(3, 1), (5, 1), (3, 2)])
def test_position_term_is_local_to_the_scope(kernel_name, scope, dilation):
    values = random((1, 11, 11, 2, 1))
    kernel = random((scope, scope, 3, 1), seed=4)
    run = position.KERNELS[kernel_name]
    before = numpy(run(values, kernel, dilation_rate=dilation))
    values[0, 5, 5] += 10.0
    after = numpy(run(values, kernel, dilation_rate=dilation))
    changed = np.abs(after - before).max(axis=(0, 3, 4)) > 1e-4  # [H, W]
    radius = scope // 2 * dilation
    rows, cols = np.nonzero(changed)
    assert rows.min() == 5 - radius and rows.max() == 5 + radius
    assert cols.min() == 5 - radius and cols.max() == 5 + radius
    # With dilation only every dilation-th offset is in the scope.
    assert np.all((rows - 5) % dilation == 0) and np.all((cols - 5) % dilation == 0)


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("size", [5, 19])
def test_causal_sequence_sees_only_the_past(kernel_name, size):
    values = random((1, 10, 2, 1))
    kernel = random((size, 3, 1), seed=5)
    run = position.KERNELS[kernel_name]
    before = numpy(run(values, kernel, causal=True))
    values[0, 6] += 10.0
    after = numpy(run(values, kernel, causal=True))
    changed = np.abs(after - before).max(axis=(0, 2, 3)) > 1e-4
    assert not changed[:6].any()
    assert changed[6]
    np.testing.assert_allclose(
        after, reference_lambdas(values, kernel, scope=size, causal=True), rtol=1e-5, atol=1e-5
    )


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
            return position.fft_position_lambdas(values, kernel, dilation, causal, portable)

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
        return position.fft_position_lambdas(values, kernel, dilation, causal, portable=True)

    results = {}
    for name, correlate in (("stacked", position._correlate_portable),
                            ("per key", position._correlate_per_key)):
        monkeypatch.setitem(position.PORTABLE, "fft_correlate", correlate)
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


@pytest.mark.parametrize("on_cpu", [True, False], ids=["cpu", "accelerator"])
def test_jax_correlates_one_key_at_a_time_on_a_cpu_only(monkeypatch, on_cpu):
    """JAX's `fft_correlate` fast path takes the per-key form where Keras computes the
    values' spectrum on a CPU (where it was raced), the stacked portable one elsewhere."""
    calls, asked = [], []
    monkeypatch.setattr(position, "_correlate_per_key", lambda *_: calls.append("per key"))
    monkeypatch.setattr(position, "_correlate_portable", lambda *_: calls.append("stacked"))
    monkeypatch.setattr(position.devices, "computes_on_cpu",
                        lambda tensor: asked.append(tensor) or on_cpu)
    value_slots = [("real part", "imaginary part")]
    position.fast_path("fft_correlate", "jax")(value_slots, None, (8, 8), (4, 4))
    assert calls == ["per key" if on_cpu else "stacked"]
    assert asked == ["real part"]


def test_torch_keeps_the_portable_fft_off_a_cpu(monkeypatch):
    """PyTorch's fast paths (torch.fft on complex tensors) run where Keras computes on a
    CPU; elsewhere its spectrum is the portable (real, imag) pair, which its correlation
    hands to the portable correlation."""
    calls = []
    monkeypatch.setattr(position.devices, "computes_on_cpu", lambda tensor: False)
    monkeypatch.setattr(position, "_spectrum_portable", lambda x, lengths: ("real", "imag"))
    monkeypatch.setattr(position, "_correlate_portable", lambda *_: calls.append("portable"))
    spectrum = position.fast_path("fft_spectrum", "torch")(None, (8, 8))
    assert spectrum == ("real", "imag")
    position.fast_path("fft_correlate", "torch")([spectrum], spectrum, (8, 8), (4, 4))
    assert calls == ["portable"]


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
    outputs = position.fft_position_output(queries, values, kernel, causal=causal,
                                           key_chunk=key_chunk)
    np.testing.assert_allclose(numpy(outputs), expected, rtol=1e-4, atol=1e-4)


def check_position_output(run, values_shape, kernel_shape, dilation, causal):
    """`run(q, V, T)` = y = Σ_{m,k,u} q_{n,h,k} E_{n,m,k,u} V_{m,v,u} and its gradients,
    against numpy with the reference E: dq and dV in closed form; the table's gradient
    through its directional derivative (E is linear in the table)."""
    values, kernel = random(values_shape), random(kernel_shape, seed=3)
    rank = len(values_shape) - 3
    batch, positions = values_shape[0], int(np.prod(values_shape[1 : 1 + rank]))
    queries = random((batch, positions, 2, kernel_shape[-2]), seed=4)
    probe = random((batch, positions, 2, values_shape[-2]), seed=5)
    scope = None if kernel_shape[0] >= 2 * values_shape[1] - 1 else kernel_shape[0]

    def embeddings(table):  # E [n, m, k, u]
        return reference.relative_embeddings(table, values_shape[1 : 1 + rank], scope,
                                             dilation, causal)

    flat_values = values.reshape(batch, positions, *values_shape[-2:]).astype("float64")
    reference_e = embeddings(kernel)
    expected = np.einsum("bnhk,nmku,bmvu->bnhv", queries, reference_e, flat_values)

    np.testing.assert_allclose(numpy(run(queries, values, kernel)), expected,
                               rtol=1e-4, atol=1e-4)
    d_queries, d_values, d_kernel = op_gradients(run, [queries, values, kernel], probe)
    np.testing.assert_allclose(
        d_queries, np.einsum("bnhv,nmku,bmvu->bnhk", probe, reference_e, flat_values),
        rtol=1e-4, atol=1e-4)
    expected_d_values = np.einsum("bnhv,bnhk,nmku->bmvu", probe, queries, reference_e)
    np.testing.assert_allclose(d_values, expected_d_values.reshape(values_shape),
                               rtol=1e-4, atol=1e-4)
    d_embeddings = np.einsum("bnhv,bnhk,bmvu->nmku", probe, queries, flat_values)
    for seed in (6, 7):
        direction = random(kernel_shape, seed=seed)
        along = np.sum(d_embeddings * embeddings(direction))
        assert np.isclose(np.sum(d_kernel * direction), along, rtol=1e-4)


@pytest.mark.parametrize("values_shape, kernel_shape, dilation, causal", GEOMETRIES)
@pytest.mark.parametrize("queries_first", [False, True], ids=["lambdas-first", "queries-first"])
def test_einsum_position_output_in_either_order(values_shape, kernel_shape, dilation, causal,
                                                queries_first):
    def run(q, v, t):
        return position.einsum_position_output(q, v, t, dilation, causal,
                                               queries_first=queries_first)

    check_position_output(run, values_shape, kernel_shape, dilation, causal)


@pytest.mark.parametrize("values_shape, kernel_shape, dilation, causal", GEOMETRIES)
@pytest.mark.parametrize("key_chunk", [None, 1, 2])
def test_dft_position_output_in_every_chunking(values_shape, kernel_shape, dilation, causal,
                                               key_chunk):
    """The DFT-and-Toeplitz kernel, its key channels at once or a chunk at a time."""
    def run(q, v, t):
        return position.dft_position_output(q, v, t, dilation, causal, key_chunk=key_chunk)

    check_position_output(run, values_shape, kernel_shape, dilation, causal)


def test_einsum_order_follows_flops_and_the_weights_size():
    """Queries first where h·(k + v) < k·v and the weights [b, n, h, m] are within the
    backend's bound times the lambdas [b, n, k, v]; never for an unknown n, nor on a
    backend without a bound."""
    bounds = position.QUERIES_FIRST_WEIGHTS_PER_LAMBDA
    for backend, bound in bounds.items():
        most = int(bound * 16 * 32) // 4  # the largest n with h·n <= bound·k·v
        assert position.einsum_queries_first(4, 16, 32, most, backend)
        assert not position.einsum_queries_first(4, 16, 32, most + 1, backend)
        assert not position.einsum_queries_first(4, 16, 4, 8, backend)  # 80 > 64 flops
        assert not position.einsum_queries_first(4, 16, 32, None, backend)
    assert not position.einsum_queries_first(4, 16, 32, 16, "numpy")  # no bound


def test_fft_chunks_keep_the_gradients(monkeypatch):
    """A layer whose FFT runs one key channel at a time has the gradients of the
    layer that transforms them all at once (the scan's backward pass)."""
    from keras_lambda.layers import LambdaLayer
    from tests.helpers import layer_gradients

    inputs = random((2, 6, 5, 8))
    probe = random((2, 6, 5, 8), seed=1)
    layer = LambdaLayer(key_dim=4, num_heads=2, implementation="fft")
    layer(inputs)
    variables = [layer.qkv_kernel, layer.embedding.trainable_variables[0]]
    whole = layer_gradients(layer, inputs, probe, variables)
    monkeypatch.setattr(position, "FFT_CHUNK_FLOATS", 1)  # k_c = 1: four chunks
    chunked = layer_gradients(layer, inputs, probe, variables)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-5)
    for chunked_gradient, whole_gradient in zip(chunked[1], whole[1]):
        scale = np.abs(whole_gradient).max()
        assert scale > 1e-3
        # Sums in another order: float32 rounding of the largest terms (~1e-7 of the
        # scale each) lands on the small elements, so the absolute tolerance scales.
        np.testing.assert_allclose(chunked_gradient, whole_gradient, rtol=1e-4,
                                   atol=2e-6 * scale)


def test_chunk_sums_fold_every_chunk_in_order():
    """The backend's loop over key chunks and the portable one both give
    step(...step(step(initial, chunk 0), chunk 1)..., chunk last)."""
    left, right = random((3, 2, 4)), random((3, 4), seed=1)
    initial = random((2, 4), seed=2)

    def step(total, chunk):  # not commutative: the order shows
        return total * 0.5 + chunk[0] * chunk[1][None]

    expected = numpy(initial)
    for index in range(3):
        expected = expected * 0.5 + numpy(left)[index] * numpy(right)[index][None]
    for chunk_sum in (position.fast_path("chunk_sum"), position.PORTABLE["chunk_sum"]):
        result = chunk_sum(step, initial, (left, right))
        np.testing.assert_allclose(numpy(result), expected, rtol=1e-6, atol=1e-6)


def test_fft_key_chunk_keeps_a_chunk_within_budget():
    # v·k_c·ΠL <= 2^21 floats: 32x32 (grid 64²) all 16 at once, 64x64 (128²) 4, 128x128 (256²) 1.
    assert position.fft_key_chunk(32, 16, (64, 64)) == 16
    assert position.fft_key_chunk(32, 16, (128, 128)) == 4
    assert position.fft_key_chunk(32, 16, (256, 256)) == 1
    assert position.fft_key_chunk(32, 12, (64, 128)) == 6  # a divisor of k: 8 would fit
    with pytest.raises(ValueError, match="`key_chunk` must divide k=4"):
        position.fft_position_output(random((1, 4, 2)), random((1, 4, 2, 1)),
                                     random((7, 4, 1)), key_chunk=3)


def test_dft_key_chunk_keeps_a_chunk_within_budget():
    # 2F·W·v·k_c <= 2^21 floats, F = (H + reach) // 2 + 1: 32x32 global (F = 32) all 16
    # at once, 64x64 (F = 64) 8, 128x128 (F = 128) 2.
    assert position.dft_key_chunk(32, 16, (32, 32), 63) == 16
    assert position.dft_key_chunk(32, 16, (64, 64), 127) == 8
    assert position.dft_key_chunk(32, 16, (128, 128), 255) == 2
    assert position.dft_key_chunk(32, 12, (64, 64), 127) == 6  # a divisor of k: 8 would fit
    with pytest.raises(ValueError, match="`key_chunk` must divide k=4"):
        position.dft_position_output(random((1, 4, 2)), random((1, 4, 2, 1)),
                                     random((7, 4, 1)), key_chunk=3)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("implementation", ["fft", "dft"])
def test_key_chunks_take_an_unknown_batch(monkeypatch, implementation):
    """A graph traced for any batch size (as `model.fit` may retrace one) runs the
    chunked FFT (or DFT) and gives the eager result."""
    import tensorflow as tf

    from keras_lambda.layers import LambdaLayer

    monkeypatch.setattr(position, "FFT_CHUNK_FLOATS", 1)  # k_c = 1: four chunks
    inputs = random((3, 6, 5, 8))
    layer = LambdaLayer(key_dim=4, num_heads=2, implementation=implementation)
    eager = numpy(layer(inputs))
    traced = tf.function(lambda x: layer(x), input_signature=[tf.TensorSpec((None, 6, 5, 8))])
    np.testing.assert_allclose(traced(inputs).numpy(), eager, rtol=1e-5, atol=1e-6)
