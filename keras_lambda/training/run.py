"""Training: strategy, model, compile/fit, atomic checkpoints and resume, summary.

`train(TrainConfig(...))` is what `keras-lambda train` runs. A run writes into
`output_dir`: `checkpoints/` (the last two epochs with the optimizer, see
`checkpoints`), `best.keras` (best validation accuracy, on a split held out of
the training data), `model.keras` (final), `logs/` (TensorBoard) and
`summary.json` (both models' accuracy on the test split, used once, at the end).
Started again with the same output_dir, it resumes from the newest checkpoint
that loads, whatever moment the previous run was killed at; a lock file keeps a
second run out of the folder meanwhile.
"""

import dataclasses
import math
import os
import sys
import time

import keras

from keras_lambda import _startup, models
from keras_lambda.training import checkpoints, custom_loop, distribute
from keras_lambda.training import data as data_lib
from keras_lambda.files import OutputLock, atomic_write, check_output_dir, read_json, write_json
from keras_lambda.training.options import (  # noqa: F401  (TrainConfig: also importable from here)
    TrainConfig,
    UsageError,
    recorded,
    resume_changes,
)

tf = _startup.tensorflow_for("keras_lambda.training (training)")

def build_model(config, input_shape, num_classes):
    """The preset `config.model` for these inputs and classes, with the lambda
    settings the command line overrides (--key-dim, --num-heads, --scope)."""
    overrides = {
        key: getattr(config, key)
        for key in ("key_dim", "num_heads", "scope")
        if getattr(config, key) is not None
    }
    return models.build_preset(
        config.model, input_shape=input_shape, classes=num_classes, **overrides
    )


def compile_model(model, config, steps_per_epoch):
    """AdamW with linear warm-up, then cosine decay to 0 over the run's `epochs`.

    The schedule is a function of the optimizer's step and the current settings:
    a run resumed with more epochs continues from the step it reached on the
    schedule of the new total, so the added epochs train."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, int(config.warmup_epochs * steps_per_epoch))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate,
        decay_steps=total - warmup,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
    )


def train(config):
    """Trains as `config` says; returns the summary dict (also in summary.json).

    With checkpoints in `config.output_dir` it resumes from the newest one that
    loads; settings that change the model or the data must match the run's
    (`options.RESUME_FIXED`), the others are applied and recorded. `config` was
    checked when it was made (`TrainConfig.__post_init__`)."""
    check_output_dir(config.output_dir)
    latest = next(iter(checkpoints.saved(_checkpoint_dir(config))), None)
    if latest is not None:
        resume_changes(latest.get("config", {}), config)  # raises on model/data changes
        if latest["epoch"] > config.epochs:
            raise UsageError(
                f"`output_dir` {config.output_dir!r} holds a run trained for "
                f"{latest['epoch']} epochs; `epochs` {config.epochs} would train none "
                "(pass more epochs to train on, or use a new `output_dir`)"
            )
        finished = read_json(os.path.join(config.output_dir, "summary.json"))
        if latest["epoch"] == config.epochs and finished and finished.get("epochs") == config.epochs:
            if config.verbose:
                print(f"{config.output_dir} already holds this run, trained for "
                      f"{config.epochs} epochs: nothing to train")
            return finished
    strategy = distribute.make_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    data = data_lib.load(config.dataset, config.data_dir, config.seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(
            f"`batch_size` {config.batch_size} is not divisible by the {replicas} replicas"
        )
    started = time.time()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        return _fit(config, data, strategy, started)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _checkpoint_dir(config):
    """The chief's checkpoints, which every worker resumes from."""
    return os.path.join(config.output_dir, "checkpoints")


def _report(message):
    print(f"keras-lambda: {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class _Pipelines:
    train: tf.data.Dataset
    validation: tf.data.Dataset  # held out of the training split: picks best.keras
    test: tf.data.Dataset  # used once, at the end
    steps_per_epoch: int
    num_train: int
    num_validation: int


def _pipelines(config, data, static):
    batches = config.batch_size
    to_one_hot = data_lib.one_hot(data.num_classes)
    held_out = data_lib.split_validation(data, config.validation_fraction)
    steps = held_out.num_train // batches if static else math.ceil(held_out.num_train / batches)
    return _Pipelines(
        train=data_lib.batched(
            held_out, config.image_size, batches, True, drop_remainder=static, seed=config.seed
        ).map(to_one_hot),
        validation=data_lib.batched(held_out, config.image_size, batches, False).map(to_one_hot),
        test=data_lib.batched(data, config.image_size, batches, False).map(to_one_hot),
        steps_per_epoch=max(1, steps),
        num_train=held_out.num_train,
        num_validation=data.num_train - held_out.num_train,
    )


def _fit(config, data, strategy, started):
    chief = distribute.is_chief(strategy)
    own_dir = distribute.worker_dir(config.output_dir, strategy)
    custom = distribute.uses_custom_loop(strategy)
    pipelines = _pipelines(config, data, distribute.needs_static_shapes(strategy))
    with strategy.scope():
        try:
            model = build_model(
                config, (config.image_size, config.image_size, data.channels), data.num_classes
            )
        except ValueError as error:  # e.g. --num-heads that does not divide a width
            raise UsageError(f"cannot build `model` {config.model}: {error}") from None
        compile_model(model, config, pipelines.steps_per_epoch)
        model.optimizer.build(model.trainable_variables)  # its state loads with a checkpoint
    os.makedirs(own_dir, exist_ok=True)  # only now: bad input leaves nothing behind
    with OutputLock(own_dir):
        resumed = checkpoints.restore(model, _checkpoint_dir(config), report=_report)
        initial_epoch = resumed["epoch"] if resumed else 0
        history = list(resumed.get("history", [])) if resumed else []
        if resumed:
            changes = resume_changes(resumed.get("config", {}), config)
            if changes:
                history.append({"epoch": initial_epoch, "changed": changes})
            if config.verbose and chief:
                changed = "; ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changes.items())
                print(f"resuming {config.output_dir} after epoch {initial_epoch}"
                      + (f" (changed: {changed})" if changed else ""), flush=True)
        run = {"config": recorded(config), "history": history}
        callbacks = [checkpoints.EpochCheckpoint(own_dir, run, best=resumed)]
        if custom:
            custom_loop.fit(
                model, strategy, pipelines.train, pipelines.validation, config.batch_size, model.loss,
                config.epochs, initial_epoch, callbacks, config.verbose if chief else 0,
            )
        else:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(own_dir, "logs")))
            model.fit(
                pipelines.train,
                validation_data=pipelines.validation,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=config.verbose,
                shuffle=False,  # the pipeline shuffles
            )
        best_path = os.path.join(own_dir, "best.keras")
        accuracy = custom_loop.accuracy if custom else _accuracy
        summary = {
            "test_accuracy": accuracy(model, pipelines.test),
            "val_accuracy": accuracy(model, pipelines.validation),
            "best_test_accuracy": (
                accuracy(keras.models.load_model(best_path), pipelines.test)
                if os.path.exists(best_path) else None
            ),
            "best_val_accuracy": callbacks[0].best_val_accuracy,
            "best_epoch": callbacks[0].best_epoch,
            "epochs": config.epochs,
            "initial_epoch": initial_epoch,
            "params": model.count_params(),
            "replicas": strategy.num_replicas_in_sync,
            "seconds": round(time.time() - started, 1),
            "dataset": data.name,
            "model": config.model,
            "train_examples": pipelines.num_train,
            "validation_examples": pipelines.num_validation,
            "config": run["config"],
            "history": history,
            "model_path": os.path.join(own_dir, "model.keras"),
            "best_path": best_path,
            "logs": os.path.join(own_dir, "logs"),
        }
        atomic_write(summary["model_path"], model.save)
        if chief:
            write_json(os.path.join(config.output_dir, "summary.json"), summary)
    return summary


def _accuracy(model, dataset):
    return float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])
