"""Max pooling padded with −inf on every side, as PyTorch's `MaxPool2d(padding=p)`."""

import keras


@keras.saving.register_keras_serializable(package="keras_lambda")
class PaddedMaxPooling2D(keras.layers.Layer):
    """Max pooling that pads `padding` on every side with −inf, as PyTorch's
    `MaxPool2d(padding=p)` does ('same' pads one side only for stride 2, and
    zeros would win a window of negative values, e.g. after SiLU).

    Example:
    ```python
    import numpy as np
    from keras_lambda.layers import PaddedMaxPooling2D

    negative = -np.ones((1, 8, 8, 4), "float32")
    outputs = PaddedMaxPooling2D(pool_size=3, strides=2, padding=1)(negative)
    print(outputs.shape)                               # (1, 4, 4, 4), every value -1 (not 0)
    ```
    """

    def __init__(self, pool_size=3, strides=2, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size
        self.strides = strides
        self.padding = padding

    def call(self, inputs):
        pad = self.padding
        padded = keras.ops.pad(
            inputs, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=float("-inf")
        )
        return keras.ops.max_pool(padded, self.pool_size, self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        def out(size):
            return None if size is None else (size + 2 * self.padding - self.pool_size) // self.strides + 1

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}
