"""The `einsum` kernel: the paper's pseudo-code, E `[n, m, k, u]` materialised from
the table and contracted with V, or with the queries first where that is faster."""

import math

import keras
from keras import ops

from keras_lambda.ops.embeddings import dense_embeddings
from keras_lambda.ops.position.common import batch_size, contract_queries, spatial_shape


def einsum_position_lambdas(values, kernel, dilation_rate=1, causal=False):
    """The paper's pseudo-code: einsum of materialised E `[n, m, k, u]` with V.

    values `[b, *S, v, u]`, kernel `[*r, k, u]` → λp `[b, *S, v, k]`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import einsum_position_lambdas

    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(5, 5, 16, 1).astype("float32")       # a scope of 5: [r, r, k, u]
    print(einsum_position_lambdas(values, table).shape)   # (2, 8, 8, 32, 16): [b, H, W, v, k]
    ```
    """
    rank = len(values.shape) - 3
    spatial = spatial_shape(values, rank)
    embeddings = dense_embeddings(kernel, spatial, dilation_rate, causal)
    batch = batch_size(values)
    value_dim, intra_depth = values.shape[-2:]
    flat_values = ops.reshape(values, (batch, -1, value_dim, intra_depth))
    lambdas = ops.einsum("nmku,bmvu->bnvk", embeddings, flat_values)
    return ops.reshape(lambdas, (batch,) + spatial + (value_dim, kernel.shape[-2]))


# Queries first while the weights [b, n, h, m] are at most this many times the
# lambdas [b, n, k, v] (h·m <= c·k·v), per backend: races of the layer's train step
# in benchmarks/history/profile.md ("The einsum's order"). PyTorch: ties at v = 32 and 64.
QUERIES_FIRST_WEIGHTS_PER_LAMBDA = {"tensorflow": 7.0, "jax": 2.0}


def einsum_queries_first(num_heads, key_dim, value_dim, positions, backend=None):
    """Whether `einsum_position_output` contracts the queries with E first on
    `backend` (default: Keras's): where that takes fewer flops (h·(k + v) < k·v)
    and its weights `[b, n, h, m]` stay within the backend's
    `QUERIES_FIRST_WEIGHTS_PER_LAMBDA` times the lambdas `[b, n, k, v]` (beyond, it
    lost its races); lambdas first for an unknown n and on other backends."""
    bound = QUERIES_FIRST_WEIGHTS_PER_LAMBDA.get(backend or keras.backend.backend())
    return (
        bound is not None
        and isinstance(positions, int)
        and num_heads * (key_dim + value_dim) < key_dim * value_dim
        and num_heads * positions <= bound * key_dim * value_dim
    )


def einsum_position_output(queries, values, kernel, dilation_rate=1, causal=False,
                           queries_first=None):
    """The `einsum` kernel's position term, its contractions in the faster order
    (`einsum_queries_first`, unless `queries_first` says). Lambdas first, the
    pseudo-code: λp = E·V, then q·λp, 2·b·n·m·k·v·u flops. Queries first: weights
    q·E `[b, n, h, m, u]`, then with V, 2·b·n·m·h·(k + v)·u flops (0.375 of the
    other at h = 4, k = 16, v = 32).

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]` →
    `[b, n, h, v]`.
    """
    rank = len(values.shape) - 3
    spatial = spatial_shape(values, rank)
    heads, key_dim = queries.shape[2], kernel.shape[-2]
    batch, (value_dim, intra_depth) = batch_size(values), values.shape[-2:]
    positions = math.prod(spatial) if all(isinstance(s, int) for s in spatial) else None
    if queries_first is None:
        queries_first = einsum_queries_first(heads, key_dim, value_dim, positions)
    if not queries_first:
        return contract_queries(queries, einsum_position_lambdas(values, kernel, dilation_rate,
                                                                 causal))
    embeddings = dense_embeddings(kernel, spatial, dilation_rate, causal)  # [n, m, k, u]
    flat_values = ops.reshape(values, (batch, positions, value_dim, intra_depth))
    if intra_depth == 1:  # no u axis: plain batched matmuls
        # Reshapes, not slices, drop u: a slice's gradient is a copy of all of E.
        embeddings = ops.reshape(embeddings, (positions, positions, key_dim))
        flat_values = ops.reshape(flat_values, (batch, positions, value_dim))
        # Batched over n as `[n, b·h, k] x [n, k, m]` (one matmul per query position):
        # faster than TensorFlow's own einsum of the same product, a tie on JAX
        # (benchmarks/history/profile.md, "The einsum's order").
        by_position = ops.reshape(ops.transpose(queries, (1, 0, 2, 3)), (positions, -1, key_dim))
        weights = ops.matmul(by_position, ops.swapaxes(embeddings, 1, 2))  # [n, b·h, m]
        weights = ops.transpose(ops.reshape(weights, (positions, -1, heads, positions)),
                                (1, 0, 2, 3))  # [b, n, h, m]
        return ops.einsum("bnhm,bmv->bnhv", weights, flat_values)
    weights = ops.einsum("bnhk,nmku->bnhmu", queries, embeddings)
    return ops.einsum("bnhmu,bmvu->bnhv", weights, flat_values)
