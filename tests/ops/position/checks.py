"""What the position-kernel tests share: random operands, their geometries, and the
numpy references of the position lambdas and of the position term with its gradients."""

import numpy as np

from tests import reference
from tests.helpers import numpy, op_gradients


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
