"""`keras-lambda train --weights ... --freeze-backbone-epochs N`: fine-tuning a pretrained
model on a folder with other classes."""

import json

import keras
import numpy as np
import pytest

import keras_lambda  # noqa: F401  (registers the classes the .keras files name)
from keras_lambda import models
from tests.helpers import run_cli, write_image_folder

CLASSES = ("circle", "square", "star")


def backbone(model):
    """{layer name: its weights} of every weighted layer but the head."""
    return {layer.name: [np.array(weight) for weight in layer.get_weights()]
            for layer in model.layers if layer.weights and layer.name != "predictions"}


def assert_same(ours, theirs):
    assert ours.keys() == theirs.keys()
    for name in ours:
        for a, b in zip(ours[name], theirs[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def fine_tune(tmp_path, weights, model, size, epochs, freeze, batch_size=8):
    result = run_cli("train", "--model", model, "--weights", str(weights), "--data-dir",
                     str(tmp_path / "images"), "--image-size", str(size), "--epochs", str(epochs),
                     "--freeze-backbone-epochs", str(freeze), "--batch-size", str(batch_size),
                     "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "run" / "summary.json") as file:
        return result, json.load(file)


def accuracy(model, folder):
    """Top-1 accuracy of `model` on every image of `folder` (class sub-folders)."""
    import tensorflow as tf

    images = sorted(folder.rglob("*.png"))
    pixels = np.stack([tf.io.decode_png(tf.io.read_file(str(path))).numpy() for path in images])
    labels = np.array([CLASSES.index(path.parent.name) for path in images])
    return float(np.mean(model.predict(pixels, verbose=0).argmax(-1) == labels))


@pytest.mark.slow
def test_a_frozen_backbone_stays_the_pretrained_one_then_fine_tuning_learns(tmp_path):
    """A tiny model trained on another task (2 classes: which of two colour channels
    holds a bright square) is the pretrained model; the new task has 3 classes."""
    write_image_folder(tmp_path / "pretraining", classes=("red", "green"), per_class=40, size=32)
    result = run_cli("train", "--data-dir", str(tmp_path / "pretraining"), "--epochs", "6",
                     "--batch-size", "16", "--output-dir", str(tmp_path / "pretrained"))
    assert result.returncode == 0, result.stderr[-3000:]
    source = keras.saving.load_model(tmp_path / "pretrained" / "best.keras")
    pretrained = backbone(source)
    write_image_folder(tmp_path / "images", classes=CLASSES, per_class=40, size=32)
    weights = tmp_path / "pretrained" / "best.keras"

    result, summary = fine_tune(tmp_path, weights, "tiny", 32, 1, 1, batch_size=16)
    assert "whose head has 2 classes; the model's head (3 classes) is new" in result.stdout
    frozen = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert_same(backbone(frozen), pretrained)  # batch-norm statistics included
    assert frozen.output_shape == (None, 3)
    assert all(layer.trainable for layer in frozen.layers)  # saved unfrozen

    # The same run resumed for more epochs: now the backbone trains too.
    result, summary = fine_tune(tmp_path, weights, "tiny", 32, 8, 1, batch_size=16)
    trained = keras.saving.load_model(tmp_path / "run" / "model.keras")
    changed = [name for name, arrays in backbone(trained).items()
               if any(not np.array_equal(a, b) for a, b in zip(arrays, pretrained[name]))]
    assert len(changed) == len(pretrained)
    assert summary["config"]["weights"] == str(weights)
    assert summary["class_names"] == sorted(CLASSES)
    with pytest.warns(UserWarning, match=r"the model's head \(3 classes\) is new"):
        untrained = models.build_preset("tiny", input_shape=(32, 32, 3), classes=3,
                                        include_rescaling=True, weights=str(weights))
    before = accuracy(untrained, tmp_path / "images")
    assert summary["best_test_accuracy"] >= 0.9 > before, (summary["best_test_accuracy"], before)


@pytest.mark.needs_timm
def test_a_timm_checkpoint_fine_tunes_from_the_command_line(tmp_path, timm_reference):
    """timm's lambda_resnet26t with random weights (tests/timm_reference.py): after an
    epoch with the backbone frozen, the backbone is still exactly the checkpoint's
    (as `convert_timm`, proven against timm, reads it) and the head has the folder's
    classes. (A random checkpoint is not a feature extractor: that fine-tuning learns
    is the test above, from a trained model.)"""
    write_image_folder(tmp_path / "images", classes=CLASSES, per_class=8, size=64)
    checkpoint = timm_reference / "lambda_resnet26t.safetensors"
    result, summary = fine_tune(tmp_path, checkpoint, "lambda_resnet26t", 64, 1, 1)
    assert "whose head has 1000 classes; the model's head (3 classes) is new" in result.stdout
    tuned = keras.saving.load_model(tmp_path / "run" / "model.keras")
    converted = models.convert_timm(str(checkpoint), models.LambdaResNet26T(input_shape=(64, 64, 3)))
    assert_same(backbone(tuned), backbone(converted))
    assert tuned.output_shape == (None, 3)
    assert tuned.get_layer("rescaling").offset == pytest.approx(
        [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])  # timm's inputs: ImageNet-normalised


def test_the_custom_loop_freezes_then_trains_the_backbone():
    """The loop multi-worker runs use (here under the default strategy) re-traces its
    step when the freeze ends: the backbone is unchanged after the frozen epoch and
    trains after it, while the head trains throughout."""
    import tensorflow as tf

    from keras_lambda.training import custom_loop, fine_tune

    model = models.build_preset("tiny", input_shape=(32, 32, 3), classes=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.CategoricalCrossentropy())
    rng = np.random.default_rng(0)
    images = rng.normal(size=(16, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 3, 16), 3)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8, drop_remainder=True)
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append((backbone(self.model), self.model.get_layer("predictions").get_weights()))

    start = (backbone(model), model.get_layer("predictions").get_weights())
    custom_loop.fit(model, tf.distribute.get_strategy(), dataset, dataset, 8, model.loss, 2,
                    callbacks=[fine_tune.FreezeBackbone(1), Snapshot()], verbose=0)
    (after_frozen, head_frozen), (after_open, head_open) = snapshots
    assert_same(after_frozen, start[0])
    assert not np.array_equal(head_frozen[0], start[1][0])
    changed = [name for name in after_open
               if any(not np.array_equal(a, b) for a, b in zip(after_open[name], start[0][name]))]
    assert len(changed) == len(start[0])
    assert all(layer.trainable for layer in model.layers)
