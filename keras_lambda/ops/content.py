"""Content lambdas: the position-independent term of the lambda layer.

keys `[b, m, k, u]` are normalised by a softmax over the context positions m (per
key channel k and intra-depth slot u), computed in float32 (at least) so that mixed precision
neither overflows the exponentials nor loses the small weights of long contexts.
"""

from keras import backend, ops


def _at_least_float32(x):
    """x in float32 if it is in a half-precision type, else unchanged (float64 stays)."""
    if backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return ops.cast(x, "float32")
    return x


def content_lambda(keys, values):
    """The global content lambda shared by every query.

    keys `[b, m, k, u]`, values `[b, m, v, u]` →
    λc `[b, k, v]` = Σ_{m,u} softmax_m(K)[b, m, k, u] · V[b, m, v, u].

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import content_lambda

    keys = np.random.rand(2, 64, 16, 1).astype("float32")     # [b, m, k, u]
    values = np.random.rand(2, 64, 32, 1).astype("float32")   # [b, m, v, u]
    print(content_lambda(keys, values).shape)                 # (2, 16, 32): [b, k, v]
    ```
    """
    keys, values = ops.convert_to_tensor(keys), ops.convert_to_tensor(values)
    # Softmax over the last axis after one transpose (over axis 1 TensorFlow's softmax
    # transposes there and back, forward and backward), then for u = 1 a batched matmul:
    # faster on TensorFlow's smallest grids, a tie elsewhere (benchmarks/history/profile.md,
    # "The content lambda as a matmul").
    weights = ops.softmax(_at_least_float32(ops.transpose(keys, (0, 2, 3, 1))), axis=-1)
    weights = ops.cast(weights, values.dtype)  # [b, k, u, m]
    # [b, k, m] @ [b, m, v] (squeezes are reshapes, not slices); not in float64, which
    # Keras's matmul computes in float32 on PyTorch (its type promotion; einsum keeps it)
    if keys.shape[-1] == 1 and backend.standardize_dtype(values.dtype) != "float64":
        return ops.matmul(ops.squeeze(weights, axis=2), ops.squeeze(values, axis=-1))
    return ops.einsum("bkum,bmvu->bkv", weights, values)


def causal_content_lambdas(keys, values):
    """One content lambda per query over its prefix m <= n (the masked lambda).

    keys `[b, n, k, u]`, values `[b, n, v, u]` → λc `[b, n, k, v]` with
    λc_n = Σ_u Σ_{m<=n} exp(K_m) V_m / Σ_{m<=n} exp(K_m): the softmax is taken over
    each query's own context, as prefix sums, so time and memory stay linear in n.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import causal_content_lambdas

    keys = np.random.rand(2, 10, 16, 1).astype("float32")     # [b, n, k, u]
    values = np.random.rand(2, 10, 32, 1).astype("float32")   # [b, n, v, u]
    print(causal_content_lambdas(keys, values).shape)         # (2, 10, 16, 32): one per position
    ```
    """
    keys = _at_least_float32(ops.convert_to_tensor(keys))
    values = ops.convert_to_tensor(values)
    # One shift per channel keeps exp() in range; it cancels in the ratio.
    shifted = keys - ops.stop_gradient(ops.max(keys, axis=1, keepdims=True))
    weights = ops.exp(shifted)  # [b, n, k, u]
    weighted_values = ops.einsum(
        "bmku,bmvu->bmkuv", weights, ops.cast(values, keys.dtype)
    )
    numerator = ops.cumsum(weighted_values, axis=1)  # [b, n, k, u, v]
    # A prefix whose keys all underflow has a zero sum: keep the ratio finite.
    denominator = ops.maximum(ops.cumsum(weights, axis=1), 1e-30)
    lambdas = ops.sum(numerator / ops.expand_dims(denominator, -1), axis=3)
    return ops.cast(lambdas, values.dtype)
