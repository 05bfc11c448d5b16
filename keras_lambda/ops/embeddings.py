"""The relative position embeddings E `[n, m, k, u]`, materialised from a relative
table T `[*r, k, u]`, and their gradient with respect to T written out.

    E_{n,m} = T[(m − n) / dilation + centre]

zero for offsets outside the table, between dilation steps and, when `causal`, for
m > n (S the spatial axes, n = m = Π S, row-major). E is one gather from the table.
Its gradient sums dE over every (n, m) pair of the same offset m − n: autodiff's
scatter-add of n·m rows (TensorFlow's `UnsortedSegmentSum`, the largest single op
of the lambda layer's train step at 16x16). On the backends of
`DIAGONAL_SUM_BACKENDS` on a CPU, with the grid's size known, it is written out instead as
sums along diagonals, one spatial axis at a time (`_diagonal_sums`): a pad, reshapes
and one reduction (benchmarks/history/profile.md, "The table's gradient as diagonal sums").
"""

import math

import keras
import numpy as np
from keras import ops

from keras_lambda.ops import devices

# Where the diagonal sums beat autodiff's scatter-add: TensorFlow, alone and in the layer's
# step; PyTorch ties, and on JAX XLA's scatter-add is the faster (races on a CPU,
# `python benchmarks/table_gradient.py`; benchmarks/history/profile.md, "The table's
# gradient as diagonal sums"). Raced on CPUs only, so run on CPUs only.
DIAGONAL_SUM_BACKENDS = {"tensorflow"}


def dense_embeddings(kernel, spatial_shape, dilation_rate=1, causal=False):
    """Materialises E `[n, m, k, u]` from a relative kernel T `[*r, k, u]`.

    The paper's formulation: memory Θ(n·m·k·u). `spatial_shape` is S, n = m = Π S.
    One gather from the flattened table with a zero row appended, which every
    (n, m) pair outside the scope (or between dilation taps, or in the future
    when causal) points at: no mask multiply. Its gradient: `_table_gradient`'s
    diagonal sums where S is known, on `DIAGONAL_SUM_BACKENDS` computing on a CPU;
    autodiff's scatter-add elsewhere.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import dense_embeddings

    table = np.random.rand(7, 7, 16, 1).astype("float32")   # global, 4 x 4: [2H - 1, 2W - 1, k, u]
    print(dense_embeddings(table, (4, 4)).shape)                 # (16, 16, 16, 1): [n, m, k, u]
    ```
    """
    rank = len(spatial_shape)
    written_out = (all(isinstance(size, int) for size in spatial_shape)
                   and keras.backend.backend() in DIAGONAL_SUM_BACKENDS
                   and devices.computes_on_cpu(kernel))
    # numpy for the written-out gradient: a constant it can close over on every backend
    index = _table_index(np if written_out else ops, kernel.shape, spatial_shape,
                         dilation_rate, causal)
    rows, channels = math.prod(kernel.shape[:rank]), tuple(kernel.shape[rank:])  # (k, u)
    # Gathered and summed in float32 at least: the gradient sums n·m rows into the
    # table, far slower in bfloat16 on a GPU (benchmarks/records/gpu.md) and inexact.
    wide = "float64" if kernel.dtype == "float64" else "float32"

    def gather(table):  # [*r, k, u] → E [n, m, k, u]
        flat = ops.concatenate(
            [ops.reshape(table, (rows,) + channels), ops.zeros((1,) + channels, table.dtype)],
            axis=0,
        )
        return ops.take(flat, index, axis=0)

    if not written_out:
        return ops.cast(gather(ops.cast(kernel, wide)), kernel.dtype)

    @ops.custom_gradient
    def gather_with_table_gradient(table):
        def gradient(*args, upstream=None):  # TensorFlow and JAX pass upstream, PyTorch names it
            upstream = args[0] if upstream is None else upstream
            return _table_gradient(upstream, kernel.shape, spatial_shape, dilation_rate, causal)

        return gather(table), gradient

    return ops.cast(gather_with_table_gradient(ops.cast(kernel, wide)), kernel.dtype)


def _table_index(xp, kernel_shape, spatial_shape, dilation_rate, causal):
    """`[n, m]` int32: the row of the flattened table `[Π r + 1, k, u]` that E_{n,m}
    takes, Π r (the appended zero row) outside the scope. `xp` is numpy (S known)
    or keras.ops (S may hold tensors)."""
    rank = len(spatial_shape)
    index = in_scope = None
    for axis, size in enumerate(spatial_shape):
        radius = (kernel_shape[axis] - 1) // 2
        position = xp.arange(size, dtype="int32")
        offset = position[None, :] - position[:, None]  # [s_n, s_m]: m − n
        valid = xp.logical_and(
            xp.equal(offset % dilation_rate, 0),
            xp.less_equal(xp.abs(offset), radius * dilation_rate),
        )
        if causal:
            valid = xp.logical_and(valid, xp.less_equal(offset, 0))
        axis_index = xp.clip(offset // dilation_rate + radius, 0, 2 * radius)
        if index is None:
            index, in_scope = axis_index, valid
        else:  # 2-D: [H_n, H_m] and [W_n, W_m] → [H_n, W_n, H_m, W_m], row-major table
            index = index[:, None, :, None] * kernel_shape[axis] + axis_index[None, :, None, :]
            in_scope = xp.logical_and(in_scope[:, None, :, None], valid[None, :, None, :])
    size = 1
    for s in spatial_shape:  # n, a tensor where S is not known
        size = size * s
    rows = math.prod(kernel_shape[:rank])
    return xp.where(xp.reshape(in_scope, (size, size)), xp.reshape(index, (size, size)), rows)


def _table_gradient(upstream, kernel_shape, spatial_shape, dilation_rate, causal):
    """dT `[*r, k, u]` from dE `[n, m, k, u]`: the sums over pairs of each offset
    (`_offset_sums`), each table row given its offset's sum, zero for rows whose
    offset never occurs (past the grid, or in the future when `causal`)."""
    rank = len(spatial_shape)
    channels = math.prod(kernel_shape[rank:])  # k·u (upstream's shape may be unknown)
    sums = _offset_sums(upstream, spatial_shape, channels)  # [*(2s − 1), k·u]
    for axis, size in enumerate(spatial_shape):
        radius = (kernel_shape[axis] - 1) // 2
        offset = (np.arange(kernel_shape[axis]) - radius) * dilation_rate
        occurs = (np.abs(offset) < size) & ((offset <= 0) if causal else True)
        if kernel_shape[axis] == 2 * size - 1 and occurs.all() and dilation_rate == 1:
            continue  # the table's rows are the offsets' sums as they stand
        padding = [[0, 0]] * (rank + 1)
        padding[axis] = [0, 1]  # row 2s − 1: zero, for the offsets that never occur
        source = np.where(occurs, offset + size - 1, 2 * size - 1).astype("int32")
        sums = ops.take(ops.pad(sums, padding), source, axis=axis)
    return ops.reshape(sums, kernel_shape)


def _offset_sums(upstream, spatial_shape, channels):
    """`[*(2s − 1), c]`: upstream `[n, m, c]` (any shape of those entries) summed over
    the (n, m) pairs of each offset m − n, at offset + s − 1 along each axis. One
    spatial axis at a time: laid out `[s_n, (later n axes, earlier offsets), s_m,
    (later m axes, c)]`, that axis's pairs become an offset axis in the place of its
    m axis, which leaves the next axis's pairs in the same layout."""
    summed = ops.reshape(upstream, tuple(spatial_shape) * 2 + (channels,))
    for axis, size in enumerate(spatial_shape):
        inner = math.prod(spatial_shape[axis + 1 :]) * channels
        summed = _diagonal_sums(ops.reshape(summed, (size, -1, size, inner)))
    return ops.reshape(summed, tuple(2 * s - 1 for s in spatial_shape) + (channels,))


def _diagonal_sums(x):
    """`[B, C + A − 1, R]` from x `[A, B, C, R]`: out[b, c − a + A − 1] = Σ_a x[a, b, c].

    The relative-attention "skew", without a copy per row: padded to
    `[A + 1, B, P, R]` (P = C + A − 1, A − 1 zeros before c, one zero row of a) and
    read as rows of B·P·R + R, row a of x starts a·R later than it sat, which moves
    its c to c − a + A − 1; the rows summed, the R past B·P·R (zeros) dropped.
    """
    rows, between, columns, inner = x.shape
    width = columns + rows - 1  # P
    padded = ops.pad(x, [[0, 1], [0, 0], [rows - 1, 0], [0, 0]])
    row = between * width * inner
    shifted = ops.reshape(ops.reshape(padded, (-1,))[: rows * (row + inner)], (rows, row + inner))
    return ops.reshape(ops.sum(shifted, axis=0)[:row], (between, width, inner))
