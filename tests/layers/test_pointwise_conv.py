"""keras_lambda.layers.PointwiseConv2D: a 1x1 convolution (a matmul on a CPU), against
the same function written out in numpy."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import PointwiseConv2D
from keras_lambda.ops.devices import computes_on_cpu
from tests.helpers import numpy, op_gradients, random_array


def test_values_and_gradients_match_numpy():
    x = random_array((2, 5, 3, 6), seed=1)
    probe = random_array((2, 5, 3, 4), seed=2)
    layer = PointwiseConv2D(4)
    layer.build(x.shape)
    layer.bias.assign(random_array((4,), seed=3))
    kernel, bias = numpy(layer.kernel)[0, 0], numpy(layer.bias)

    outputs = np.einsum("bhwc,cd->bhwd", x, kernel) + bias
    np.testing.assert_allclose(numpy(layer(x)), outputs, rtol=1e-5, atol=1e-5)
    # The gradients of what the layer changes, its convolution (the bias is Keras's).
    d_x, d_kernel = op_gradients(layer.convolution_op, [x, numpy(layer.kernel)], probe)
    np.testing.assert_allclose(d_x, np.einsum("bhwd,cd->bhwc", probe, kernel), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(d_kernel, np.einsum("bhwc,bhwd->cd", x, probe)[None, None],
                               rtol=1e-5, atol=1e-5)


def test_unknown_batch_and_activation_in_a_functional_model():
    inputs = keras.Input((4, 4, 6))
    layer = PointwiseConv2D(3, activation="relu")
    model = keras.Model(inputs, layer(inputs))
    x = random_array((5, 4, 4, 6), seed=4)
    kernel, bias = numpy(layer.kernel)[0, 0], numpy(layer.bias)
    expected = np.maximum(np.einsum("bhwc,cd->bhwd", x, kernel) + bias, 0.0)
    np.testing.assert_allclose(model.predict(x, batch_size=2, verbose=0), expected,
                               rtol=1e-5, atol=1e-5)


def test_mixed_precision_computes_in_the_policy_dtype():
    x = random_array((2, 3, 3, 8), seed=5)
    layer = PointwiseConv2D(4, use_bias=False, dtype="mixed_bfloat16")
    outputs = layer(x)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    expected = np.einsum("bhwc,cd->bhwd", x, numpy(layer.kernel)[0, 0])
    np.testing.assert_allclose(numpy(keras.ops.cast(outputs, "float32")), expected,
                               rtol=0.05, atol=0.05)


@pytest.mark.parametrize("argument, value", [("kernel_size", 3), ("strides", 2),
                                              ("dilation_rate", 2)])
def test_anything_but_a_pointwise_convolution_is_refused(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}` must be 1"):
        PointwiseConv2D(4, **{argument: value})
    with pytest.raises(ValueError, match="data_format"):
        PointwiseConv2D(4, data_format="channels_first")


def test_config_round_trip_keeps_the_weights_shape():
    layer = PointwiseConv2D(4, activation="sigmoid", name="expand")
    restored = PointwiseConv2D.from_config(layer.get_config())
    restored.build((None, 1, 1, 6))
    assert (restored.filters, restored.name, restored.kernel.shape) == (4, "expand", (1, 1, 6, 4))
    assert restored.activation is keras.activations.sigmoid


def test_a_cpu_computes_it_as_a_matmul(monkeypatch):
    def no_convolution(layer, inputs, kernel):
        raise AssertionError("convolution_op called")

    x = random_array((2, 3, 3, 4), seed=6)
    if not computes_on_cpu(keras.ops.convert_to_tensor(x)):
        pytest.skip("Keras computes on an accelerator here: the convolution runs")
    monkeypatch.setattr(keras.layers.Conv2D, "convolution_op", no_convolution)
    with pytest.raises(AssertionError, match="convolution_op called"):
        keras.layers.Conv2D(3, 1)(x)
    assert PointwiseConv2D(3)(x).shape == (2, 3, 3, 3)
