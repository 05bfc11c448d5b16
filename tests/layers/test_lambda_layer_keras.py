"""The Keras contract of LambdaLayer: config, saving, precision, XLA, models."""

import inspect

import keras
import numpy as np
import pytest
from keras.src import testing

from keras_lambda.layers import LambdaLayer, RelativePositionEmbedding
from tests.helpers import numpy


BASE_LAYER_ARGUMENTS = {"name", "trainable", "dtype"}  # keras.layers.Layer's kwargs


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    keras.config.set_dtype_policy("float32")


class KerasLayerTest(testing.TestCase):
    """Keras's own peer check: build, call, serialization, training, mixed precision."""

    def test_global_image(self):
        self.run_layer_test(
            LambdaLayer,
            init_kwargs={"key_dim": 8, "num_heads": 4},
            input_shape=(2, 5, 6, 8),
            expected_output_shape=(2, 5, 6, 8),
            expected_num_trainable_weights=6,  # qkv, 2 x (gamma, beta), table
            expected_num_non_trainable_weights=4,  # 2 x (moving mean, variance)
        )

    def test_lambda_convolution_with_output_dim(self):
        self.run_layer_test(
            LambdaLayer,
            init_kwargs={"output_dim": 12, "num_heads": 3, "scope": 3, "intra_depth": 2},
            input_shape=(2, 7, 5, 4),
            expected_output_shape=(2, 7, 5, 12),
            expected_num_trainable_weights=6,
            expected_num_non_trainable_weights=4,
        )

    def test_causal_sequence(self):
        self.run_layer_test(
            LambdaLayer,
            init_kwargs={"causal": True, "scope": 5},
            input_shape=(2, 9, 8),
            expected_output_shape=(2, 9, 8),
        )

    def test_content_only(self):
        self.run_layer_test(
            LambdaLayer,
            init_kwargs={"position": None},
            input_shape=(2, 9, 8),
            expected_output_shape=(2, 9, 8),
            expected_num_trainable_weights=5,
        )


def test_get_config_returns_exactly_the_constructor_arguments():
    layer = LambdaLayer(output_dim=32, key_dim=8, scope=5, dilation_rate=2, name="lam")
    config = layer.get_config()
    constructor = set(inspect.signature(LambdaLayer.__init__).parameters) - {"self", "kwargs"}
    assert set(config) == constructor | BASE_LAYER_ARGUMENTS
    assert config["output_dim"] == 32 and config["scope"] == 5 and config["dilation_rate"] == 2
    clone = LambdaLayer.from_config(config)
    assert clone.get_config() == config


def test_embedding_config_round_trip():
    embedding = RelativePositionEmbedding(key_dim=8, spatial_shape=(6, 6), name="shared")
    config = embedding.get_config()
    constructor = set(inspect.signature(RelativePositionEmbedding.__init__).parameters)
    assert set(config) == (constructor - {"self", "kwargs"}) | BASE_LAYER_ARGUMENTS
    assert RelativePositionEmbedding.from_config(config).get_config() == config


def lambda_model(input_shape, *layers):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(
    "input_shape, layer_kwargs",
    [
        ((6, 5, 8), [{}, {"scope": 3, "output_dim": 16}]),
        ((6, 5, 8), [{"position": None}, {"implementation": "einsum", "intra_depth": 2}]),
        ((9, 8), [{"causal": True}, {"causal": True, "scope": 3, "dilation_rate": 2}]),
    ],
    ids=["image", "content-einsum", "causal"],
)
def test_keras_file_save_load_reproduces_outputs(tmp_path, input_shape, layer_kwargs):
    keras.utils.set_random_seed(0)
    model = lambda_model(input_shape, *[LambdaLayer(**kwargs) for kwargs in layer_kwargs])
    data = np.random.default_rng(0).normal(size=(3,) + input_shape).astype("float32")
    model.compile("adam", "mse")
    model.fit(data, np.zeros_like(numpy(model(data))), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-6, atol=1e-6)


def test_shared_embedding_is_one_table_and_stays_shared_after_loading(tmp_path):
    keras.utils.set_random_seed(0)
    shared = RelativePositionEmbedding(key_dim=16, name="shared_table")
    first, second = LambdaLayer(embedding=shared), LambdaLayer(embedding=shared)
    model = lambda_model((6, 6, 8), first, second)
    assert first.embedding is second.embedding
    tables = [w for w in model.weights if w.path.endswith("table")]
    assert len({id(w) for w in tables}) == 1
    data = np.random.default_rng(0).normal(size=(2, 6, 6, 8)).astype("float32")
    path = tmp_path / "shared.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    first, second = [layer for layer in loaded.layers if isinstance(layer, LambdaLayer)]
    assert first.embedding is second.embedding
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("implementation", ["einsum", "conv", "depthwise"])
def test_weights_trained_with_one_implementation_load_into_another(implementation):
    keras.utils.set_random_seed(0)
    data = np.random.default_rng(1).normal(size=(2, 7, 6, 8)).astype("float32")
    trained = lambda_model((7, 6, 8), LambdaLayer(scope=5, implementation="einsum"))
    trained.compile("adam", "mse")
    trained.fit(data, data, epochs=2, verbose=0)
    other = lambda_model((7, 6, 8), LambdaLayer(scope=5, implementation=implementation))
    other.set_weights(trained.get_weights())
    np.testing.assert_allclose(other.predict(data, verbose=0), trained.predict(data, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"implementation": "fft"}, {"implementation": "einsum"}, {"scope": 7},
     {"causal": True}],
    ids=["global-auto-dft", "global-fft", "global-einsum", "scope-7-auto", "causal"],
)
def test_mixed_precision_keeps_float32_variables_and_finite_outputs(policy, kwargs):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    shape = (256, 32) if kwargs.get("causal") else (32, 32, 32)
    layer = LambdaLayer(**kwargs)
    model = lambda_model(shape, layer)
    assert all(w.dtype == "float32" for w in layer.weights)
    inputs = 4.0 * np.random.default_rng(0).normal(size=(4,) + shape).astype("float32")
    for training in (False, True):
        outputs = model(inputs, training=training)
        # float16 layers contract in float32 and return float32 (their outputs outgrow
        # float16's range); bfloat16 has float32's range and stays bfloat16.
        expected = "float32" if policy == "mixed_float16" else "bfloat16"
        assert keras.backend.standardize_dtype(outputs.dtype) == expected
        assert np.all(np.isfinite(numpy(outputs).astype("float32")))
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    history = model.fit(inputs, np.zeros((4,) + shape[:-1] + (32,)), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize("scope", [None, 23])
def test_float16_outputs_beyond_its_range_stay_finite_and_match_float32(scope):
    """Inputs scaled so that the float32 output passes float16's largest value (65,504):
    under mixed_float16 the layer still returns it, to float16's input precision."""
    keras.utils.set_random_seed(0)
    inputs = 40.0 * np.random.default_rng(1).normal(size=(2, 24, 24, 32)).astype("float32")
    reference = LambdaLayer(64, scope=scope)
    expected = keras.ops.convert_to_numpy(reference(inputs))
    assert np.abs(expected).max() > 65504  # the case that overflowed before
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = LambdaLayer(64, scope=scope)
        layer.build(inputs.shape)
        layer.set_weights(reference.get_weights())
        outputs = keras.ops.convert_to_numpy(layer(inputs))
    finally:
        keras.config.set_dtype_policy("float32")
    assert outputs.dtype == np.float32 and np.isfinite(outputs).all()
    # q, k, v pass through float16 once (relative precision 2^-11 ≈ 5e-4).
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=2e-3 * np.abs(expected).max())


def classifier(input_shape, **lambda_kwargs):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Dense(16),
            LambdaLayer(**lambda_kwargs),
            keras.layers.GlobalAveragePooling1D()
            if len(input_shape) == 2
            else keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )


def make_classification(input_shape, samples=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, samples)
    data = rng.normal(size=(samples,) + input_shape).astype("float32")
    data[..., 0] += labels.reshape((-1,) + (1,) * len(input_shape[:-1]))
    return data, labels


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize(
    "input_shape, kwargs",
    [((8, 8, 3), {}), ((8, 8, 3), {"scope": 3, "implementation": "conv"}), ((12, 3), {"causal": True})],
    ids=["global", "scope-conv", "causal"],
)
def test_fit_in_sequential_lowers_the_loss(jit_compile, input_shape, kwargs):
    keras.utils.set_random_seed(0)
    data, labels = make_classification(input_shape)
    model = classifier(input_shape, **kwargs)
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    history = model.fit(data, labels, batch_size=16, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]


def test_unknown_batch_and_spatial_size_with_a_scope():
    keras.utils.set_random_seed(0)
    model = lambda_model((None, None, 8), LambdaLayer(scope=3))
    for size in [(5, 7), (9, 4)]:
        outputs = model.predict(np.ones((2,) + size + (8,), "float32"), verbose=0)
        assert outputs.shape == (2,) + size + (8,)


def test_compute_output_shape():
    layer = LambdaLayer(output_dim=24, num_heads=4, scope=3)
    assert layer.compute_output_shape((None, None, 7, 5)) == (None, None, 7, 24)
    assert LambdaLayer().compute_output_shape((None, 10, 12)) == (None, 10, 12)
    symbolic = LambdaLayer(output_dim=8)(keras.Input((5, 6, 4)))
    assert tuple(symbolic.shape) == (None, 5, 6, 8)


def test_global_table_sized_from_the_input():
    layer = LambdaLayer(key_dim=8, intra_depth=2)
    layer.build((None, 6, 5, 8))
    assert tuple(layer.embedding.table.shape) == (11, 9, 8, 2)
    sequence = LambdaLayer(scope=7)
    sequence.build((None, 30, 8))
    assert tuple(sequence.embedding.table.shape) == (7, 16, 1)


def test_auto_is_the_ops_choice_for_the_layers_geometry():
    """The measured decisions themselves are tests/ops/test_auto.py's."""
    from keras_lambda.ops import choose_implementation

    layer = LambdaLayer(output_dim=128, scope=7, dilation_rate=2)
    assert layer.position_implementation((64, 64)) == choose_implementation(
        (64, 64), scope=7, value_dim=32, dilation_rate=2, backend=keras.backend.backend())


def test_auto_reads_v_from_the_built_layer():
    layer = LambdaLayer()  # output_dim: the input's channels
    with pytest.raises(ValueError, match="needs value_dim"):
        layer.position_implementation((32, 32))
    assert layer.position_implementation((12, 12), value_dim=64) == "einsum"
    assert layer.position_implementation((12, 12), value_dim=8) == "dft"
    layer.build((None, 12, 12, 256))
    assert layer.position_implementation((12, 12)) == "einsum"  # v = 64 from the build
    narrow = LambdaLayer()
    narrow.build((None, 12, 12, 32))
    assert narrow.position_implementation((12, 12)) == "dft"  # v = 8


def test_explicit_implementation_is_kept():
    assert LambdaLayer(implementation="conv").position_implementation((8, 8)) == "conv"
