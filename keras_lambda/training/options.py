"""Training settings and their checks, free of TensorFlow so the CLI answers fast."""

import dataclasses
import math
import os

from keras_lambda.errors import UsageError
from keras_lambda.models import presets
from keras_lambda.training import recipe as recipes

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("adamw", "sgd")
CROPS = ("inception", "pad")  # augment.CROPS, without importing TensorFlow
MODELS = presets.names()
NETWORK_STRIDE = 32


@dataclasses.dataclass
class TrainConfig:
    """What `keras-lambda train` does. The settings a recipe covers
    (`recipe.DEFAULTS`) default to None: the recipe's value, else the default
    there; they hold the resolved values once the config is made.

    Example:
    ```python
    from keras_lambda.training import TrainConfig

    config = TrainConfig(data_dir="photos", image_size=128, model="lambda_resnet26t",
                         weights="imagenet", freeze_backbone_epochs=2, epochs=10)
    ```
    """

    dataset: str = "digits"
    data_dir: str = None
    model: str = "tiny"
    weights: str = None  # fine-tuning: "imagenet" (timm presets) or a checkpoint / .keras file
    freeze_backbone_epochs: int = 0  # fine-tuning: the first epochs train only the head
    image_size: int = 32
    recipe: str = None  # "paper": the LambdaNetworks / ResNet-RS recipe (training.recipe)
    epochs: int = None
    batch_size: int = 64  # global, over all replicas
    steps_per_epoch: int = None  # None: one pass over the training split
    optimizer: str = None  # "adamw" or "sgd" (with momentum)
    momentum: float = None
    learning_rate: float = None  # peak; per `lr_scaling_batch` images when that is set
    lr_scaling_batch: int = None  # the learning rate scales with batch_size / this (0: off)
    warmup_epochs: float = None
    weight_decay: float = None
    label_smoothing: float = None
    dropout: float = None  # before the classifier
    stochastic_depth: float = None  # drop-path rate at the last block (None: the model's)
    randaugment: float = None  # magnitude 0..10 (0: off)
    mixup: float = None  # alpha (0: off)
    cutmix: float = None  # alpha (0: off)
    ema_momentum: float = None  # moving average of the weights (0: off)
    train_crop: str = None  # "inception" or "pad" (None: per data set, see augment)
    crop_pct: float = None  # evaluation's centre crop (None: per data set)
    validation_fraction: float = 0.1  # of the training split: what picks best.keras
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "auto"
    key_dim: int = None
    num_heads: int = None
    scope: int = None  # tiny model: None = global lambda layers
    output_dir: str = "runs/keras-lambda"
    seed: int = 0
    verbose: int = 1

    def __post_init__(self):
        if self.recipe is not None and self.recipe not in recipes.names():
            raise UsageError(
                f"unknown `recipe` {self.recipe!r}; choose from {', '.join(recipes.names())}"
            )
        given = {key: getattr(self, key) for key in recipes.DEFAULTS}
        for key, value in recipes.resolve(self.recipe, given).items():
            setattr(self, key, value)
        validate(self)  # once, where the settings are made: bad ones never exist

    @property
    def peak_learning_rate(self):
        """The learning rate at the end of the warm-up, scaled with the batch."""
        if self.lr_scaling_batch:
            return self.learning_rate * self.batch_size / self.lr_scaling_batch
        return self.learning_rate


# What a resumed run must share with the run in its folder: the model, the data and
# its split, the numerics and the steps per epoch. Everything else (epochs, the
# learning-rate schedule, the loss, XLA, the strategy) may change on resume.
RESUME_FIXED = (
    "dataset", "data_dir", "model", "weights", "image_size", "key_dim", "num_heads", "scope",
    "precision", "batch_size", "validation_fraction", "seed", "dropout", "stochastic_depth",
    "optimizer", "ema_momentum", "steps_per_epoch",
)
NOT_RECORDED = ("output_dir", "verbose")


def recorded(config):
    """The settings a run stores with its checkpoints (a JSON-ready dict)."""
    return {
        key: value for key, value in dataclasses.asdict(config).items()
        if key not in NOT_RECORDED
    }


def resume_changes(stored, config):
    """Compares the settings `stored` with a run's checkpoints to `config`.

    Returns `{name: [stored, new]}` for the settings that may change; raises
    UsageError naming the ones that may not.
    """
    current = recorded(config)
    changed = {
        key: [stored.get(key), value] for key, value in current.items()
        if key in stored and stored[key] != value
    }
    fixed = [key for key in RESUME_FIXED if key in changed]
    if fixed:
        differences = ", ".join(
            f"`{key}` {changed[key][1]!r} (the run has {changed[key][0]!r})"
            for key in fixed
        )
        raise UsageError(
            f"`output_dir` {config.output_dir!r} holds a run with other settings: "
            f"{differences}; resume with the run's settings or use a new `output_dir`"
        )
    return changed


def _check_number(name, value, low, high=math.inf, low_inclusive=True, high_inclusive=False):
    """Raises UsageError unless value lies in the interval the flags give, NaN excluded."""
    if not (
        isinstance(value, (int, float))
        and (value >= low if low_inclusive else value > low)
        and (value <= high if high_inclusive else value < high)
    ):
        interval = (
            ("[" if low_inclusive else "(") + f"{low:g}, {high:g}" + ("]" if high_inclusive else ")")
        )
        raise UsageError(f"`{name}` must be in {interval}, got {value!r}")


def _check_choices(config, choices):
    for field, allowed in choices:
        value = getattr(config, field)
        if value not in allowed:
            raise UsageError(f"unknown `{field}` {value!r}; choose from {', '.join(allowed)}")


def validate(config):
    """Raises UsageError naming the first bad setting."""
    _check_choices(
        config, (("model", MODELS), ("strategy", STRATEGIES), ("precision", PRECISIONS),
                 ("optimizer", OPTIMIZERS))
    )
    if config.train_crop is not None and config.train_crop not in CROPS:
        raise UsageError(f"unknown `train_crop` {config.train_crop!r}; choose from {', '.join(CROPS)}")
    if not isinstance(config.output_dir, str) or not config.output_dir.strip():
        raise UsageError(f"`output_dir` must name a folder, got {config.output_dir!r}")
    if config.dataset != "digits" and not (
        config.dataset.startswith("tfds:") and len(config.dataset) > 5
    ):
        raise UsageError(
            f"unknown `dataset` {config.dataset!r}: use 'digits', 'tfds:NAME[:SPLIT]', "
            "or `data_dir` PATH"
        )
    for field in ("epochs", "batch_size", "image_size"):
        if getattr(config, field) < 1:
            raise UsageError(f"`{field}` must be >= 1, got {getattr(config, field)}")
    if config.image_size < NETWORK_STRIDE:
        raise UsageError(f"`image_size` must be >= 32 (the network stride), got {config.image_size}")
    _check_number("learning_rate", config.learning_rate, 0, low_inclusive=False)
    _check_number("warmup_epochs", config.warmup_epochs, 0)
    _check_number("weight_decay", config.weight_decay, 0)
    _check_number("label_smoothing", config.label_smoothing, 0, 1)
    _check_number("validation_fraction", config.validation_fraction, 0, 1, low_inclusive=False)
    _check_number("momentum", config.momentum, 0, 1)
    _check_number("lr_scaling_batch", config.lr_scaling_batch, 0)
    _check_number("dropout", config.dropout, 0, 1)
    if config.stochastic_depth is not None:
        _check_number("stochastic_depth", config.stochastic_depth, 0, 1)
    _check_number("randaugment", config.randaugment, 0, 30, high_inclusive=True)
    _check_number("mixup", config.mixup, 0)
    _check_number("cutmix", config.cutmix, 0)
    _check_number("ema_momentum", config.ema_momentum, 0, 1)
    if config.crop_pct is not None:
        _check_number("crop_pct", config.crop_pct, 0, 1, low_inclusive=False, high_inclusive=True)
    for field in ("key_dim", "num_heads", "scope", "steps_per_epoch"):
        value = getattr(config, field)
        if value is not None and value < 1:
            raise UsageError(f"`{field}` must be >= 1, got {value}")
    _check_weights(config)


WEIGHT_FILES = (".safetensors", ".pth", ".bin", ".pt", ".keras", ".weights.h5")


def _check_weights(config):
    if not isinstance(config.freeze_backbone_epochs, int) or config.freeze_backbone_epochs < 0:
        raise UsageError(f"`freeze_backbone_epochs` must be >= 0, got "
                         f"{config.freeze_backbone_epochs!r}")
    if config.freeze_backbone_epochs and config.weights is None:
        raise UsageError("`freeze_backbone_epochs` fine-tunes pretrained weights: give `weights`")
    if config.weights is None:
        return
    if config.weights == "imagenet":
        if presets.get(config.model).weights is None:
            raise UsageError(
                f"`weights` imagenet: no ImageNet weights are published for `model` "
                f"{config.model}; presets with them: {', '.join(presets.names('timm'))}")
    elif not os.path.isfile(config.weights):
        raise UsageError(f"`weights` must be imagenet or a weights file; {config.weights!r} "
                         "is not a file")
    elif not config.weights.endswith(WEIGHT_FILES):
        raise UsageError(f"`weights` {config.weights!r}: expected a timm checkpoint "
                         "(.safetensors, .pth, .bin, .pt) or a Keras file (.keras, .weights.h5)")


TUNERS = ("random", "hyperband", "bayesian")
TUNE_STRATEGIES = ("auto", "default", "mirrored")  # KerasTuner's distribution_strategy


@dataclasses.dataclass
class TuneConfig:
    tuner: str = "random"
    max_trials: int = 10
    epochs: int = 3  # per trial (Hyperband: the most a trial trains)
    dataset: str = "digits"
    data_dir: str = None
    image_size: int = 32
    validation_fraction: float = 0.15  # of the training split: what trials are ranked on
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "auto"
    output_dir: str = "runs/keras-lambda-tune"
    seed: int = 0
    verbose: int = 1
    space: dict = dataclasses.field(default_factory=dict)  # narrowed entries, see tuning

    def __post_init__(self):
        validate_tune(self)


def parse_space(items):
    """`["key_dim=16", "scope=0,7"]` -> `{"key_dim": 16, "scope": [0, 7]}`: one value
    fixes an entry, several are its choices; numbers become int or float."""

    def number(text):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    space = {}
    for item in items:
        name, equals, values = item.partition("=")
        if not equals or not name or not values:
            raise UsageError(f"`space` expects NAME=VALUE[,VALUE...], got {item!r}")
        parsed = [number(value.strip()) for value in values.split(",")]
        space[name.strip()] = parsed[0] if len(parsed) == 1 else parsed
    return space


def validate_tune(config):
    """Raises UsageError naming the first bad tuning setting."""
    _check_choices(
        config, (("tuner", TUNERS), ("strategy", TUNE_STRATEGIES), ("precision", PRECISIONS))
    )
    for field in ("max_trials", "epochs"):
        if getattr(config, field) < 1:
            raise UsageError(f"`{field}` must be >= 1, got {getattr(config, field)}")
    _check_number("validation_fraction", config.validation_fraction, 0, 1, low_inclusive=False)
    TrainConfig(dataset=config.dataset, data_dir=config.data_dir, image_size=config.image_size)
