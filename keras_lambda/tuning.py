"""Hyperparameter search with KerasTuner: `LambdaResNetHyperModel` and `search`.

The search space (every entry can be fixed or re-ranged by the caller, see
`LambdaResNetHyperModel`):

| name              | default values                      | what it sets                          |
|-------------------|-------------------------------------|---------------------------------------|
| key_dim           | 8, 16                               | query/key depth k                     |
| num_heads         | 2, 4                                | query heads h (v = d / h)             |
| intra_depth       | 1, 4                                | intra-depth u                         |
| scope             | 0 (global), 3, 7                    | lambda convolution size r             |
| placement         | CCCL, CCLL, CLLL                    | stages c2..c5 with lambda layers      |
| blocks_per_stage  | 1, 2                                | bottlenecks in each of c2..c5         |
| width_multiplier  | 0.25, 0.5                           | channel widths (64..512 times this)   |
| learning_rate     | 1e-4 .. 1e-2, log                   | AdamW learning rate (cosine decay)    |
| weight_decay      | 1e-5 .. 1e-2, log                   | AdamW decoupled weight decay          |
| batch_size        | 32, 64, 128                         | chosen in `fit`                       |
"""

import math
import os
import warnings

import keras
import keras_tuner
import numpy as np

from keras_lambda import _startup, models
from keras_lambda.training import data as data_lib
from keras_lambda.training.distribute import make_strategy
from keras_lambda.files import atomic_write, check_output_dir, write_json
from keras_lambda.training.options import TUNERS, UsageError

tf = _startup.tensorflow_for("keras_lambda.tuning (KerasTuner search)")

# KerasTuner's choices need one type, so the search space says 0 where the rest of the
# package says None (a global context); narrowing it takes either.
GLOBAL_SCOPE = 0
REFERENCE_BATCH = 64  # `steps_per_epoch` is counted at this batch size
EVALUATION_BATCH = 64

SEARCH_SPACE = {
    "key_dim": [8, 16],
    "num_heads": [2, 4],
    "intra_depth": [1, 4],
    "scope": [GLOBAL_SCOPE, 3, 7],
    "placement": ["CCCL", "CCLL", "CLLL"],
    "blocks_per_stage": [1, 2],
    "width_multiplier": [0.25, 0.5],
    "learning_rate": (1e-4, 1e-2),  # (low, high): a log-uniform float
    "weight_decay": (1e-5, 1e-2),
    "batch_size": [32, 64, 128],
}
FLOAT_ENTRIES = ("learning_rate", "weight_decay")


def _check_entry(name, value):
    """Raises ValueError naming `name` when a narrowed entry cannot be searched."""
    if name in FLOAT_ENTRIES and isinstance(value, tuple):
        if len(value) != 2 or not 0 < value[0] < value[1]:
            raise ValueError(f"`{name}` range must be (low, high) with 0 < low < high, got {value}")
        return
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"`{name}` choices must not be empty")
    for item in values:
        if name == "placement":
            if not isinstance(item, str):
                raise ValueError(f"`placement` values are strings like 'CCLL', got {item!r}")
            models.parse_placement(item, (1, 1, 1, 1))  # raises naming the bad letter
        elif name in ("learning_rate", "weight_decay", "width_multiplier"):
            if isinstance(item, bool) or not isinstance(item, (int, float)) or item <= 0:
                raise ValueError(f"`{name}` values must be positive numbers, got {item!r}")
        else:
            smallest = 0 if name == "scope" else 1
            even_scope = name == "scope" and isinstance(item, int) and item and item % 2 == 0
            if isinstance(item, bool) or not isinstance(item, int) or item < smallest or even_scope:
                allowed = "0 (global) or an odd size" if name == "scope" else "integers >= 1"
                raise ValueError(f"`{name}` values must be {allowed}, got {item!r}")


class LambdaResNetHyperModel(keras_tuner.HyperModel):
    """A KerasTuner `HyperModel` of small LambdaResNets (ResNet-RS base, 4 stages).

    `build(hp)` builds and compiles the model; `fit(hp, model, x, ...)` picks
    the batch size and trains. The search space is `SEARCH_SPACE` (module
    docstring); each keyword narrows one entry:
    a single value fixes it (`key_dim=16`), a list gives the choices
    (`scope=[0, 7]`), a `(low, high)` tuple the log range of a float
    (`learning_rate=(1e-3, 3e-3)`). As in any KerasTuner search, a tuner's
    `hyperparameters=` with `tune_new_entries=False` also fixes values.

    Args:
        input_shape: `(H, W, c)` of the images.
        classes: number of classes; labels one-hot (categorical cross-entropy).
        epochs: the epochs a trial trains, for the cosine learning-rate decay
            (KerasTuner's `epochs` for `search` should match; Hyperband: its max).
        steps_per_epoch: optimizer steps per epoch at `REFERENCE_BATCH` (64), for the
            decay; other batch sizes scale it. None: constant learning rate.
        label_smoothing: of the cross-entropy loss.
        jit_compile: compile train steps with XLA.
        include_rescaling: the models take pixel values 0..255 (what
            `keras_lambda.training.data.batched` gives) and scale them to [0, 1].
        preset: the named model (`keras_lambda.models.presets`) whose other
            settings the trials keep (base, activation, lambda layer options);
            default "tiny", what `keras-lambda train` trains.
        **search_space: narrowed entries, names as in `SEARCH_SPACE`.

    Example:
    ```python
    import keras_tuner
    import numpy as np
    from keras_lambda.tuning import LambdaResNetHyperModel

    x, y = np.random.rand(64, 32, 32, 3) * 255, np.eye(10)[np.arange(64) % 10]   # y one-hot
    hypermodel = LambdaResNetHyperModel((32, 32, 3), 10, scope=0, num_heads=4, placement="CCCL",
                                        width_multiplier=0.25, blocks_per_stage=1)
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=1,
                                     directory="runs", project_name="example")
    tuner.search(x[:48], y[:48], validation_data=(x[48:], y[48:]), epochs=1, verbose=0)
    ```
    """

    def __init__(
        self,
        input_shape,
        classes,
        epochs=None,
        steps_per_epoch=None,
        label_smoothing=0.0,
        jit_compile=False,
        include_rescaling=False,
        preset="tiny",
        name=None,
        tunable=True,
        **search_space,
    ):
        super().__init__(name=name, tunable=tunable)
        self.preset = models.presets.get(preset).name  # raises naming the presets
        unknown = sorted(set(search_space) - set(SEARCH_SPACE))
        if unknown:
            raise ValueError(
                f"unknown search space entries {unknown}; allowed: {', '.join(SEARCH_SPACE)}"
            )
        if "scope" in search_space:  # None (global), as LambdaLayer says it, is 0 here
            scope = search_space["scope"]
            search_space["scope"] = (
                [GLOBAL_SCOPE if s is None else s for s in scope]
                if isinstance(scope, (list, tuple)) else GLOBAL_SCOPE if scope is None else scope
            )
        for entry, value in search_space.items():
            _check_entry(entry, value)
        if classes < 2:
            raise ValueError(f"`classes` must be >= 2, got {classes}")
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.label_smoothing = label_smoothing
        self.jit_compile = jit_compile
        self.include_rescaling = include_rescaling
        self.search_space = {**SEARCH_SPACE, **search_space}

    def _value(self, hp, name):
        """Registers `name` in `hp` as the search space says; returns its value."""
        space = self.search_space[name]
        if name in FLOAT_ENTRIES and isinstance(space, tuple):
            return hp.Float(name, space[0], space[1], sampling="log")
        if isinstance(space, (list, tuple)):
            return hp.Fixed(name, space[0]) if len(space) == 1 else hp.Choice(name, list(space))
        return hp.Fixed(name, space)

    def build(self, hp):
        value = lambda name: self._value(hp, name)  # noqa: E731
        scope = value("scope")
        # The preset gives what the search leaves alone (base, activation, lambda options).
        arguments = dict(models.presets.get(self.preset).arguments)
        arguments.pop("input_shape", None)
        model = models.LambdaResNet(
            **{
                **arguments,
                "stackwise_num_blocks": (value("blocks_per_stage"),) * 4,
                "width_multiplier": value("width_multiplier"),
                "placement": value("placement"),
                "scope": None if scope == GLOBAL_SCOPE else scope,
                "key_dim": value("key_dim"),
                "num_heads": value("num_heads"),
                "intra_depth": value("intra_depth"),
            },
            input_shape=self.input_shape,
            include_rescaling=self.include_rescaling,
            classes=self.classes,
            name="lambda_resnet_trial",
        )
        learning_rate = value("learning_rate")
        batch_size = value("batch_size")  # registered here: the decay needs the steps
        if self.epochs and self.steps_per_epoch:
            steps = math.ceil(self.steps_per_epoch * REFERENCE_BATCH / batch_size) * self.epochs
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=value("weight_decay")),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing),
            metrics=["accuracy"],
            jit_compile=self.jit_compile,
        )
        return model

    def fit(self, hp, model, x, y=None, validation_data=None, **kwargs):
        """Trains `model` with the trial's batch size.

        `x` (and `validation_data`) may be: arrays (with `y`), an *unbatched*
        `tf.data.Dataset` of `(image, one_hot_label)`, or a callable
        `batch_size -> batched dataset` (for pipelines that batch themselves).
        Other keyword arguments go to `model.fit`.
        """
        batch_size = self._value(hp, "batch_size")
        kwargs.pop("batch_size", None)
        x, batch_kwargs = _batch(x, batch_size, training=True)
        if "batch_size" not in batch_kwargs:  # a dataset, shuffled by its pipeline
            kwargs.setdefault("shuffle", False)
        if validation_data is not None and not isinstance(validation_data, tuple):
            validation_data, _ = _batch(validation_data, batch_size, training=False)
        return model.fit(x, y, validation_data=validation_data, **batch_kwargs, **kwargs)


def _batch(data, batch_size, training):
    """Batches what `fit` accepts; returns (data, extra `model.fit` arguments)."""
    if callable(data) and not isinstance(data, tf.data.Dataset):
        return data(batch_size), {}
    if isinstance(data, tf.data.Dataset):
        if training:
            data = data.shuffle(data_lib.SHUFFLE_BUFFER)
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE), {}
    if isinstance(data, (np.ndarray, list)) or hasattr(data, "shape"):
        return data, {"batch_size": batch_size}
    raise ValueError(
        "`x` must be arrays, an unbatched tf.data.Dataset, or a callable "
        f"batch_size -> dataset; got {type(data).__name__}"
    )


def make_tuner(
    name,
    hypermodel,
    directory,
    project_name="search",
    max_trials=10,
    epochs=3,
    objective="val_accuracy",
    distribution_strategy=None,
    seed=0,
    **kwargs,
):
    """A KerasTuner tuner by name (`TUNERS`) that resumes what `directory` holds.

    Hyperband trains brackets of up to `epochs` epochs and, like the others,
    stops after `max_trials` trials (KerasTuner's Hyperband has no such cap of
    its own; its iterations are unbounded here so the cap is what ends it).
    """
    if name not in TUNERS:
        raise ValueError(f"unknown tuner {name!r}; choose from {', '.join(TUNERS)}")
    if max_trials < 1:
        raise ValueError(f"`max_trials` must be >= 1, got {max_trials}")
    common = dict(
        objective=objective,
        directory=directory,
        project_name=project_name,
        overwrite=False,  # a second run with the same directory continues the search
        distribution_strategy=distribution_strategy,
        seed=seed,
        **kwargs,
    )
    if name == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if name == "bayesian":
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    tuner = keras_tuner.Hyperband(
        hypermodel, max_epochs=epochs, factor=3, hyperband_iterations=None, **common
    )
    tuner.oracle.max_trials = max_trials
    return tuner


def search(config):
    """Runs the search `TuneConfig` describes (what `keras-lambda tune` runs).

    `output_dir` holds the tuner's project (`search/`, resumed when run again),
    `best.keras` (the best trial's model) and `best.json` (its hyperparameters,
    validation and test accuracy). Returns the `best.json` dict.

    Example:
    ```python
    from keras_lambda.training.options import TuneConfig
    from keras_lambda.tuning import search

    best = search(TuneConfig(max_trials=1, epochs=1, output_dir="runs/example-search"))
    print(best["hyperparameters"], best["test_accuracy"])
    ```
    """
    check_output_dir(config.output_dir)
    strategy = make_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    data = data_lib.load(config.dataset, config.data_dir, config.seed)
    trials_data = data_lib.split_validation(data, config.validation_fraction)
    to_one_hot = data_lib.one_hot(data.num_classes)
    size = config.image_size

    def train_batches(batch_size):
        return data_lib.batched(trials_data, size, batch_size, True, seed=config.seed).map(to_one_hot)

    def validation_batches(batch_size):
        return data_lib.batched(trials_data, size, batch_size, False).map(to_one_hot)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        try:
            hypermodel = LambdaResNetHyperModel(
                (size, size, data.channels),
                data.num_classes,
                epochs=config.epochs,
                steps_per_epoch=math.ceil(trials_data.num_train / REFERENCE_BATCH),
                jit_compile=config.jit_compile,
                include_rescaling=True,  # the pipelines' images are uint8
                **config.space,
            )
        except ValueError as error:  # before the tuner writes anything
            raise UsageError(f"`space`: {error}") from None
        tuner = make_tuner(
            config.tuner,
            hypermodel,
            config.output_dir,
            max_trials=config.max_trials,
            epochs=config.epochs,
            # KerasTuner builds and fits every trial in the strategy's scope.
            distribution_strategy=(
                strategy if isinstance(strategy, tf.distribute.MirroredStrategy) else None
            ),
            seed=config.seed,
        )
        tuner.search(
            train_batches,
            validation_data=validation_batches,
            epochs=config.epochs,
            verbose=config.verbose,
        )
        completed = [
            trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"
        ]
        if not completed:
            raise RuntimeError(f"no trial of the search in {config.output_dir} completed")
        best_trial = tuner.oracle.get_best_trials(1)[0]
        with warnings.catch_warnings():  # trial checkpoints hold weights, not optimizer state
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            best_model = tuner.get_best_models(1)[0]
        test_accuracy = best_model.evaluate(
            data_lib.batched(data, size, EVALUATION_BATCH, False).map(to_one_hot), verbose=0,
            return_dict=True
        )["accuracy"]
    finally:
        keras.config.set_dtype_policy(previous_policy)
    model_path = os.path.join(config.output_dir, "best.keras")
    atomic_write(model_path, best_model.save)
    summary = {
        "hyperparameters": {
            name: value
            for name, value in best_trial.hyperparameters.values.items()
            if not name.startswith("tuner/")
        },
        "trial_id": best_trial.trial_id,
        # KerasTuner prints its trials as "Trial #1", "Trial #2", ... (trial_id + 1)
        "trial_number": int(best_trial.trial_id) + 1,
        "val_accuracy": float(best_trial.score),
        "test_accuracy": float(test_accuracy),
        "completed_trials": len(completed),
        "tuner": config.tuner,
        "dataset": data.name,
        "replicas": strategy.num_replicas_in_sync,
        "model_path": model_path,
    }
    write_json(os.path.join(config.output_dir, "best.json"), summary)
    return summary
