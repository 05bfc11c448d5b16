"""Stateless lambda kernels: content lambdas and position lambdas, in keras.ops."""

from keras_lambda.ops.auto import choose_implementation
from keras_lambda.ops.content import causal_content_lambdas, content_lambda
from keras_lambda.ops.embeddings import dense_embeddings
from keras_lambda.ops.position import (
    FAST_PATHS,
    IMPLEMENTATIONS,
    KERNELS,
    QUERY_FIRST,
    conv_position_lambdas,
    depthwise_position_lambdas,
    dft_position_lambdas,
    dft_position_output,
    einsum_position_lambdas,
    fft_key_chunk,
    fft_position_lambdas,
    fft_position_output,
    position_lambdas,
    position_output,
)

__all__ = [
    "FAST_PATHS",
    "IMPLEMENTATIONS",
    "KERNELS",
    "QUERY_FIRST",
    "choose_implementation",
    "causal_content_lambdas",
    "content_lambda",
    "conv_position_lambdas",
    "dense_embeddings",
    "depthwise_position_lambdas",
    "dft_position_lambdas",
    "dft_position_output",
    "einsum_position_lambdas",
    "fft_key_chunk",
    "fft_position_lambdas",
    "fft_position_output",
    "position_lambdas",
    "position_output",
]
