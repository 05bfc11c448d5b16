"""Incremental decoding of a causal lambda layer: one position at a time from a state.

A causal layer's output at position t depends on positions <= t only, through
    λc_t = Σ_u Σ_{m<=t} exp(K_m) V_m / Σ_{m<=t} exp(K_m)   (running sums)
    λp_t = Σ_{m<=t} T[m − t] V_m                             (the values in reach)
so generation need not re-run the whole prefix: the state holds the running sums
of the content lambda (kept with a running maximum of the keys, so that exp()
stays in range, as a streaming softmax does) and the values the position lambdas
still reach (the last (r − 1)/2 · dilation + 1 with a scope r; all of them with a
global table). Its layer norms are per position (see `LambdaLayer(causal=True)`),
so a step needs nothing from other positions. Each step costs O(k·v·u) for the
content lambda and O(reach · k·v·u) for the position lambda.

Shapes, with the paper's letters: inputs `[b, c]` → outputs `[b, h·v]`; state:
"max" `[b, k, u]`, "numerator" `[b, k, u, v]`, "denominator" `[b, k, u]`,
"values" `[b, j, v, u]` (j positions kept), "position" t (a Python int).
"""

from keras import ops


def initial_state(layer, batch_size):
    """The state before position 0 of a built causal `layer`."""
    if not layer.built or not layer.causal:
        raise ValueError(
            "Incremental decoding needs a built causal LambdaLayer (causal=True); "
            f"received {layer.name!r} with causal={layer.causal}, built={layer.built}"
        )
    k, u, v = layer.key_dim, layer.intra_depth, layer.value_dim
    return {
        "max": ops.full((batch_size, k, u), -1e30, "float32"),
        "numerator": ops.zeros((batch_size, k, u, v), "float32"),
        "denominator": ops.zeros((batch_size, k, u), "float32"),
        "values": ops.zeros((batch_size, 0, v, u), "float32"),
        "position": 0,
    }


def _reach(layer):
    """How many past values (the current one included) the position lambdas read;
    None: all of them (a global table)."""
    if layer.scope is None:
        return None
    return (layer.scope - 1) // 2 * layer.dilation_rate + 1


def _position_lambda(layer, values, position):
    """λp_t `[b, k, v]` from the kept values `[b, j, v, u]` (the last j positions
    up to and including t): Σ_m T[(m − t) / dilation] V_m over offsets in reach."""
    kept = values.shape[1]
    offsets = list(range(-(kept - 1), 1))  # m − t of the kept values, oldest first
    if layer.scope is None:
        table = ops.convert_to_tensor(layer.embedding.kernel((position + 1,)))  # [2(t+1)−1, k, u]
        centre = position
        rows = [centre + offset for offset in offsets]
    else:
        table = ops.convert_to_tensor(layer.embedding.table)  # [r, k, u]
        centre = (layer.scope - 1) // 2
        picked = [(index, offset) for index, offset in enumerate(offsets)
                  if offset % layer.dilation_rate == 0]
        values = ops.take(values, [index for index, _ in picked], axis=1)
        rows = [centre + offset // layer.dilation_rate for _, offset in picked]
    taps = ops.cast(ops.take(table, rows, axis=0), "float32")  # [j, k, u]
    return ops.einsum("jku,bjvu->bkv", taps, values)


def step(layer, inputs, state):
    """(outputs `[b, h·v]`, the next state) for the inputs `[b, c]` at position
    state["position"]; the same as the full causal layer at that position."""
    h, k, u, v = layer.num_heads, layer.key_dim, layer.intra_depth, layer.value_dim
    x = ops.cast(ops.expand_dims(ops.convert_to_tensor(inputs), 1), layer.compute_dtype)
    projected = ops.matmul(x, ops.cast(layer.qkv_kernel, x.dtype))  # [b, 1, h·k + k·u + v·u]
    queries, keys, values = ops.split(projected, [h * k, h * k + k * u], axis=-1)
    queries = ops.cast(layer.query_norm(queries), "float32")
    values = ops.cast(layer.value_norm(values), "float32")
    batch = ops.shape(x)[0]
    queries = ops.reshape(queries, (batch, h, k))
    keys = ops.reshape(ops.cast(keys, "float32"), (batch, k, u))
    values = ops.reshape(values, (batch, v, u))

    maximum = ops.maximum(state["max"], keys)
    rescale = ops.exp(state["max"] - maximum)
    weight = ops.exp(keys - maximum)  # [b, k, u]
    numerator = (state["numerator"] * rescale[..., None]
                 + ops.einsum("bku,bvu->bkuv", weight, values))
    denominator = state["denominator"] * rescale + weight
    lambdas = ops.sum(numerator / ops.maximum(denominator, 1e-30)[..., None], axis=2)

    history = ops.concatenate([state["values"], values[:, None]], axis=1)
    reach = _reach(layer)
    if reach is not None and history.shape[1] > reach:
        history = history[:, -reach:]
    position = state["position"]
    if layer.position is not None:
        lambdas = lambdas + _position_lambda(layer, history, position)
    outputs = ops.einsum("bhk,bkv->bhv", queries, lambdas)
    if layer.position_bias:
        bias = ops.cast(layer.position_bias_weight, "float32")
        outputs = outputs + ops.einsum("bhk,k->bh", queries, bias)[..., None]
    next_state = {"max": maximum, "numerator": numerator, "denominator": denominator,
                  "values": history if layer.position is not None else state["values"],
                  "position": position + 1}
    return ops.reshape(outputs, (batch, h * v)), next_state
