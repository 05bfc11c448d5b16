"""E from the relative table and its written-out gradient, against numpy."""

import numpy as np
import pytest

from keras_lambda.ops import embeddings
from keras_lambda.ops.embeddings import dense_embeddings
from tests import reference
from tests.helpers import numpy, op_gradients

# (spatial S, table [*r, k, u], dilation, causal)
GEOMETRIES = [
    ((6, 5), (11, 9, 3, 1), 1, False),  # global 2-D
    ((3, 7), (5, 13, 2, 1), 1, False),  # global, not square
    ((4, 3), (11, 9, 2, 1), 1, False),  # a table wider than the grid's offsets
    ((6, 5), (3, 3, 2, 2), 1, False),  # local, u = 2
    ((7, 7), (3, 3, 2, 1), 2, False),  # dilated
    ((9,), (17, 2, 2), 1, True),  # causal sequence
    ((10,), (5, 3, 1), 1, False),  # local sequence
    ((1, 1), (1, 1, 2, 1), 1, False),  # one position
]


def random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def reference_embeddings(table, spatial, dilation, causal):
    """E [n, m, k, u] from the numpy reference (scope: the table's size where it
    does not cover every offset)."""
    scope = None if table.shape[0] >= 2 * spatial[0] - 1 else table.shape[0]
    return reference.relative_embeddings(table, spatial, scope, dilation, causal)


@pytest.mark.parametrize("written_out", [True, False], ids=["diagonal-sums", "scatter-add"])
@pytest.mark.parametrize("spatial, table_shape, dilation, causal", GEOMETRIES)
def test_embeddings_and_the_table_gradient_match_numpy(monkeypatch, written_out, spatial,
                                                       table_shape, dilation, causal):
    """E as the reference builds it; dT[j] = Σ_{n,m} dE_{n,m} · [E_{n,m} reads row j],
    each row's pairs found by the reference E of a one-hot table. The diagonal sums
    are forced on (or off) whatever `DIAGONAL_SUM_BACKENDS` says for this backend."""
    import keras

    backends = {keras.backend.backend()} if written_out else set()
    monkeypatch.setattr(embeddings, "DIAGONAL_SUM_BACKENDS", backends)
    monkeypatch.setattr(embeddings.devices, "computes_on_cpu", lambda tensor: True)
    table = random(table_shape)
    probe = random(reference_embeddings(table, spatial, dilation, causal).shape, seed=1)
    np.testing.assert_allclose(numpy(dense_embeddings(table, spatial, dilation, causal)),
                               reference_embeddings(table, spatial, dilation, causal),
                               rtol=1e-6, atol=1e-6)

    (gradient,) = op_gradients(lambda t: dense_embeddings(t, spatial, dilation, causal),
                               [table], probe)
    rank = len(spatial)
    expected = np.zeros(table_shape)
    for row in np.ndindex(*table_shape[:rank]):
        one_hot = np.zeros(table_shape[:rank] + (1, 1))
        one_hot[row] = 1
        reads = reference_embeddings(one_hot, spatial, dilation, causal)  # [n, m, 1, 1]
        expected[row] = np.sum(probe * reads, axis=(0, 1))
    np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("on_cpu", [True, False], ids=["cpu", "accelerator"])
def test_the_diagonal_sums_run_where_they_were_raced(monkeypatch, on_cpu):
    """On a CPU the listed backends take the diagonal sums; an accelerator (not raced)
    keeps autodiff's scatter-add."""
    import keras

    calls = []

    def recorded(upstream, kernel_shape, *geometry):
        calls.append((kernel_shape,) + geometry)
        return keras.ops.zeros(kernel_shape)

    monkeypatch.setattr(embeddings, "DIAGONAL_SUM_BACKENDS", {keras.backend.backend()})
    monkeypatch.setattr(embeddings.devices, "computes_on_cpu", lambda tensor: on_cpu)
    monkeypatch.setattr(embeddings, "_table_gradient", recorded)
    table, probe = random((9, 2, 1)), random((5, 5, 2, 1), seed=1)
    (gradient,) = op_gradients(lambda t: dense_embeddings(t, (5,)), [table], probe)
    assert calls == ([((9, 2, 1), (5,), 1, False)] if on_cpu else [])
    assert np.any(gradient) != on_cpu  # the stand-in's zeros, or autodiff's sums


@pytest.mark.parametrize("rows, columns", [(3, 3), (3, 5), (4, 2)])
def test_diagonal_sums_gather_each_offset(rows, columns):
    """out[b, c − a + A − 1, r] = Σ_a x[a, b, c, r], against a loop."""
    x = random((rows, 2, columns, 3))
    expected = np.zeros((2, columns + rows - 1, 3))
    for a in range(rows):
        for c in range(columns):
            expected[:, c - a + rows - 1] += x[a, :, c]
    np.testing.assert_allclose(numpy(embeddings._diagonal_sums(x)), expected, rtol=1e-6,
                               atol=1e-6)


def test_the_table_gradient_is_summed_in_float32_under_bfloat16():
    """E's gradient reaches table row o from every (n, m) pair at offset o: 600 − |o|
    pairs in a 600-long sequence. Summed in float32 and rounded once to bfloat16 it
    is the count rounded; summed in bfloat16 (8 significant bits) it stops near 256."""
    from keras import ops

    length = 600
    kernel = np.ones((2 * length - 1, 2, 1), "float32")  # global: every offset, k = 2, u = 1

    def bfloat16_embeddings(kernel):
        table = ops.cast(kernel, "bfloat16")
        return ops.cast(dense_embeddings(table, (length,)), "float32")

    probe = np.ones((length, length, 2, 1), "float32")
    (gradient,) = op_gradients(bfloat16_embeddings, [kernel], probe)
    counts = length - np.abs(np.arange(1 - length, length))
    rounded = numpy(ops.cast(ops.cast(counts, "bfloat16"), "float32"))
    np.testing.assert_array_equal(gradient[:, 0, 0], rounded)
    np.testing.assert_array_equal(gradient[:, 1, 0], rounded)
