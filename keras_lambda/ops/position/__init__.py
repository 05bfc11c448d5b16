"""Position lambdas: the relative-position term of the lambda layer.

Every kernel here computes, for each query position n,

    λp_n = Σ_m E_{n,m} V_m          E_{n,m} = T[(m − n) / dilation + centre]

with V the values `[b, *S, v, u]` (S the spatial axes: `(n,)` for sequences,
`(H, W)` for images), T a relative table `[*r, k, u]` (r odd per axis, offset 0 at
its centre) and E zero for offsets outside the table, between dilation steps, past
the borders (zero padding) and, when `causal`, for m > n. The global relative
lambda of the paper is the case where the table covers every offset of the input
(r = 2H − 1): it is a convolution too, so no kernel but `einsum` ever builds the
`[n, m, k]` tensor, `fft` computes it in O(n log n), and `dft` by matmuls alone (a
DFT over H as matrices, a banded Toeplitz product over W: O(n·W), large matmuls,
fastest in between).

All kernels return λp laid out `[b, *S, v, k]` (what the convolutions produce
natively); `position_output`, what the layer calls, contracts it with the queries
over k, or hands the queries to the kernel's `QUERY_FIRST` form: `fft`'s and `dft`'s
contract a chunk of key channels at a time, so that large grids never exist whole; `einsum`'s
contracts the queries with E first where races found that faster (small n, large v).
They are stateless, take and return tensors, and are written in `keras.ops` so they
run on every Keras 3 backend (`depthwise` is `tf.nn.depthwise_conv2d` on TensorFlow).

One module a job:

    common        shapes, the table clipped and dilated to the input, q·λp
    einsum        `einsum` (E materialised; lambdas or queries first)
    convolution   `conv`, `depthwise`
    spectra       the FFT correlation in keras.ops (`fft`'s portable steps)
    fast_paths    the backends' faster steps, in one table, `FAST_PATHS` (today:
                  `fft`'s correlation through `tf.signal`'s 2-D real FFTs on complex
                  tensors; on PyTorch's CPU
                  the same through torch.fft; on JAX's CPU the portable correlation one
                  key channel at a time; the loop over key chunks as `tf.foldl` and
                  `lax.scan`), each tested against the portable code
    chunks        how many key channels at a time, and the loop over them
    fft           `fft`
    dft           `dft` (its matrices in `dft_matrices`, numpy)

This module is the registry: `KERNELS`, `QUERY_FIRST`, and the dispatch the layer calls.
"""

from keras_lambda.ops.position.common import (
    batch_size,
    contract_queries,
    kernel_reaches,
    spatial_shape,
)
from keras_lambda.ops.position.convolution import (
    conv_position_lambdas,
    depthwise_position_lambdas,
)
from keras_lambda.ops.position.dft import (
    dft_key_chunk,
    dft_position_lambdas,
    dft_position_output,
)
from keras_lambda.ops.position.einsum import (
    einsum_position_lambdas,
    einsum_position_output,
    einsum_queries_first,
)
from keras_lambda.ops.position.fast_paths import FAST_PATHS, fast_path
from keras_lambda.ops.position.fft import (
    fft_key_chunk,
    fft_position_lambdas,
    fft_position_output,
)
from keras_lambda.ops.position.spectra import fft_lengths


# The kernels, by the name `LambdaLayer(implementation=...)` takes. Adding one:
# a module with a function of this contract, registered here, and (for `auto`) a
# rule in `ops/auto.py`.
# KERNELS compute the position lambdas λp `[b, *S, v, k]`, which
# `position_output` contracts with the queries, unless a kernel has a
# QUERY_FIRST form: one that takes the queries and returns the position term
# `[b, n, h, v]` itself (the FFT's, to contract chunk by chunk).
KERNELS = {
    "einsum": einsum_position_lambdas,
    "conv": conv_position_lambdas,
    "depthwise": depthwise_position_lambdas,
    "fft": fft_position_lambdas,
    "dft": dft_position_lambdas,
}
QUERY_FIRST = {
    "einsum": einsum_position_output,
    "fft": fft_position_output,
    "dft": dft_position_output,
}
IMPLEMENTATIONS = tuple(KERNELS)


def position_lambdas(values, kernel, implementation, dilation_rate=1, causal=False):
    """Dispatches to one of `KERNELS`; all return λp `[b, *S, v, k]`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import position_lambdas

    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(15, 15, 16, 1).astype("float32")     # global: [2H - 1, 2W - 1, k, u]
    print(position_lambdas(values, table, "fft").shape)         # (2, 8, 8, 32, 16): [b, H, W, v, k]
    ```
    """
    return KERNELS[implementation](values, kernel, dilation_rate, causal)


def position_output(queries, values, kernel, implementation, dilation_rate=1, causal=False):
    """The position term of the output, `[b, n, h, v]` = Σ_k q_{n,h,k} λp_{n,v,k}.

    queries `[b, n, h, k]`, values `[b, *S, v, u]`, kernel `[*r, k, u]`, with any
    of `IMPLEMENTATIONS`.

    Example:
    ```python
    import numpy as np
    from keras_lambda.ops import position_output

    queries = np.random.rand(2, 64, 4, 16).astype("float32")    # [b, n, h, k], n = 8 x 8
    values = np.random.rand(2, 8, 8, 32, 1).astype("float32")   # [b, H, W, v, u]
    table = np.random.rand(7, 7, 16, 1).astype("float32")       # a scope of 7: [r, r, k, u]
    print(position_output(queries, values, table, "dft").shape)  # (2, 64, 4, 32): [b, n, h, v]
    ```
    """
    if implementation in QUERY_FIRST:
        return QUERY_FIRST[implementation](queries, values, kernel, dilation_rate, causal)
    return contract_queries(
        queries, position_lambdas(values, kernel, implementation, dilation_rate, causal)
    )


__all__ = [
    "FAST_PATHS",
    "IMPLEMENTATIONS",
    "KERNELS",
    "QUERY_FIRST",
    "batch_size",
    "contract_queries",
    "conv_position_lambdas",
    "depthwise_position_lambdas",
    "dft_key_chunk",
    "dft_position_lambdas",
    "dft_position_output",
    "einsum_position_lambdas",
    "einsum_position_output",
    "einsum_queries_first",
    "fast_path",
    "fft_key_chunk",
    "fft_lengths",
    "fft_position_lambdas",
    "fft_position_output",
    "kernel_reaches",
    "position_lambdas",
    "position_output",
    "spatial_shape",
]
