"""keras_lambda.training.checkpoints: the last two epochs kept, resume from the newest that loads."""

import os

import keras
import numpy as np
import pytest

from keras_lambda.training import checkpoints
from keras_lambda.training.options import UsageError


def small_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.AdamW(1e-2), "categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)
    return model


def train_epochs(tmp_path, epochs):
    """Fits a small model for `epochs` with EpochCheckpoint; returns the weights after each."""
    model = small_model()
    callback = checkpoints.EpochCheckpoint(str(tmp_path), {"config": {"model": "dense"}})
    weights = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append([w.copy() for w in model.get_weights()])
    )
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = keras.utils.to_categorical(np.arange(16) % 3, 3)
    model.fit(x, y, validation_data=(x, y), epochs=epochs, verbose=0, callbacks=[callback, record])
    return weights


def test_the_last_two_epochs_are_kept_with_their_records(tmp_path):
    train_epochs(tmp_path, 3)
    folder = tmp_path / "checkpoints"
    assert sorted(os.listdir(folder)) == [
        "epoch-0002.json", "epoch-0002.keras", "epoch-0003.json", "epoch-0003.keras", "state.json"
    ]
    records = checkpoints.saved(str(folder))
    assert [r["epoch"] for r in records] == [3, 2]
    assert records[0]["config"] == {"model": "dense"}
    best = max(records, key=lambda r: r["val_accuracy"])
    assert records[0]["best_val_accuracy"] >= best["val_accuracy"]
    assert (tmp_path / "best.keras").exists()


def test_resume_loads_weights_and_optimizer_state_of_the_newest(tmp_path):
    weights = train_epochs(tmp_path, 2)
    model = small_model()
    record = checkpoints.restore(model, str(tmp_path / "checkpoints"), report=pytest.fail)
    assert record["epoch"] == 2
    for restored, saved in zip(model.get_weights(), weights[1]):
        np.testing.assert_array_equal(restored, saved)
    assert int(model.optimizer.iterations) == 2  # one step an epoch: state came back


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
    weights = train_epochs(tmp_path, 3)
    folder = tmp_path / "checkpoints"
    newest = folder / "epoch-0003.keras"
    newest.write_bytes(newest.read_bytes()[:1000])
    (folder / "state.json").write_text('{"epo')  # not read on resume
    reports = []
    model = small_model()
    record = checkpoints.restore(model, str(folder), report=reports.append)
    assert record["epoch"] == 2
    assert len(reports) == 1 and "epoch-0003.keras does not load" in reports[0]
    for restored, saved in zip(model.get_weights(), weights[1]):
        np.testing.assert_array_equal(restored, saved)


def test_a_checkpoint_without_its_record_does_not_count(tmp_path):
    train_epochs(tmp_path, 2)
    folder = tmp_path / "checkpoints"
    (folder / "epoch-0002.json").write_text("")  # killed while writing the record
    assert [r["epoch"] for r in checkpoints.saved(str(folder))] == [1]


def test_no_loadable_checkpoint_is_a_usage_error(tmp_path):
    train_epochs(tmp_path, 2)
    folder = tmp_path / "checkpoints"
    for name in ("epoch-0001.keras", "epoch-0002.keras"):
        (folder / name).write_bytes(b"")
    with pytest.raises(UsageError, match="no checkpoint in .* loads"):
        checkpoints.restore(small_model(), str(folder), report=lambda message: None)
    assert checkpoints.restore(small_model(), str(tmp_path / "none")) is None
