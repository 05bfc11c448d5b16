"""What the benchmark measures our layers against.

- `PaperLambdaLayer`: the paper's pseudo-code (Bello 2021, Figure 3) taken
  literally: separate q/k/v projections, the relative table gathered into a
  materialised `[n, m, k]` embedding tensor every call, and plain einsums. It
  computes the same function as `LambdaLayer(scope=None, intra_depth=1)`.
- `GlobalAttention`: `keras.layers.MultiHeadAttention` over all positions of
  an image, the attention a lambda layer replaces.
"""

import keras
import numpy as np
from keras import ops


def relative_indices(height, width):
    """`[n, m]` int32: the flat index into a `[2H-1, 2W-1]` table of offset m − n."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    offset_rows = rows[None, :] - rows[:, None] + height - 1
    offset_cols = cols[None, :] - cols[:, None] + width - 1
    return (offset_rows * (2 * width - 1) + offset_cols).astype("int32")


class PaperLambdaLayer(keras.layers.Layer):
    """The paper's pseudo-code lambda layer for images `[b, H, W, d]`, u = 1.

    Weights: `query_kernel` `[d, h·k]`, `key_kernel` `[d, k]`, `value_kernel`
    `[d, v]`, batch norm on queries and values, `table` `[2H−1, 2W−1, k]`.
    """

    def __init__(self, output_dim, key_dim=16, num_heads=4, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = output_dim
        self.key_dim = key_dim
        self.num_heads = num_heads
        self.value_dim = output_dim // num_heads
        self.epsilon = epsilon

    def build(self, input_shape):
        _, height, width, channels = input_shape
        k, v, h = self.key_dim, self.value_dim, self.num_heads
        normal = keras.initializers.RandomNormal
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(channels, h * k), initializer=normal(stddev=(channels * k) ** -0.5)
        )
        self.key_kernel = self.add_weight(
            name="key_kernel", shape=(channels, k), initializer=normal(stddev=channels**-0.5)
        )
        self.value_kernel = self.add_weight(
            name="value_kernel", shape=(channels, v), initializer=normal(stddev=channels**-0.5)
        )
        self.query_norm = keras.layers.BatchNormalization(epsilon=self.epsilon, dtype=self.dtype_policy)
        self.query_norm.build((None, None, h * k))
        self.value_norm = keras.layers.BatchNormalization(epsilon=self.epsilon, dtype=self.dtype_policy)
        self.value_norm.build((None, None, v))
        self.table = self.add_weight(
            name="table", shape=(2 * height - 1, 2 * width - 1, k), initializer=normal(stddev=1.0)
        )
        self.indices = relative_indices(height, width)

    def call(self, inputs, training=None):
        batch, height, width, channels = ops.shape(inputs)
        n, k, v, h = height * width, self.key_dim, self.value_dim, self.num_heads
        x = ops.reshape(inputs, (batch, n, channels))
        queries = self.query_norm(ops.matmul(x, self.query_kernel), training=training)
        queries = ops.reshape(queries, (batch, n, h, k))
        keys = ops.softmax(ops.matmul(x, self.key_kernel), axis=1)  # over the m positions
        values = self.value_norm(ops.matmul(x, self.value_kernel), training=training)
        flat_table = ops.reshape(self.table, (-1, k))
        embeddings = ops.take(flat_table, self.indices, axis=0)  # E [n, m, k], materialised
        content_lambda = ops.einsum("bmk,bmv->bkv", keys, values)
        position_lambdas = ops.einsum("nmk,bmv->bnkv", embeddings, values)
        content_output = ops.einsum("bnhk,bkv->bnhv", queries, content_lambda)
        position_output = ops.einsum("bnhk,bnkv->bnhv", queries, position_lambdas)
        output = content_output + position_output
        return ops.reshape(output, (batch, height, width, h * v))


class GlobalAttention(keras.layers.Layer):
    """Multi-head self-attention over all H·W positions of `[b, H, W, d]` images."""

    def __init__(self, output_dim, num_heads=4, **kwargs):
        super().__init__(**kwargs)
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=output_dim // num_heads, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        _, height, width, channels = input_shape
        sequence = (input_shape[0], height * width, channels)
        self.attention.build(sequence, sequence)

    def call(self, inputs, training=None):
        batch, height, width, channels = ops.shape(inputs)
        x = ops.reshape(inputs, (batch, height * width, channels))
        return ops.reshape(self.attention(x, x), (batch, height, width, -1))
