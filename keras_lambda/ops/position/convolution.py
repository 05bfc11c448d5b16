"""The `conv` and `depthwise` kernels: the position lambdas as a convolution of the
values with the table (the paper's appendix), for inputs of any (even unknown) size."""

from keras import ops

from keras_lambda.ops.position.common import batch_size, causal_crop, spatial_shape


def conv_position_lambdas(values, kernel, dilation_rate=1, causal=False):
    """Values as an extra spatial axis: one (rank + 1)-D convolution, u → k channels.

    values `[b, *S, v, u]` convolved with `[*r, 1, u, k]` (conv3d for images,
    conv2d for sequences) → λp `[b, *S, v, k]`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import conv_position_lambdas

    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(5, 5, 16, 1).astype("float32")       # a scope of 5: [r, r, k, u]
    print(conv_position_lambdas(values, table).shape)   # (2, 8, 8, 32, 16): [b, H, W, v, k]
    ```
    """
    rank = len(values.shape) - 3
    padding = "same"
    if causal:
        values, kernel = causal_crop(values, kernel, dilation_rate)
        padding = "valid"
    # [*r, k, u] → [*r, 1, u, k]: the value axis v is a spatial axis of size 1.
    conv_kernel = ops.expand_dims(ops.swapaxes(kernel, -1, -2), rank)
    return ops.conv(
        values,
        conv_kernel,
        padding=padding,
        dilation_rate=(dilation_rate,) * rank + (1,),
    )


def depthwise_position_lambdas(values, kernel, dilation_rate=1, causal=False):
    """The paper's depthwise formulation: the table tiled over the value channels.

    values `[b, *S, v·u]` run through a depthwise convolution with kernel
    `[*r, v·u, k]` (channel multiplier k), then summed over u → λp `[b, *S, v, k]`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import depthwise_position_lambdas

    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(5, 5, 16, 1).astype("float32")       # a scope of 5: [r, r, k, u]
    print(depthwise_position_lambdas(values, table).shape)   # (2, 8, 8, 32, 16): [b, H, W, v, k]
    ```
    """
    rank = len(values.shape) - 3
    value_dim, intra_depth = values.shape[-2:]
    key_dim = kernel.shape[-2]
    padding = "same"
    if causal:
        values, kernel = causal_crop(values, kernel, dilation_rate)
        padding = "valid"
    spatial = spatial_shape(values, rank)
    batch = batch_size(values)
    channels = ops.reshape(values, (batch,) + spatial + (value_dim * intra_depth,))
    # [*r, k, u] → [*r, u, k] → tiled [*r, v, u, k] → [*r, v·u, k]
    table = ops.swapaxes(kernel, -1, -2)
    tiled = ops.broadcast_to(
        ops.expand_dims(table, rank), kernel.shape[:rank] + (value_dim, intra_depth, key_dim)
    )
    depthwise_kernel = ops.reshape(
        tiled, kernel.shape[:rank] + (value_dim * intra_depth, key_dim)
    )
    lambdas = ops.depthwise_conv(
        channels, depthwise_kernel, padding=padding, dilation_rate=dilation_rate
    )
    if causal:
        spatial = spatial_shape(lambdas, rank)
    lambdas = ops.reshape(lambdas, (batch,) + spatial + (value_dim, intra_depth, key_dim))
    return ops.sum(lambdas, axis=-2)
