"""LambdaResNet builders: structure, parameter counts, training, saving, errors."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer
from keras_lambda.models import (
    LambdaResNet,
    LambdaResNet50,
    LambdaResNet101,
    LambdaResNet152,
    LambdaResNet200,
    LambdaResNet270,
    LambdaResNet350,
    LambdaResNet420,
    feature_extractor,
    parse_placement,
)

# Written from the architecture description (PAPER.md, ResNet-RS), not from the code.
BLOCKS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
    270: (4, 29, 53, 4),
    350: (4, 36, 72, 4),
    420: (4, 44, 87, 4),
}
LAMBDA_IN_C4 = {50: 1, 101: 3, 152: 6, 200: 6, 270: 6, 350: 6, 420: 8}
VARIANTS = {
    50: LambdaResNet50,
    101: LambdaResNet101,
    152: LambdaResNet152,
    200: LambdaResNet200,
    270: LambdaResNet270,
    350: LambdaResNet350,
    420: LambdaResNet420,
}


def conv_bn_params(c_in, c_out, kernel):
    """Conv without bias + BN (gamma, beta, moving mean, moving variance)."""
    return kernel * kernel * c_in * c_out + 4 * c_out


def lambda_params(c_in, d, k=16, h=4, u=1, scope=23, table=True):
    """Fused W_Q|W_K|W_V, BN on q and v, the relative table [r, r, k, u]."""
    v = d // h
    count = c_in * (h * k + k * u + v * u) + 4 * h * k + 4 * v * u
    return count + (scope * scope * k * u if table else 0)


def resnet_params(blocks, lambda_blocks, base, classes=1000, scope=23, shared_tables=False):
    """Closed-form parameter count (all weights, BN statistics included)."""
    se_ratio = 0.25 if base == "resnet-rs" else 0.0
    if base == "resnet-rs":
        count = (
            conv_bn_params(3, 32, 3)
            + conv_bn_params(32, 32, 3)
            + conv_bn_params(32, 64, 3)
            + conv_bn_params(64, 64, 3)
        )
    else:
        count = conv_bn_params(3, 64, 7)
    c_in = 64
    for stage, (num_blocks, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
        out = 4 * width
        for index in range(num_blocks):
            stride = 2 if index == 0 and stage > 0 else 1
            count += conv_bn_params(c_in, width, 1)
            if index in lambda_blocks[stage]:
                own_table = not shared_tables
                count += lambda_params(width, width, scope=scope, table=own_table)
                count += 4 * width  # BN after the lambda layer
            else:
                count += conv_bn_params(width, width, 3)
            count += conv_bn_params(width, out, 1)
            if se_ratio:
                reduced = int(width * se_ratio)
                count += out * reduced + reduced + reduced * out + out
            if stride != 1 or c_in != out:
                count += conv_bn_params(c_in, out, 1)
            c_in = out
        if shared_tables and lambda_blocks[stage]:
            count += scope * scope * 16
    return count + 2048 * classes + classes


def all_blocks(num_blocks):
    return set(range(num_blocks))


def test_placement_letters_and_indices():
    assert parse_placement("CCLL", (3, 4, 6, 3)) == ((), (), tuple(range(6)), (0, 1, 2))
    assert parse_placement(("C", "l", [5, 4], "L"), (3, 4, 6, 3)) == ((), (0, 1, 2, 3), (4, 5), (0, 1, 2))


def test_plain_resnet50_matches_the_published_parameter_count():
    """torchvision's ResNet-50 v1.5 has 25,557,032 trainable parameters."""
    model = LambdaResNet(depth=50, base="resnet", placement="CCCC")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 25_557_032


@pytest.mark.parametrize("placement", ["LLLL", "CLLL", "CCLL", "CCCL", "CCCC"])
def test_ablation_parameter_counts(placement):
    model = LambdaResNet(depth=50, base="resnet", placement=placement, scope=23)
    lambda_blocks = [
        all_blocks(n) if letter == "L" else set() for letter, n in zip(placement, BLOCKS[50])
    ]
    assert model.count_params() == resnet_params(BLOCKS[50], lambda_blocks, "resnet")


def test_all_lambda_resnet50_is_about_15m_parameters():
    """The paper's ablation: every 3x3 conv of ResNet-50 a lambda layer, 15.0M."""
    model = LambdaResNet(depth=50, base="resnet", placement="LLLL", scope=23)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert 14.9e6 < trainable < 15.1e6


def test_shared_embeddings_count_one_table_per_stage():
    model = LambdaResNet(depth=50, placement="CCLL", share_embeddings=True)
    lambda_blocks = [set(), set(), all_blocks(6), all_blocks(3)]
    assert model.count_params() == resnet_params(
        BLOCKS[50], lambda_blocks, "resnet-rs", shared_tables=True
    )
    lambdas = [layer for layer in model.layers if isinstance(layer, LambdaLayer)]
    assert len({id(layer.embedding) for layer in lambdas}) == 2


@pytest.mark.slow
@pytest.mark.parametrize("depth", sorted(VARIANTS))
def test_named_variant_builds_with_the_closed_form_parameter_count(depth):
    model = VARIANTS[depth]()
    assert model.name == f"lambda_resnet{depth}"
    blocks = BLOCKS[depth]
    lambda_blocks = [set(), set(), set(range(blocks[2] - LAMBDA_IN_C4[depth], blocks[2])), all_blocks(blocks[3])]
    assert model.count_params() == resnet_params(blocks, lambda_blocks, "resnet-rs")
    lambdas = [layer for layer in model.layers if isinstance(layer, LambdaLayer)]
    assert len(lambdas) == LAMBDA_IN_C4[depth] + blocks[3]
    assert all(
        (layer.key_dim, layer.num_heads, layer.intra_depth, layer.scope) == (16, 4, 1, 23)
        for layer in lambdas
    )
    keras.backend.clear_session()


def tiny(**kwargs):
    defaults = {
        "stackwise_num_blocks": (1, 1, 1, 1),
        "width_multiplier": 0.25,
        "key_dim": 4,
        "scope": 5,
        "classes": 3,
        "input_shape": (64, 64, 3),
    }
    return LambdaResNet(**{**defaults, **kwargs})


def test_lambdaresnet50_forward_and_a_fit_that_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model = LambdaResNet50(input_shape=(64, 64, 3), classes=3, drop_path_rate=0.1)
    images = np.random.default_rng(0).uniform(size=(8, 64, 64, 3)).astype("float32")
    labels = np.arange(8) % 3
    assert model.predict(images, verbose=0).shape == (8, 3)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    losses = model.fit(images, labels, batch_size=4, epochs=4, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"scope": None, "share_embeddings": True}, {"base": "resnet", "placement": "LLLL"}],
    ids=["scope", "global-shared", "resnet-all-lambda"],
)
def test_keras_file_round_trip_reproduces_predictions(tmp_path, kwargs):
    keras.utils.set_random_seed(0)
    model = tiny(**kwargs)
    images = np.random.default_rng(1).uniform(size=(2, 64, 64, 3)).astype("float32")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images, np.array([0, 1]), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = tiny(classes=3)
        images = np.random.default_rng(1).uniform(size=(4, 64, 64, 3)).astype("float32")
        model.compile("adam", "sparse_categorical_crossentropy")
        history = model.fit(images, np.array([0, 1, 2, 0]), epochs=2, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
        assert all(w.dtype == "float32" for w in model.weights)
        assert np.all(np.isfinite(model.predict(images, verbose=0)))
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.slow
@pytest.mark.parametrize("scope", [23, None], ids=["r23", "global"])
def test_a_trained_lambdaresnet50_holds_in_float16(scope):
    """The protocol of the float16 issue: 40 steps on one batch, then inputs x4.
    Before the fix the lambda output of c5_block0 (~60,000 for r=23, global alike)
    overflowed in the 3x3 average pool that follows it."""
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        images = np.random.default_rng(0).normal(size=(8, 128, 128, 3)).astype("float32")
        labels = np.arange(8) % 10
        model = LambdaResNet50(input_shape=(128, 128, 3), classes=10, scope=scope)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy())
        for _ in range(40):
            loss = model.train_on_batch(images, labels)
        assert np.isfinite(loss)
        for scale in (1.0, 4.0):
            assert np.isfinite(model.predict(images * scale, verbose=0)).all(), scale
        for name in ("c5_block0_lambda", "c5_block0_lambda_pool", "c5_block0_lambda_bn"):
            assert keras.backend.standardize_dtype(model.get_layer(name).output.dtype) == "float32"
        # back to float16 after the batch norm
        assert model.get_layer("c5_block0_lambda_relu").compute_dtype == "float16"
    finally:
        keras.config.set_dtype_policy("float32")


def test_feature_extractor_returns_the_stage_strides():
    model = tiny(include_top=False, input_shape=(96, 128, 3))
    features = feature_extractor(model)(np.zeros((1, 96, 128, 3), "float32"))
    for stage, stride, channels in [("c2", 4, 64), ("c3", 8, 128), ("c4", 16, 256), ("c5", 32, 512)]:
        assert tuple(features[stage].shape) == (1, 96 // stride, 128 // stride, channels)


def test_unknown_input_size_with_a_scope_and_pooling():
    model = tiny(include_top=False, pooling="avg", input_shape=None)
    assert model.predict(np.zeros((1, 96, 64, 3), "float32"), verbose=0).shape == (1, 512)


def test_lambda_pool_size_and_activation_options():
    model = tiny(lambda_pool_size=2, activation="silu")
    names = [layer.name for layer in model.layers]
    assert "c4_block0_lambda_pool" in names and "c4_block0_lambda_silu" in names
    assert model.get_layer("c4_block0_lambda_pool").pool_size == (2, 2)


@pytest.mark.parametrize("base, widths", [
    ("resnet-rs", {"stem_conv1_conv": 8, "stem_conv2_conv": 8, "stem_conv3_conv": 16,
                   "stem_conv4_conv": 16}),
    ("resnet-t", {"stem_conv1_conv": 6, "stem_conv2_conv": 8, "stem_conv3_conv": 16}),
    ("resnet", {"stem_conv1_conv": 16}),
])
def test_stem_width_sets_the_stem_channels(base, widths):
    """ResNet-D's stem is w/2, w/2, w, w; timm's tiered one 3w/8, w/2, w (24, 32, 64
    at w = 64); the 7x7 one w. The stages after it keep their widths."""
    model = LambdaResNet(stackwise_num_blocks=(1, 1, 1, 1), placement="CCCC", base=base,
                         stem_width=16, input_shape=(64, 64, 3), classes=3)
    stem = {layer.name: layer.filters for layer in model.layers
            if layer.name.startswith("stem_") and layer.name.endswith("_conv")}
    assert stem == widths
    assert model.get_layer("c2_block0_conv1_conv").filters == 64


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"placement": "CCXL"}, r"`placement` letters must be 'C'.*'X' for stage c4"),
        ({"placement": "CCL"}, r"`placement` needs one entry per stage"),
        ({"placement": ("C", "C", [6], "L")}, r"block index 6 is out of range for stage c4, which has 6 blocks"),
        ({"input_shape": (16, 64, 3)}, r"smaller than the network's stride 32"),
        ({"scope": None, "input_shape": (None, None, 3)}, r"Global lambda layers \(scope=None\).*fixed input_shape"),
        ({"weights": "imagenet"}, r"No ImageNet weights are published for this architecture.*LambdaResNet26T\(weights='imagenet'\)"),
        ({"weights": "no/such/file.weights.h5"}, r"no/such/file.weights.h5"),
        ({"depth": 34}, r"`depth` must be one of 50, 101"),
        ({"base": "vit"}, r"`base` must be one of 'resnet-rs', 'resnet', 'resnet-t'"),
        ({"lambda_pool_size": 4}, r"`lambda_pool_size` must be one of 2, 3"),
        ({"stem_width": 0}, r"`stem_width` must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        LambdaResNet(**kwargs)


def test_input_tensor_is_used_and_checked():
    tensor = keras.Input((64, 96, 3))
    model = tiny(input_shape=None, input_tensor=tensor, scope=None)
    assert model.input_shape == (None, 64, 96, 3) and model.output_shape == (None, 3)
    with pytest.raises(ValueError, match=r"smaller than the network's stride 32"):
        tiny(input_shape=None, input_tensor=keras.Input((16, 64, 3)))
