"""Training: strategy, model, compile/fit, atomic checkpoints and resume, summary.

`train(TrainConfig(...))` is what `keras-lambda train` runs. A run writes into
`output_dir`: `checkpoints/` (the last two epochs with the optimizer, see
`checkpoints`), `best.keras` (best validation accuracy, on a split held out of
the training data), `model.keras` (final), `classes.json` (the class names the
models' outputs index), `logs/` (TensorBoard) and `summary.json` (both models'
accuracy on the test split, used once, at the end; every setting, the files
that did not decode). With a moving average of the weights (`ema_momentum`),
validation, `best.keras` and `model.keras` use the average; checkpoints keep
the trained weights and the average, so a resumed run continues both.
Started again with the same output_dir, it resumes from the newest checkpoint
that loads, whatever moment the previous run was killed at; a lock file keeps a
second run out of the folder meanwhile.
"""

import dataclasses
import math
import os
import sys
import time
import warnings

import keras

from keras_lambda import _startup, models
from keras_lambda.models import presets
from keras_lambda.training import augment, checkpoints, custom_loop, distribute, ema, fine_tune
from keras_lambda.training import progress
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
    """The preset `config.model` for these inputs and classes, taking pixel values
    0..255 (the pipelines' uint8 images), with the settings the command line
    overrides (--key-dim, --num-heads, --scope, --dropout, --stochastic-depth)."""
    overrides = {
        key: getattr(config, key)
        for key in ("key_dim", "num_heads", "scope")
        if getattr(config, key) is not None
    }
    if config.stochastic_depth is not None:
        overrides["drop_path_rate"] = config.stochastic_depth
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = models.build_preset(
            config.model, input_shape=input_shape, classes=num_classes,
            include_rescaling=input_scaling(config.model), dropout_rate=config.dropout,
            weights=config.weights, **overrides,
        )
    for warning in caught:  # the new head of a fine-tuned model: one plain line
        if config.verbose:
            print(f"keras-lambda: {warning.message}", flush=True)
    return model


def input_scaling(model_name):
    """What the model does to the pipelines' pixel values 0..255: timm's presets
    normalise by ImageNet's mean and std, as their checkpoints were trained;
    the others scale to [0, 1]."""
    return "imagenet" if presets.get(model_name).weights is not None else True


def learning_rate_schedule(config, steps_per_epoch):
    """Linear warm-up to the (batch-scaled) peak, then cosine decay to 0 over the
    run's `epochs`. A function of the optimizer's step and the current settings:
    a run resumed with more epochs continues from the step it reached on the
    schedule of the new total, so the added epochs train."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, int(config.warmup_epochs * steps_per_epoch))
    peak = config.peak_learning_rate
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else peak,
        decay_steps=total - warmup,
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(config, steps_per_epoch):
    """AdamW, or SGD with momentum; decoupled weight decay; the moving average of
    the weights (`use_ema`) when `ema_momentum` is set."""
    schedule = learning_rate_schedule(config, steps_per_epoch)
    average = dict(use_ema=True, ema_momentum=config.ema_momentum) if config.ema_momentum else {}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=config.momentum,
                                    weight_decay=config.weight_decay or None, **average)
    return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **average)


def compile_model(model, config, steps_per_epoch):
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
    )


def train(config):
    """Trains as `config` says; returns the summary dict (also in summary.json).

    With checkpoints in `config.output_dir` it resumes from the newest one that
    loads; settings that change the model or the data must match the run's
    (`options.RESUME_FIXED`), the others are applied and recorded. `config` was
    checked when it was made (`TrainConfig.__post_init__`).

    Example:
    ```python
    from keras_lambda.training import TrainConfig, train

    summary = train(TrainConfig(epochs=1, steps_per_epoch=2, output_dir="runs/example"))
    print(summary["test_accuracy"], summary["params"])
    ```
    """
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
    augmentation: augment.Augmentation


def _pipelines(config, data, static):
    batches = config.batch_size
    to_one_hot = data_lib.one_hot(data.num_classes)
    held_out = data_lib.split_validation(data, config.validation_fraction)
    if batches > held_out.num_train:
        raise UsageError(
            f"`batch_size` {batches} is larger than the {held_out.num_train} training "
            f"examples (after holding out {data.num_train - held_out.num_train} for "
            f"validation); use at most {held_out.num_train}"
        )
    augmentation = augment.Augmentation.for_data(
        data, crop=config.train_crop, crop_pct=config.crop_pct, randaugment=config.randaugment,
        mixup=config.mixup, cutmix=config.cutmix,
    )
    steps = held_out.num_train // batches if static else math.ceil(held_out.num_train / batches)
    train = data_lib.batched(
        held_out, config.image_size, batches, True, drop_remainder=static, seed=config.seed,
        augmentation=augmentation,
    ).map(to_one_hot)
    train = augment.mix_batches(train, augmentation, config.seed)
    # One endless stream, cut into epochs of `steps` batches: an epoch of a folder
    # is a pass whatever files failed to decode (their count is not known ahead),
    # and --steps-per-epoch can make epochs shorter or longer than a pass.
    steps = config.steps_per_epoch or steps
    train = train.repeat()
    return _Pipelines(
        train=train.prefetch(tf.data.AUTOTUNE),
        validation=data_lib.batched(held_out, config.image_size, batches, False,
                                    augmentation=augmentation).map(to_one_hot),
        test=data_lib.batched(data, config.image_size, batches, False,
                              augmentation=augmentation).map(to_one_hot),
        steps_per_epoch=max(1, steps),
        num_train=held_out.num_train,
        num_validation=data.num_train - held_out.num_train,
        augmentation=augmentation,
    )


def _fit(config, data, strategy, started):
    with warnings.catch_warnings():
        # A folder's evaluation pipelines have no known length (files that do not
        # decode drop out), so Keras reads them to their end, as it should, and
        # warns that the input "ran out of data" each time: nothing is wrong.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        return _fit_and_summarise(config, data, strategy, started)


def _fit_and_summarise(config, data, strategy, started):
    chief = distribute.is_chief(strategy)
    own_dir = distribute.worker_dir(config.output_dir, strategy)
    custom = distribute.uses_custom_loop(strategy)
    pipelines = _pipelines(config, data, distribute.needs_static_shapes(strategy))
    with strategy.scope():
        try:
            model = build_model(
                config, (config.image_size, config.image_size, data.channels), data.num_classes
            )
        except ValueError as error:  # --num-heads that does not divide a width, --weights
            raise UsageError(f"cannot build `model` {config.model}: {error}") from None
        compile_model(model, config, pipelines.steps_per_epoch)
        model.optimizer.build(model.trainable_variables)  # its state loads with a checkpoint
    os.makedirs(own_dir, exist_ok=True)  # only now: bad input leaves nothing behind
    with OutputLock(own_dir):
        if chief:  # beside best.keras and model.keras: what their outputs mean
            write_json(os.path.join(config.output_dir, "classes.json"),
                       {"class_names": data.class_names, "image_size": config.image_size,
                        "crop_pct": pipelines.augmentation.crop_pct})
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
        log_dir = os.path.join(own_dir, "logs")
        epoch_checkpoint = checkpoints.EpochCheckpoint(own_dir, run, best=resumed)
        callbacks = [
            epoch_checkpoint,
            progress.Progress(config.batch_size, pipelines.steps_per_epoch, config.epochs,
                              verbose=config.verbose if chief else 0),
        ]
        if config.freeze_backbone_epochs:
            callbacks.insert(0, fine_tune.FreezeBackbone(config.freeze_backbone_epochs))
        if custom:
            custom_loop.fit(
                model, strategy, pipelines.train, pipelines.validation, config.batch_size, model.loss,
                config.epochs, initial_epoch, callbacks, config.verbose if chief else 0,
                steps_per_epoch=pipelines.steps_per_epoch,
            )
        else:
            if ema.optimizer_with_ema(model):  # validation on the moving average
                callbacks.insert(0, keras.callbacks.SwapEMAWeights())
            callbacks.append(keras.callbacks.TensorBoard(log_dir))
            model.fit(
                pipelines.train,
                validation_data=pipelines.validation,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=pipelines.steps_per_epoch,
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
            "best_val_accuracy": epoch_checkpoint.best_val_accuracy,
            "best_epoch": epoch_checkpoint.best_epoch,
            "epochs": config.epochs,
            "initial_epoch": initial_epoch,
            "params": model.count_params(),
            "replicas": strategy.num_replicas_in_sync,
            "seconds": round(time.time() - started, 1),
            "dataset": data.name,
            "model": config.model,
            "train_examples": pipelines.num_train,
            "validation_examples": pipelines.num_validation,
            "steps_per_epoch": pipelines.steps_per_epoch,
            "class_names": data.class_names,
            "augmentation": dataclasses.asdict(pipelines.augmentation),
            "data": data.notes,
            "undecodable_files": data.undecodable(),
            "uses_ema_weights": bool(config.ema_momentum),
            "config": run["config"],
            "history": history,
            "model_path": os.path.join(own_dir, "model.keras"),
            "best_path": best_path,
            "classes_path": os.path.join(config.output_dir, "classes.json"),
            "logs": log_dir,
        }
        atomic_write(summary["model_path"], model.save)
        if chief:
            write_json(os.path.join(config.output_dir, "summary.json"), summary)
    return summary


def _accuracy(model, dataset):
    return float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])
