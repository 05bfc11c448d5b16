"""A plain numpy lambda layer, written from the paper's formula for the tests.

Deliberately naive and independent of keras_lambda's code: float64, an explicit
materialised embedding tensor E [n, m, k, u] filled offset by offset, and a loop
over queries in which each query's context (all positions, or its prefix when
causal) gets its own softmax, content lambda and position lambda.
"""

import itertools

import numpy as np


def batch_norm(x, gamma, beta, mean, variance, epsilon, training):
    """Keras BatchNormalization over the last axis; batch statistics when training."""
    if training:
        axes = tuple(range(x.ndim - 1))
        mean, variance = x.mean(axis=axes), x.var(axis=axes)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def layer_norm(x, gamma, beta, epsilon):
    """Keras LayerNormalization over the last axis: each position by itself."""
    mean, variance = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def relative_embeddings(table, spatial_shape, scope=None, dilation=1, causal=False):
    """E [n, m, k, u]: E[n, m] = table[centre + (pos(m) − pos(n)) / dilation].

    Zero where the offset is outside the scope, not a multiple of the dilation,
    or (causal) points to a later position. Positions are flattened row-major.
    """
    positions = list(itertools.product(*[range(size) for size in spatial_shape]))
    centre = np.array([(size - 1) // 2 for size in table.shape[:-2]])
    n = len(positions)
    embeddings = np.zeros((n, n) + table.shape[-2:])
    for query, query_position in enumerate(positions):
        for context, context_position in enumerate(positions):
            if causal and context > query:
                continue
            offset = np.array(context_position) - np.array(query_position)
            if np.any(offset % dilation):
                continue
            index = centre + offset // dilation
            if scope is not None and np.any(np.abs(offset // dilation) > scope // 2):
                continue
            if np.any(index < 0) or np.any(index >= np.array(table.shape[:-2])):
                raise AssertionError("offset outside a global table")
            embeddings[query, context] = table[tuple(index)]
    return embeddings


def softmax(x, axis):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def lambda_layer(
    inputs,
    weights,
    num_heads,
    key_dim,
    intra_depth,
    scope=None,
    dilation=1,
    causal=False,
    position=True,
    epsilon=1e-3,
    training=False,
):
    """The lambda layer of the paper, query by query.

    inputs `[b, *S, c]`; weights: dict with `qkv` `[c, h·k + k·u + v·u]`, `query_norm`
    and `value_norm` (gamma, beta, mean, variance; causal: the layer norms' gamma,
    beta), `table` `[*r, k, u]`.
    Returns `[b, *S, h·v]`.
    """
    x = np.asarray(inputs, np.float64)
    batch, spatial, channels = x.shape[0], x.shape[1:-1], x.shape[-1]
    n = int(np.prod(spatial))
    h, k, u = num_heads, key_dim, intra_depth
    projected = x.reshape(batch, n, channels) @ np.asarray(weights["qkv"], np.float64)
    q = projected[..., : h * k]
    keys = projected[..., h * k : h * k + k * u]
    values = projected[..., h * k + k * u :]
    if causal:  # layer norm: a position's statistics are its own (no later positions)
        q = layer_norm(q, *weights["query_norm"], epsilon)
        values = layer_norm(values, *weights["value_norm"], epsilon)
    else:
        q = batch_norm(q, *weights["query_norm"], epsilon, training)
        values = batch_norm(values, *weights["value_norm"], epsilon, training)
    v = values.shape[-1] // u
    q = q.reshape(batch, n, h, k)
    keys = keys.reshape(batch, n, k, u)
    values = values.reshape(batch, n, v, u)
    if position:
        embeddings = relative_embeddings(
            np.asarray(weights["table"], np.float64), spatial, scope, dilation, causal
        )
    outputs = np.zeros((batch, n, h, v))
    for b in range(batch):
        for query in range(n):
            context = slice(0, query + 1) if causal else slice(0, n)
            normalised_keys = softmax(keys[b, context], axis=0)  # [m, k, u]
            lam = np.einsum("mku,mvu->kv", normalised_keys, values[b, context])
            if position:
                lam = lam + np.einsum(
                    "mku,mvu->kv", embeddings[query, context], values[b, context]
                )
            outputs[b, query] = q[b, query] @ lam  # [h, k] @ [k, v]
    return outputs.reshape((batch,) + tuple(spatial) + (h * v,))


def layer_weights(layer):
    """The weights of a keras_lambda LambdaLayer as numpy arrays for `lambda_layer`."""

    def norm(bn):
        if not hasattr(bn, "moving_mean"):  # a causal layer's layer norm
            return np.asarray(bn.gamma), np.asarray(bn.beta)
        return tuple(
            np.asarray(w)
            for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
        )

    weights = {
        "qkv": np.asarray(layer.qkv_kernel),
        "query_norm": norm(layer.query_norm),
        "value_norm": norm(layer.value_norm),
    }
    if layer.embedding is not None:
        weights["table"] = np.asarray(layer.embedding.table)
    return weights
