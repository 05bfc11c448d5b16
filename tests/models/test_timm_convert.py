"""timm's LambdaResNets in Keras, proven against timm itself (PyTorch, CPU).

For each architecture, timm builds the model with random weights; every batch
norm's statistics and affine parameters, every bias and every relative table
are then randomised too (so that every tensor of the checkpoint matters), the
state dict is saved as .safetensors (tests/timm_reference.py, in a process of its
own) and converted by `keras-lambda convert`, and both models run on the same
random batch: every stage's feature map and the logits agree within 1e-4 of the
largest value (float32).
"""

import json
import pathlib
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_lambda import models
from keras_lambda.models import ConversionError, convert_timm, presets
from keras_lambda.models.imagenet import imagenet_classes
from tests.helpers import QUIET, run_cli

# timm's side runs in a process of its own (torchvision crashes beside TensorFlow).
TIMM_REFERENCE = pathlib.Path(__file__).parents[1] / "timm_reference.py"

TIMM_MODELS = presets.names("timm")
STAGES = ("c2", "c3", "c4", "c5")
TOLERANCE = 1e-4  # of the largest |value|, float32


def sample_image():
    """A 300x400 RGB image with gradients, a sharp-edged block and noise."""
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:300, 0:400]
    image = np.stack([columns * 255 / 400, rows * 255 / 300, (rows + columns) % 97 * 2.6], -1)
    image[100:180, 150:260] = (250, 20, 40)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype("uint8")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The folder `tests/timm_reference.py` fills, run once in its own process."""
    folder = tmp_path_factory.mktemp("timm")
    np.save(folder / "image.npy", sample_image())
    result = subprocess.run([sys.executable, str(TIMM_REFERENCE), str(folder)],
                            capture_output=True, text=True, env=QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def keras_outputs(model, images):
    """Every stage's output and the logits (before the softmax) of our model."""
    stages = models.feature_extractor(model)(images)
    pooled = np.asarray(keras.Model(model.input, model.get_layer("avg_pool").output)(images))
    head = model.get_layer("predictions")
    logits = pooled @ np.asarray(head.kernel) + np.asarray(head.bias)
    return {stage: np.asarray(stages[stage]) for stage in STAGES}, logits


def relative_error(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_parameter_counts_equal_timms(name, reference):
    timm_count = int(np.load(reference / f"{name}.npz")["params"])
    ours = models.build_preset(name)
    assert sum(int(np.prod(w.shape)) for w in ours.trainable_weights) == timm_count
    published = {"lambda_resnet26t": 10_958_272, "lambda_resnet50ts": 21_536_832}
    assert timm_count == published.get(name, timm_count)


@pytest.mark.slow
@pytest.mark.parametrize("name", TIMM_MODELS)
def test_converted_models_compute_what_timm_computes(name, reference, tmp_path):
    path = reference / f"{name}.safetensors"
    output = tmp_path / f"{name}.keras"
    result = run_cli("convert", "--timm-checkpoint", str(path), "--model", name,
                     "--output", str(output))
    assert result.returncode == 0, result.stderr[-2000:]
    model = keras.models.load_model(output)
    theirs = np.load(reference / f"{name}.npz")
    our_stages, our_logits = keras_outputs(model, theirs["images"])
    for stage in STAGES:
        assert our_stages[stage].shape == theirs[stage].shape, stage
        assert relative_error(our_stages[stage], theirs[stage]) < TOLERANCE, stage
    assert relative_error(our_logits, theirs["logits"]) < TOLERANCE
    # Every position table matters far beyond the tolerance: zeroing any one of them
    # moves its stage's output (measured: by 47% of its largest value or more).
    for layer in [layer for layer in model.layers if type(layer).__name__ == "LambdaLayer"]:
        table = layer.embedding.table
        kept = np.asarray(table).copy()
        table.assign(np.zeros(table.shape, "float32"))
        stage = layer.name[:2]
        assert relative_error(keras_outputs(model, theirs["images"])[0][stage], theirs[stage]) > 0.1
        table.assign(kept)

    # The same weights through the builders' `weights=` argument, from the local file.
    built = models.build_preset(name, weights=str(path))
    np.testing.assert_allclose(keras_outputs(built, theirs["images"])[1], our_logits,
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["lambda_resnet26t", "lambda_resnet26rpt_256"])
def test_float16_inference_of_converted_weights_stays_within_float16_tolerance(name, reference):
    """Under mixed_float16 the model deviates from float32 by about what merely storing
    its weights and inputs in float16 costs a float32 computation (these networks
    amplify relative rounding ~100-fold: 5e-4 becomes ~5% at c5), no more."""
    path = str(reference / f"{name}.safetensors")
    images = np.load(reference / f"{name}.npz")["images"]
    model32 = models.build_preset(name, weights=path)
    stages32, logits32 = keras_outputs(model32, images)
    for weight in model32.weights:  # the yardstick: float16 storage, float32 arithmetic
        weight.assign(np.asarray(weight).astype("float16").astype("float32"))
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


def test_a_pytorch_checkpoint_loads_as_tensors_only(reference):
    """A wrapped training checkpoint (`{"state_dict": ...}`) through torch.load
    with weights_only=True (torch imports fine beside TensorFlow; torchvision does not)."""
    model = convert_timm(str(reference / "lambda_resnet26t.pth"),
                         models.LambdaResNet26T(classifier_activation=None))
    theirs = np.load(reference / "lambda_resnet26t.npz")
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
    reference, tmp_path, change, message
):
    from safetensors.numpy import save_file

    state = state_dict(reference / "lambda_resnet26t.safetensors")
    change(state)
    path = tmp_path / "changed.safetensors"
    save_file(state, str(path))
    model = models.LambdaResNet26T()
    before = [np.asarray(w).copy() for w in model.weights]
    with pytest.raises(ConversionError) as error:
        convert_timm(str(path), model)
    assert message in str(error.value)
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.weights))
    result = run_cli("convert", "--timm-checkpoint", str(path), "--model", "lambda_resnet26t",
                     "--output", str(tmp_path / "out.keras"))
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "out.keras").exists()


def test_the_wrong_architecture_is_named(reference):
    path = reference / "lambda_resnet26t.safetensors"
    with pytest.raises(ConversionError, match="no tensor 'stages.0.2.conv1_1x1.conv.weight'"):
        convert_timm(str(path), models.LambdaResNet50TS())
    with pytest.raises(ConversionError, match=r"'stem.conv1.conv.weight' has shape \(24, 3, 3, 3\)"):
        convert_timm(str(path), models.LambdaResNet50())


def test_imagenet_weights_offline_are_one_error_saying_what_to_fetch(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    from keras_lambda.models import weights

    started = time.time()
    with pytest.raises(ValueError) as error:
        weights.download(presets.get("lambda_resnet26t").weights, cache_dir=str(tmp_path))
    message = str(error.value)
    assert "could not download timm's weights lambda_resnet26t.c1_in1k" in message
    assert "https://huggingface.co/timm/lambda_resnet26t.c1_in1k/resolve/main/model.safetensors" in message
    assert str(tmp_path / "models" / "keras_lambda" / "lambda_resnet26t.c1_in1k.safetensors") in message
    assert "\n" not in message and time.time() - started < 30


def test_a_file_in_the_cache_is_used_without_a_download(reference, tmp_path, monkeypatch):
    path = reference / "lambda_resnet26t.safetensors"
    cached = tmp_path / "models" / "keras_lambda" / "lambda_resnet26t.c1_in1k.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    monkeypatch.setattr(socket, "create_connection", pytest.fail)  # no network use at all
    from keras_lambda.models import weights

    model = models.LambdaResNet26T(include_top=False, pooling="avg")  # head.fc left out
    weights.load(model, presets.get("lambda_resnet26t"), "imagenet", cache_dir=str(tmp_path))
    assert np.asarray(model.get_layer("c4_block1_lambda").position_bias_weight).any()
    assert model.output_shape == (None, 2048)


def test_the_paper_family_says_it_has_no_published_weights():
    with pytest.raises(ValueError, match="No ImageNet weights are published for lambda_resnet50"):
        models.LambdaResNet50(weights="imagenet")
    with pytest.raises(ValueError, match="ImageNet weights have 1000 classes"):
        models.LambdaResNet26T(weights="imagenet", classes=10)


def test_preprocessing_matches_timms_evaluation_transform(reference):
    image = sample_image()
    for name in TIMM_MODELS:
        theirs = np.load(reference / f"{name}.preprocessed.npy")
        ours = models.preprocess_input(image, name)
        assert ours.shape == (1,) + theirs.shape == (1, 256, 256, 3)
        difference = np.abs(ours[0] - theirs)
        # TensorFlow's antialiased bicubic against PIL's: about one 8-bit level at most
        # pixels (1/255/std = 0.017), more only along sharp edges.
        assert difference.mean() < 0.01 and np.percentile(difference, 99) < 0.05


def test_decoded_predictions_name_timms_classes(reference):
    timm_classes = json.loads((reference / "classes.json").read_text())
    scores = np.zeros((2, 1000), "float32")
    scores[0, [2, 7, 999]] = (0.5, 0.3, 0.2)
    scores[1, 0] = 1.0
    decoded = models.decode_predictions(scores, top=2)
    assert [entry[0] for entry in decoded[0]] == [timm_classes[i][0] for i in (2, 7)]
    assert decoded[0][0][1] == "great_white_shark" and decoded[0][0][2] == pytest.approx(0.5)
    assert decoded[1][0][:2] == (timm_classes[0][0], "tench")
    for (wnid, label), (timm_wnid, description) in zip(imagenet_classes(), timm_classes):
        assert wnid == timm_wnid
        assert label == description.split(",")[0].replace(" ", "_")
