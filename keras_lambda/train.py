"""Training: strategy, model, compile/fit, atomic checkpoints and resume, summary.

`train(TrainConfig(...))` is what `keras-lambda train` runs. A run writes into
`output_dir`: `checkpoints/` (the last epoch, written atomically, with the
optimizer), `best.keras`, `model.keras` (final), `logs/` (TensorBoard) and
`summary.json`. Started again with the same output_dir, it resumes from the last
checkpoint, whatever moment the previous run was killed at.
"""

import json
import math
import os
import time

import keras
import tensorflow as tf

from keras_lambda import custom_loop
from keras_lambda import data as data_lib
from keras_lambda import models
from keras_lambda.options import TrainConfig, UsageError, validate  # noqa: F401

NAMED_MODELS = {
    f"lambda_resnet{depth}": getattr(models, f"LambdaResNet{depth}")
    for depth in (50, 101, 152, 200, 270, 350, 420)
}


def make_strategy(name):
    """`tf.distribute` strategy for `--strategy`; create it before any other op
    (multi-worker collectives must be configured at program start)."""
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # cluster from TF_CONFIG
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise UsageError(f"--strategy tpu: no TPU found ({error})") from None
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def needs_static_shapes(strategy):
    """TPUs compile fixed shapes; multi-worker steps must match across workers."""
    return isinstance(
        strategy, (tf.distribute.TPUStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    )


def build_model(config, input_shape, num_classes):
    overrides = {
        key: value
        for key, value in (("key_dim", config.key_dim), ("num_heads", config.num_heads))
        if value is not None
    }
    if config.model == "tiny":
        # Lambda layers in the low-resolution stages c4, c5; global by default.
        return models.LambdaResNet(
            stackwise_num_blocks=(1, 1, 1, 1),
            width_multiplier=0.25,
            placement="CCLL",
            scope=config.scope,
            key_dim=overrides.pop("key_dim", 8),
            input_shape=input_shape,
            classes=num_classes,
            name="lambda_resnet_tiny",
            **overrides,
        )
    if config.scope is not None:
        overrides["scope"] = config.scope
    return NAMED_MODELS[config.model](input_shape=input_shape, classes=num_classes, **overrides)


def compile_model(model, config, steps_per_epoch):
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


def atomic_write(path, write):
    """Writes through a temporary file and renames it: a kill leaves old or new, never half."""
    temporary = f"{path}.tmp{os.path.splitext(path)[1]}"
    write(temporary)
    os.replace(temporary, path)


def write_json(path, payload):
    def write(temporary):
        with open(temporary, "w") as file:
            json.dump(payload, file, indent=2)

    atomic_write(path, write)


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: the model (with optimizer) to checkpoints/, then state.json
    pointing at it, then the older checkpoint removed; the best model to best.keras."""

    def __init__(self, output_dir, best_accuracy=-1.0):
        super().__init__()
        self.directory = os.path.join(output_dir, "checkpoints")
        self.best_path = os.path.join(output_dir, "best.keras")
        self.best_accuracy = best_accuracy
        os.makedirs(self.directory, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy", -1.0)
        if accuracy > self.best_accuracy:
            self.best_accuracy = accuracy
            atomic_write(self.best_path, self.model.save)
        name = f"epoch-{epoch + 1:04d}.keras"
        atomic_write(os.path.join(self.directory, name), self.model.save)
        state = {"epoch": epoch + 1, "checkpoint": name, "best_accuracy": self.best_accuracy}
        write_json(os.path.join(self.directory, "state.json"), state)
        for old in os.listdir(self.directory):
            if old.endswith(".keras") and old != name:
                os.remove(os.path.join(self.directory, old))


def _resume_state(output_dir):
    path = os.path.join(output_dir, "checkpoints", "state.json")
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def train(config):
    """Trains as `config` says; returns the summary dict (also in summary.json)."""
    validate(config)
    strategy = make_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    data = data_lib.load(config.dataset, config.data_dir, config.seed)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(
            f"--batch-size {config.batch_size} is not divisible by the {replicas} replicas"
        )
    started = time.time()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        return _fit(config, data, strategy, started)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def one_hot(num_classes):
    return lambda image, label: (image, tf.one_hot(label, num_classes))


def _worker_dir(config, chief, strategy):
    """The chief writes into output_dir; other workers into a private folder of it."""
    if chief:
        return config.output_dir
    return os.path.join(config.output_dir, f".worker-{strategy.cluster_resolver.task_id}")


def _fit(config, data, strategy, started):
    chief = custom_loop.is_chief(strategy)
    own_dir = _worker_dir(config, chief, strategy)
    static = needs_static_shapes(strategy)
    batches = config.batch_size
    steps_per_epoch = data.num_train // batches if static else math.ceil(data.num_train / batches)
    train_ds = data_lib.batched(
        data, config.image_size, batches, True, drop_remainder=static, seed=config.seed
    ).map(one_hot(data.num_classes))
    test_ds = data_lib.batched(data, config.image_size, batches, False).map(
        one_hot(data.num_classes)
    )
    state = _resume_state(config.output_dir)  # the chief's checkpoint, for every worker
    with strategy.scope():
        if state is not None:
            checkpoint = os.path.join(config.output_dir, "checkpoints", state["checkpoint"])
            model = keras.models.load_model(checkpoint)
            initial_epoch = state["epoch"]
        else:
            try:
                model = build_model(
                    config, (config.image_size, config.image_size, data.channels), data.num_classes
                )
            except ValueError as error:  # e.g. --num-heads that does not divide a width
                raise UsageError(f"cannot build --model {config.model}: {error}") from None
            compile_model(model, config, max(1, steps_per_epoch))
            initial_epoch = 0
    os.makedirs(own_dir, exist_ok=True)  # only now: bad input leaves nothing behind
    callbacks = [EpochCheckpoint(own_dir, state["best_accuracy"] if state else -1.0)]
    if custom_loop.uses_custom_loop(strategy):
        custom_loop.fit(
            model,
            strategy,
            train_ds,
            test_ds,
            batches,
            model.loss,
            config.epochs,
            initial_epoch,
            callbacks,
            config.verbose if chief else 0,
        )
    else:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(own_dir, "logs")))
        model.fit(
            train_ds,
            validation_data=test_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=config.verbose,
        )
    if custom_loop.uses_custom_loop(strategy):
        test_accuracy = custom_loop.accuracy(model, test_ds)
    else:
        test_accuracy = model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"]
    final_path = os.path.join(own_dir, "model.keras")
    atomic_write(final_path, model.save)
    summary = {
        "test_accuracy": float(test_accuracy),
        "epochs": config.epochs,
        "initial_epoch": initial_epoch,
        "params": model.count_params(),
        "replicas": strategy.num_replicas_in_sync,
        "seconds": round(time.time() - started, 1),
        "dataset": data.name,
        "model": config.model,
        "model_path": final_path,
        "best_path": os.path.join(own_dir, "best.keras"),
        "logs": os.path.join(own_dir, "logs"),
    }
    if chief:
        write_json(os.path.join(config.output_dir, "summary.json"), summary)
    return summary
