"""Stochastic depth: a residual branch dropped per sample while training."""

import keras


@keras.saving.register_keras_serializable(package="keras_lambda")
class StochasticDepth(keras.layers.Layer):
    """Drops a residual branch for a whole sample with probability `rate` in training.

    Kept branches are scaled by 1 / (1 − rate) so the expectation is unchanged
    (Huang et al., 2016, as used by ResNet-RS).

    Example:
    ```python
    import keras
    from keras_lambda.layers import StochasticDepth

    inputs = keras.Input((8, 8, 32))
    branch = keras.layers.Conv2D(32, 3, padding="same")(inputs)
    outputs = keras.layers.Add()([inputs, StochasticDepth(rate=0.1)(branch)])
    ```
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        batch = keras.ops.shape(inputs)[0]
        shape = (batch,) + (1,) * (len(inputs.shape) - 1)
        keep = 1.0 - self.rate
        mask = keras.random.uniform(shape, seed=self.seed_generator) < keep
        return inputs * keras.ops.cast(mask, inputs.dtype) / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
