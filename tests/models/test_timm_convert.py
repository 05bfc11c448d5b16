"""timm's LambdaResNets in Keras, proven against timm itself (PyTorch, CPU).

For each architecture, timm builds the model with random weights; every batch
norm's statistics and affine parameters, every bias and every relative table
are then randomised too (so that every tensor of the checkpoint matters), the
state dict is saved as .safetensors (tests/timm_reference.py, in a process of its
own) and converted by `keras-lambda convert`, and both models run on the same
random batch: every stage's feature map and the logits agree within 1e-4 of the
largest value (float32).
"""


import keras
import numpy as np
import pytest

from keras_lambda import models
from keras_lambda.models import ConversionError, convert_timm, presets
from tests.helpers import numpy, run_cli

pytestmark = pytest.mark.needs_timm  # its reference runs timm
TIMM_MODELS = presets.names("timm")
STAGES = ("c2", "c3", "c4", "c5")
TOLERANCE = 1e-4  # of the largest |value|, float32


def keras_outputs(model, images):
    """Every stage's output and the logits (before the softmax) of our model."""
    stages = models.feature_extractor(model)(images)
    pooled = numpy(keras.Model(model.input, model.get_layer("avg_pool").output)(images))
    head = model.get_layer("predictions")
    logits = pooled @ numpy(head.kernel) + numpy(head.bias)
    return {stage: numpy(stages[stage]) for stage in STAGES}, logits


def relative_error(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_parameter_counts_equal_timms(name, timm_reference):
    timm_count = int(np.load(timm_reference / f"{name}.npz")["params"])
    ours = models.build_preset(name)
    assert sum(int(np.prod(w.shape)) for w in ours.trainable_weights) == timm_count
    published = {"lambda_resnet26t": 10_958_272, "lambda_resnet50ts": 21_536_832}
    assert timm_count == published.get(name, timm_count)


@pytest.mark.slow
@pytest.mark.parametrize("name", TIMM_MODELS)
def test_converted_models_compute_what_timm_computes(name, timm_reference, tmp_path):
    path = timm_reference / f"{name}.safetensors"
    output = tmp_path / f"{name}.keras"
    result = run_cli("convert", "--timm-checkpoint", str(path), "--model", name,
                     "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    model = keras.models.load_model(output)
    theirs = np.load(timm_reference / f"{name}.npz")
    our_stages, our_logits = keras_outputs(model, theirs["images"])
    for stage in STAGES:
        assert our_stages[stage].shape == theirs[stage].shape, stage
        assert relative_error(our_stages[stage], theirs[stage]) < TOLERANCE, stage
    assert relative_error(our_logits, theirs["logits"]) < TOLERANCE
    # Every position table matters far beyond the tolerance: zeroing any one of them
    # moves its stage's output (measured: by 47% of its largest value or more).
    for layer in [layer for layer in model.layers if type(layer).__name__ == "LambdaLayer"]:
        table = layer.embedding.table
        kept = numpy(table).copy()
        table.assign(np.zeros(table.shape, "float32"))
        stage = layer.name[:2]
        assert relative_error(keras_outputs(model, theirs["images"])[0][stage], theirs[stage]) > 0.1
        table.assign(kept)

    # The same weights through the builders' `weights=` argument, from the local file.
    built = models.build_preset(name, weights=str(path))
    np.testing.assert_allclose(keras_outputs(built, theirs["images"])[1], our_logits,
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["lambda_resnet26t", "lambda_resnet26rpt_256"])
def test_float16_inference_of_converted_weights_stays_within_float16_tolerance(name, timm_reference):
    """Under mixed_float16 the model deviates from float32 by about what merely storing
    its weights and inputs in float16 costs a float32 computation (these networks
    amplify relative rounding ~100-fold: 5e-4 becomes ~5% at c5), no more."""
    path = str(timm_reference / f"{name}.safetensors")
    images = np.load(timm_reference / f"{name}.npz")["images"]
    model32 = models.build_preset(name, weights=path)
    stages32, logits32 = keras_outputs(model32, images)
    for weight in model32.weights:  # the yardstick: float16 storage, float32 arithmetic
        weight.assign(numpy(weight).astype("float16").astype("float32"))
    stages_rounded, logits_rounded = keras_outputs(
        model32, images.astype("float16").astype("float32"))
    keras.config.set_dtype_policy("mixed_float16")
    try:
        stages16, logits16 = keras_outputs(models.build_preset(name, weights=path), images)
    finally:
        keras.config.set_dtype_policy("float32")
    for stage in STAGES:
        assert np.isfinite(stages16[stage]).all()
        yardstick = relative_error(stages_rounded[stage], stages32[stage])
        assert relative_error(stages16[stage].astype("float32"), stages32[stage]) < 3 * yardstick
    assert relative_error(logits16, logits32) < 3 * relative_error(logits_rounded, logits32)
    assert relative_error(logits16, logits32) < 0.02
    assert (logits16.argmax(-1) == logits32.argmax(-1)).all()


def test_a_pytorch_checkpoint_loads_as_tensors_only(timm_reference):
    """A wrapped training checkpoint (`{"state_dict": ...}`) through torch.load
    with weights_only=True (torch imports fine beside TensorFlow; torchvision does not)."""
    model = convert_timm(str(timm_reference / "lambda_resnet26t.pth"),
                         models.LambdaResNet26T(classifier_activation=None))
    theirs = np.load(timm_reference / "lambda_resnet26t.npz")
    assert relative_error(keras_outputs(model, theirs["images"])[1], theirs["logits"]) < TOLERANCE


def state_dict(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda sd: sd.pop("stages.2.1.self_attn.conv_lambda.bias"),
         "no tensor 'stages.2.1.self_attn.conv_lambda.bias' (for c4_block1_lambda)"),
        (lambda sd: sd.update({"stages.9.0.extra.weight": np.zeros(3, "float32")}),
         "1 tensor(s) of the timm checkpoint have no place in lambda_resnet26t: "
         "stages.9.0.extra.weight"),
        (lambda sd: sd.update({"head.fc.weight": np.zeros((10, 2048), "float32")}),
         "tensor 'head.fc.weight' has shape (10, 2048)"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_one_error_naming_the_tensor(
    timm_reference, tmp_path, change, message
):
    from safetensors.numpy import save_file

    state = state_dict(timm_reference / "lambda_resnet26t.safetensors")
    change(state)
    path = tmp_path / "changed.safetensors"
    save_file(state, str(path))
    model = models.LambdaResNet26T()
    before = [numpy(w).copy() for w in model.weights]
    with pytest.raises(ConversionError) as error:
        convert_timm(str(path), model)
    assert message in str(error.value)
    assert all(np.array_equal(a, numpy(b)) for a, b in zip(before, model.weights))
    result = run_cli("convert", "--timm-checkpoint", str(path), "--model", "lambda_resnet26t",
                     "--output", str(tmp_path / "out.keras"))
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "out.keras").exists()


def test_the_wrong_architecture_is_named(timm_reference):
    path = timm_reference / "lambda_resnet26t.safetensors"
    with pytest.raises(ConversionError, match="no tensor 'stages.0.2.conv1_1x1.conv.weight'"):
        convert_timm(str(path), models.LambdaResNet50TS())
    with pytest.raises(ConversionError, match=r"'stem.conv1.conv.weight' has shape \(24, 3, 3, 3\)"):
        convert_timm(str(path), models.LambdaResNet50())
