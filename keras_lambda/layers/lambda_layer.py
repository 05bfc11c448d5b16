"""The lambda layer (Bello, ICLR 2021): global, local (lambda convolution), causal."""

import math

import keras
from keras import ops

from keras_lambda.layers import checks
from keras_lambda.layers import incremental
from keras_lambda.layers.fused_batch_norm import FusedBatchNormalization
from keras_lambda.layers.relative_position_embedding import RelativePositionEmbedding
from keras_lambda.ops import auto
from keras_lambda.ops import content as content_ops
from keras_lambda.ops import devices
from keras_lambda.ops import position as position_ops

POSITIONS = ("relative", None)
IMPLEMENTATIONS = ("auto",) + position_ops.IMPLEMENTATIONS


PADDING_LOGIT = -1e9  # a padded key's softmax logit: weight exp(-1e9 - max) = 0


def _mask_context(keys, values, mask):
    """keys `[b, *S, k·u]`, values `[b, *S, v·u]`, mask `[b, *S]` (True: a real
    position) → padded positions out of every lambda: their keys' softmax weight 0
    (a logit of PADDING_LOGIT; float32 or bfloat16 here, never float16) and their
    values 0, so neither the content lambda nor any position lambda sums them."""
    real = ops.expand_dims(ops.cast(mask, "bool"), -1)
    keys = ops.where(real, keys, ops.cast(PADDING_LOGIT, keys.dtype))
    values = ops.where(real, values, ops.zeros_like(values))
    return keys, values


class _ProjectionInitializer(keras.initializers.Initializer):
    """The paper's initialisation of the fused [c, h·k + k·u + v·u] projection.

    W_Q ~ N(0, (c·k)^-1/2), W_K and W_V ~ N(0, c^-1/2), c the input channels.
    """

    def __init__(self, widths, stddevs):
        self.widths = widths
        self.stddevs = stddevs

    def __call__(self, shape, dtype=None):
        blocks = [
            keras.initializers.RandomNormal(stddev=stddev)((shape[0], width), dtype)
            for width, stddev in zip(self.widths, self.stddevs)
        ]
        return ops.concatenate(blocks, axis=-1)


@keras.saving.register_keras_serializable(package="keras_lambda")
class LambdaLayer(keras.layers.Layer):
    """Lambda layer: long-range interactions without attention maps.

    Summarises the context into linear functions (lambdas) and applies them to
    every query: y_n = (λc + λp_n)ᵀ q_n per head, heads concatenated.

    - Queries Q = X W_Q `[b, n, h, k]` (h queries per position, multi-query),
      keys K = X W_K `[b, m, k, u]`, values V = X W_V `[b, m, v, u]`, v = d / h;
      no bias; batch norm on Q and V (layer norm when causal, see `causal`);
      softmax of K over the m positions (float32).
    - Content lambda λc = Σ_m softmax(K)_m V_mᵀ `[b, k, v]`, shared by all queries.
    - Position lambdas λp_n = Σ_m E_{n,m} V_mᵀ `[b, n, k, v]` with relative
      embeddings E_{n,m} = T[m − n]: global (`scope=None`, table `[2H−1, 2W−1, k, u]`)
      or local (`scope=r`, table `[r, r, k, u]`: the lambda convolution, zero padding
      at the borders, any input size).

    Inputs are channels-last: images `[b, H, W, c]` or sequences `[b, n, c]`; the
    output has the same positions and d channels (channel = head·v + value index).
    Under a float16 policy the contractions run in float32 and the output is
    float32 (`output_dtype`): it can exceed float16's range; keep the next layer
    in float32 (LambdaResNet blocks do).

    Args:
        output_dim: d, the output channels; None: the input channels. Must be
            divisible by `num_heads`.
        key_dim: k, the query/key depth. Default 16 (paper).
        num_heads: h, queries per position. Default 4 (paper).
        intra_depth: u, the intra-depth. Default 1 (paper).
        scope: None for a global context, or the odd side r of a local context.
        position: "relative" (relative position embeddings) or None (content
            only: a form of linear attention, no embedding weights).
        implementation: how position lambdas are computed, all with the same
            weights: "einsum" (the paper's pseudo-code, materialised `[n, m, k, u]`
            embeddings; the queries meet them first where that is faster), "conv"
            (values as an extra spatial axis), "depthwise"
            (`keras.ops.depthwise_conv`, i.e. `tf.nn.depthwise_conv2d`), "fft"
            (one FFT convolution, O(n log n): large scopes and global contexts
            on large inputs), "dft" (matmuls only: the DFT over H as matrices, a
            banded Toeplitz product over W; mid-sized global contexts), "auto"
            (the fastest for the geometry, see
            `position_implementation`).
        embedding: a `RelativePositionEmbedding` to share with other layers of the
            same key_dim, intra_depth and scope; None: the layer makes its own.
        causal: sequences only: each position sees only positions <= itself
            (prefix-sum content lambdas, masked position embeddings), in
            training too: Q and V are normalised by layer normalisation over
            their channels, position by position, instead of batch norm, whose
            training statistics mix every position of the batch, later ones
            included (a model trained so learns to read the future).
        dilation_rate: dilation of the local scope (scope != None only).
        norm_momentum, norm_epsilon: of the batch norms on queries and values
            (causal layers: the epsilon of their layer norms).
        position_bias: adds a learned bias `[k]` to every position lambda, the
            same for every v (λp_n + b 1ᵀ): the bias of timm's lambda convolution
            (a Conv3d with bias). Off by default: the paper has none.
        **kwargs: base `keras.layers.Layer` arguments (name, dtype, ...).

    Example:
    ```python
    import keras
    from keras_lambda.layers import LambdaLayer

    inputs = keras.Input((32, 32, 64))
    x = LambdaLayer(key_dim=16, num_heads=4)(inputs)          # global, [b, 32, 32, 64]
    x = LambdaLayer(output_dim=128, scope=7)(x)               # lambda conv, [b, 32, 32, 128]
    ```

    Reference:
        Irwan Bello, "LambdaNetworks: Modeling Long-Range Interactions Without
        Attention", ICLR 2021, https://arxiv.org/abs/2102.08602
    """

    def __init__(
        self,
        output_dim=None,
        key_dim=16,
        num_heads=4,
        intra_depth=1,
        scope=None,
        position="relative",
        implementation="auto",
        embedding=None,
        causal=False,
        dilation_rate=1,
        norm_momentum=0.99,
        norm_epsilon=1e-3,
        position_bias=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.key_dim = checks.positive_int("key_dim", key_dim)
        self.num_heads = checks.positive_int("num_heads", num_heads)
        self.intra_depth = checks.positive_int("intra_depth", intra_depth)
        if output_dim is not None:
            checks.positive_int("output_dim", output_dim)
            self._check_divisible(output_dim, "output_dim")
        self.output_dim = output_dim
        self.scope = checks.optional_scope(scope)
        self.position = checks.one_of("position", position, POSITIONS)
        self.implementation = checks.one_of(
            "implementation", implementation, IMPLEMENTATIONS
        )
        self.dilation_rate = checks.positive_int("dilation_rate", dilation_rate)
        if self.scope is None and dilation_rate != 1:
            raise ValueError(
                "`dilation_rate` applies to a local scope; a global context "
                f"(scope=None) needs dilation_rate=1. Received: dilation_rate={dilation_rate}"
            )
        checks.one_of("causal", causal, (False, True))
        self.causal = bool(causal)
        self.norm_momentum = checks.number_in("norm_momentum", norm_momentum, 0, 1)
        self.norm_epsilon = checks.number_in(
            "norm_epsilon", norm_epsilon, 0, math.inf, low_inclusive=False, high_inclusive=False
        )
        checks.one_of("position_bias", position_bias, (False, True))
        if position_bias and self.position is None:
            raise ValueError(
                "`position_bias` adds to the position lambdas; a content-only layer "
                "(position=None) has none. Received: position_bias=True, position=None"
            )
        self.position_bias = bool(position_bias)
        self._check_embedding(embedding)
        self.supports_masking = True  # padding [b, *S] (False) leaves every lambda
        # The constructor argument (shared) and the table in use (shared or own).
        self._shared_embedding = embedding
        self.embedding = embedding

    def _check_divisible(self, channels, argument):
        if channels % self.num_heads:
            raise ValueError(
                f"`{argument}` must be divisible by `num_heads`={self.num_heads} "
                f"(value depth v = d / h). Received: {argument}={channels}"
            )

    def _check_embedding(self, embedding):
        if embedding is None:
            return
        if self.position is None:
            raise ValueError(
                "`embedding` needs position='relative'; a content-only layer "
                f"(position=None) has no position embedding. Received: embedding={embedding!r}"
            )
        if not isinstance(embedding, RelativePositionEmbedding):
            raise ValueError(
                "`embedding` must be a keras_lambda.layers.RelativePositionEmbedding "
                f"or None. Received: embedding={embedding!r}"
            )
        for argument in ("key_dim", "intra_depth", "scope"):
            if getattr(embedding, argument) != getattr(self, argument):
                raise ValueError(
                    f"`embedding` was made with {argument}="
                    f"{getattr(embedding, argument)} but this layer has {argument}="
                    f"{getattr(self, argument)}; a shared embedding must match."
                )

    # Shapes -----------------------------------------------------------------

    def _resolved_output_dim(self, input_shape):
        return self.output_dim if self.output_dim is not None else input_shape[-1]

    def _check_input_shape(self, input_shape):
        rank = len(input_shape)
        if rank not in (3, 4):
            raise ValueError(
                "`inputs` must have rank 3 (sequences [b, n, c]) or 4 (images "
                f"[b, H, W, c]). Received: input shape {tuple(input_shape)} (rank {rank})"
            )
        if input_shape[-1] is None:
            raise ValueError(
                "The channel axis of `inputs` must be known. Received: input shape "
                f"{tuple(input_shape)}"
            )
        if self.causal and rank != 3:
            raise ValueError(
                "`causal`=True applies to sequences [b, n, c]; images have no order. "
                f"Received: input shape {tuple(input_shape)}"
            )
        spatial = tuple(input_shape[1:-1])
        if self.position and self.scope is None and self.embedding is None:
            if any(size is None for size in spatial):
                raise ValueError(
                    "A global context (scope=None) with relative positions needs a "
                    f"known spatial size; received input shape {tuple(input_shape)}. "
                    "Fix the input size, use a scope (lambda convolution), or "
                    "position=None."
                )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        channels = input_shape[-1]
        output_dim = self._resolved_output_dim(input_shape)
        self._check_divisible(output_dim, "output_dim")
        h, k, u = self.num_heads, self.key_dim, self.intra_depth
        self.value_dim = output_dim // h
        v = self.value_dim
        widths = (h * k, k * u, v * u)
        # One fused projection: a single matmul instead of three.
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel",
            shape=(channels, sum(widths)),
            initializer=_ProjectionInitializer(
                widths, (1 / math.sqrt(channels * k), channels**-0.5, channels**-0.5)
            ),
        )
        positions_shape = tuple(input_shape[:-1])
        self.query_norm = self._batch_norm("query_norm", positions_shape + (h * k,))
        self.value_norm = self._batch_norm("value_norm", positions_shape + (v * u,))
        if self.position == "relative":
            if self.embedding is None:
                self.embedding = RelativePositionEmbedding(
                    key_dim=k,
                    intra_depth=u,
                    scope=self.scope,
                    dtype=self.dtype_policy,
                    name="embedding",
                )
            if not self.embedding.built:
                self.embedding.build(input_shape)
            self.embedding.check_serves(input_shape, k, u, self.scope, self.name)
        if self.position_bias:
            self.position_bias_weight = self.add_weight(
                name="position_bias", shape=(k,), initializer="zeros"
            )

    def _batch_norm(self, name, shape):
        if self.causal:  # statistics of one position only: nothing from later ones
            norm = keras.layers.LayerNormalization(
                epsilon=self.norm_epsilon, dtype=self.dtype_policy, name=name)
            norm.build(shape)
            return norm
        norm = FusedBatchNormalization(
            momentum=self.norm_momentum,
            epsilon=self.norm_epsilon,
            dtype=self.dtype_policy,
            name=name,
        )
        norm.build(shape)
        return norm

    def compute_mask(self, inputs, mask=None):
        return mask  # the same positions come out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self._resolved_output_dim(input_shape),)

    @property
    def output_dtype(self):
        """float32 under a float16 policy (see `call`), else the compute dtype."""
        return "float32" if self.compute_dtype == "float16" else self.compute_dtype

    def compute_output_spec(self, inputs, training=None, mask=None):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.output_dtype)

    def position_implementation(self, spatial_shape, value_dim=None):
        """The kernel used for inputs of `spatial_shape` (resolves "auto" with
        `keras_lambda.ops.choose_implementation`, see benchmarks/records/auto.md).
        `value_dim` (v) defaults to the built layer's, or output_dim / h."""
        if self.implementation != "auto":
            return self.implementation
        value_dim = value_dim or getattr(self, "value_dim", None)
        if value_dim is None and self.output_dim is not None:
            value_dim = self.output_dim // self.num_heads
        try:
            return auto.choose_implementation(
                tuple(spatial_shape),
                scope=self.scope,
                value_dim=value_dim,
                dilation_rate=self.dilation_rate,
                intra_depth=self.intra_depth,
                causal=self.causal,
                backend=keras.backend.backend(),
                device=devices.kind(),
            )
        except ValueError:
            raise ValueError(
                "position_implementation needs value_dim for an unbuilt layer without "
                "output_dim: build the layer or pass value_dim."
            ) from None

    # Forward ----------------------------------------------------------------

    def call(self, inputs, training=None, mask=None):
        h, k, u, v = self.num_heads, self.key_dim, self.intra_depth, self.value_dim
        spatial = tuple(inputs.shape[1:-1])
        batch = position_ops.batch_size(inputs)
        spatial_sizes = position_ops.spatial_shape(inputs, len(spatial))
        if not keras.backend.is_float_dtype(inputs.dtype):  # Keras casts float inputs only
            inputs = ops.cast(inputs, self.compute_dtype)

        projected = ops.matmul(inputs, ops.cast(self.qkv_kernel, inputs.dtype))
        queries, keys, values = ops.split(projected, [h * k, h * k + k * u], axis=-1)
        if self.causal:  # layer norms: each position by itself
            queries, values = self.query_norm(queries), self.value_norm(values)
        else:  # padding (mask False) stays out of the statistics (Keras's masked moments)
            queries = self.query_norm(queries, training=training, mask=mask)
            values = self.value_norm(values, training=training, mask=mask)
        if self.output_dtype != self.compute_dtype:
            # The lambdas sum r² (or n) unnormalised positions and the output is their
            # product with the queries: trained layers reach float16's 65,504. The
            # normalised q, k, v are cast once; every contraction runs in float32, and
            # so does the output (bfloat16 has float32's range and keeps its speed).
            queries, keys, values = (ops.cast(t, "float32") for t in (queries, keys, values))
        if mask is not None:
            keys, values = _mask_context(keys, values, mask)

        queries = ops.reshape(queries, (batch, -1, h, k))  # [b, n, h, k]
        keys = ops.reshape(keys, (batch, -1, k, u))  # [b, m, k, u]
        flat_values = ops.reshape(values, (batch, -1, v, u))  # [b, m, v, u]

        if self.causal:
            content = content_ops.causal_content_lambdas(keys, flat_values)
            outputs = ops.einsum("bnhk,bnkv->bnhv", queries, content)
        else:
            content = content_ops.content_lambda(keys, flat_values)  # [b, k, v]
            outputs = ops.einsum("bnhk,bkv->bnhv", queries, content)

        if self.position == "relative":
            kernel = ops.cast(self.embedding.kernel(spatial), queries.dtype)
            outputs = outputs + position_ops.position_output(
                queries,
                ops.reshape(values, (batch,) + spatial_sizes + (v, u)),
                kernel,
                self.position_implementation(spatial),
                self.dilation_rate,
                self.causal,
            )  # [b, n, h, v]
            if self.position_bias:  # q_n · b, the same for every v: never [b, n, v, k]
                bias = ops.cast(self.position_bias_weight, queries.dtype)
                outputs = outputs + ops.expand_dims(ops.einsum("bnhk,k->bnh", queries, bias), -1)

        return ops.reshape(outputs, (batch,) + spatial_sizes + (h * v,))

    # Generation ---------------------------------------------------------------

    def decoding_state(self, batch_size):
        """The state before position 0, for `decode_step` (a built causal layer)."""
        return incremental.initial_state(self, batch_size)

    def decode_step(self, inputs, state):
        """One position at a time: inputs `[b, c]` → (outputs `[b, d]`, next state),
        equal to the full causal layer's outputs at that position, in O(1) per step
        for the content lambda (see `keras_lambda.layers.incremental`)."""
        return incremental.step(self, inputs, state)

    # Serialization ----------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        embedding = None
        if self._shared_embedding is not None:
            embedding = keras.saving.serialize_keras_object(self._shared_embedding)
            # Keras marks an object as shared only once it meets it a second time,
            # after the first layer's config was taken; mark it from the start so
            # that loading a model (in Keras's object-sharing scope) gives every
            # layer the same instance again.
            embedding["shared_object_id"] = id(self._shared_embedding)
        config.update(
            {
                "output_dim": self.output_dim,
                "key_dim": self.key_dim,
                "num_heads": self.num_heads,
                "intra_depth": self.intra_depth,
                "scope": self.scope,
                "position": self.position,
                "implementation": self.implementation,
                "embedding": embedding,
                "causal": self.causal,
                "dilation_rate": self.dilation_rate,
                "norm_momentum": self.norm_momentum,
                "norm_epsilon": self.norm_epsilon,
                "position_bias": self.position_bias,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("embedding") is not None:
            config["embedding"] = keras.saving.deserialize_keras_object(
                config["embedding"]
            )
        return cls(**config)
