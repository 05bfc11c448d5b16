"""The relative position table of lambda layers, shareable between layers."""

import keras
from keras import ops

from keras_lambda.layers import checks


LARGER_INPUTS = ("error", "resample")


def resample_table(table, offsets):
    """A relative table `[*R, k, u]` resampled to `[*offsets, k, u]` (bilinear,
    half-pixel centres: the centre, offset 0, maps to the centre)."""
    shape = tuple(table.shape)
    rows, columns = (shape[0], 1) if len(offsets) == 1 else shape[:2]
    target = (offsets[0], 1) if len(offsets) == 1 else tuple(offsets)
    channels = shape[-2] * shape[-1]
    image = ops.reshape(table, (1, rows, columns, channels))
    resized = ops.image.resize(image, target, interpolation="bilinear", antialias=False,
                               data_format="channels_last")
    return ops.reshape(resized, tuple(offsets) + shape[-2:])


@keras.saving.register_keras_serializable(package="keras_lambda")
class RelativePositionEmbedding(keras.layers.Layer):
    """Relative position embeddings E_{n,m} = T[m − n] for lambda layers.

    Holds one table T indexed by the offset between a query position n and a
    context position m, so position lambdas are translation equivariant. Pass one
    instance as `embedding=` to several `LambdaLayer`s of the same geometry to
    share it (the paper's shared embeddings: memory Θ(k·n·m) once, not per layer).
    Sharing survives `.keras` save/load.

    Table shapes (offset 0 at the centre of every spatial axis):
    - global context (`scope=None`) over an H×W map: `[2H − 1, 2W − 1, k, u]`,
      over a sequence of n positions: `[2n − 1, k, u]`;
    - local context of scope r: `[r, r, k, u]` (images) or `[r, k, u]` (sequences).

    The geometry is fixed at build from the shape of the feature map the
    embedding serves (`[b, H, W, c]` or `[b, n, c]`); the first lambda layer that
    uses it builds it. A global table serves any input up to its size (smaller
    inputs use its central part, the offsets they have). Larger inputs raise,
    or with `larger_inputs="resample"` get the table resampled to the offsets
    they need: bilinear, half-pixel centres, as timm and Swin resize relative
    tables for fine-tuning at a higher resolution (FixRes). Offset 0 stays at
    the centre and the kernel is still indexed by offset alone, so the layer
    stays translation equivariant; the learned pattern is stretched, offset d
    of an S'-wide input reading the table near d·(2S − 1)/(2S' − 1).

    Args:
        key_dim: k, the query/key depth. Default 16.
        intra_depth: u, the intra-depth. Default 1.
        scope: None for a global context, or the odd side r of the local context.
        spatial_shape: global tables only: the largest input, `(H, W)` or `(n,)`.
            None: the spatial shape of the first input it is built for.
        embeddings_initializer: initializer of T. Default N(0, 1) (the paper).
        larger_inputs: global tables: "error" (default) or "resample" (inputs
            larger than the table resample it, see above).
        **kwargs: base `keras.layers.Layer` arguments (name, dtype, ...).

    The lambda layers read it through `kernel(spatial)`: the relative kernel for
    an input of spatial sizes S, `[2S − 1, k, u]` (global) or `[r, ..., k, u]` (scope).

    Example:
    ```python
    import keras
    from keras_lambda.layers import LambdaLayer, RelativePositionEmbedding

    shared = RelativePositionEmbedding(key_dim=16, spatial_shape=(16, 16))
    x = keras.Input((16, 16, 64))
    y = LambdaLayer(embedding=shared)(x)
    y = LambdaLayer(embedding=shared)(y)  # same table, trained by both
    ```
    """

    def __init__(
        self,
        key_dim=16,
        intra_depth=1,
        scope=None,
        spatial_shape=None,
        embeddings_initializer=None,
        larger_inputs="error",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.larger_inputs = checks.one_of("larger_inputs", larger_inputs, LARGER_INPUTS)
        self.key_dim = checks.positive_int("key_dim", key_dim)
        self.intra_depth = checks.positive_int("intra_depth", intra_depth)
        self.scope = checks.optional_scope(scope)
        if spatial_shape is not None:
            if scope is not None:
                raise ValueError(
                    "`spatial_shape` applies to global embeddings (scope=None) only; "
                    f"a local table is [r, r, k, u]. Received: scope={scope}, "
                    f"spatial_shape={spatial_shape!r}"
                )
            spatial_shape = tuple(spatial_shape)
            if len(spatial_shape) not in (1, 2) or not all(
                isinstance(size, int) and size >= 1 for size in spatial_shape
            ):
                raise ValueError(
                    "`spatial_shape` must be (n,) for sequences or (H, W) for images, "
                    f"positive integers. Received: spatial_shape={spatial_shape!r}"
                )
        self.spatial_shape = spatial_shape
        self.max_spatial_shape = None  # global tables: the largest input, set at build
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.RandomNormal(stddev=1.0)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape):
        spatial = tuple(input_shape[1:-1])
        rank = len(spatial)
        if rank not in (1, 2):
            raise ValueError(
                "A relative position embedding serves inputs of rank 3 [b, n, c] or "
                f"4 [b, H, W, c]. Received input shape {tuple(input_shape)}"
            )
        if self.scope is not None:
            table_shape = (self.scope,) * rank
        else:
            size = self.spatial_shape
            if size is None:
                if any(s is None for s in spatial):
                    raise ValueError(
                        "A global relative embedding (scope=None) needs a known spatial "
                        f"size to size its table; received input shape "
                        f"{tuple(input_shape)}. Give the input a fixed size, pass "
                        "spatial_shape=, or use a scope (lambda convolution)."
                    )
                size = spatial
            elif len(size) != rank:
                raise ValueError(
                    f"`spatial_shape`={size} has {len(size)} axes but the input "
                    f"{tuple(input_shape)} has {rank} spatial axes."
                )
            self.max_spatial_shape = tuple(int(s) for s in size)
            table_shape = tuple(2 * s - 1 for s in self.max_spatial_shape)
        self.table = self.add_weight(
            name="table",
            shape=table_shape + (self.key_dim, self.intra_depth),
            initializer=self.embeddings_initializer,
        )

    @property
    def rank(self):
        """The number of spatial axes the table was built for (None before build)."""
        return len(self.table.shape) - 2 if self.built else None

    def check_serves(self, input_shape, key_dim, intra_depth, scope, layer_name):
        """Raises ValueError unless this built table fits a layer's geometry."""
        for argument, wanted, own in (
            ("key_dim", key_dim, self.key_dim),
            ("intra_depth", intra_depth, self.intra_depth),
            ("scope", scope, self.scope),
        ):
            if wanted != own:
                raise ValueError(
                    f"Layer '{layer_name}' has {argument}={wanted} but its shared "
                    f"embedding '{self.name}' was made with {argument}={own}."
                )
        spatial = tuple(input_shape[1:-1])
        if len(spatial) != self.rank:
            raise ValueError(
                f"Layer '{layer_name}' receives {len(spatial)} spatial axes (input shape "
                f"{tuple(input_shape)}) but its shared embedding '{self.name}' has "
                f"{self.rank}."
            )
        self.check_size(spatial)

    def check_size(self, spatial):
        """Raises ValueError if a global table is too small for `spatial` sizes
        (unless it resamples)."""
        if self.scope is not None or self.larger_inputs == "resample":
            return
        for size, limit in zip(spatial, self.max_spatial_shape):
            if size is not None and size > limit:
                raise ValueError(
                    f"Input spatial shape {tuple(spatial)} is larger than the "
                    f"{self.max_spatial_shape} that the global relative embedding "
                    f"'{self.name}' was built for. Build it for the largest input "
                    "(spatial_shape=...), let it resample (larger_inputs='resample'), "
                    "or use a scope (lambda convolution)."
                )

    def kernel(self, spatial):
        """The relative kernel `[*r, k, u]` for an input of spatial sizes `spatial`.

        Global tables are cropped to the offsets that occur in the input
        (`[2S − 1, k, u]`); unknown sizes get the whole table, which is equally
        correct (larger offsets only meet zero padding).
        """
        table = self.table
        if self.scope is not None:
            return table
        self.check_size(spatial)
        limits = self.max_spatial_shape
        if any(size is not None and size > limit for size, limit in zip(spatial, limits)):
            limits = tuple(max(size or 0, limit) for size, limit in zip(spatial, limits))
            table = resample_table(table, tuple(2 * limit - 1 for limit in limits))
        slices = []
        for size, limit in zip(spatial, limits):
            if size is None:
                slices.append(slice(None))
            else:
                slices.append(slice(limit - size, limit + size - 1))
        return table[tuple(slices)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "key_dim": self.key_dim,
                "intra_depth": self.intra_depth,
                "scope": self.scope,
                "spatial_shape": self.spatial_shape,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "larger_inputs": self.larger_inputs,
            }
        )
        return config
