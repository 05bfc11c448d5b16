"""Training settings and their checks, free of TensorFlow so the CLI answers fast."""

import dataclasses
import math

from keras_lambda.models import presets


from keras_lambda.errors import UsageError

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
MODELS = presets.names()
NETWORK_STRIDE = 32


@dataclasses.dataclass
class TrainConfig:
    dataset: str = "digits"
    data_dir: str = None
    model: str = "tiny"
    image_size: int = 32
    epochs: int = 15
    batch_size: int = 64  # global, over all replicas
    learning_rate: float = 3e-3
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
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
        validate(self)  # once, where the settings are made: bad ones never exist


# What a resumed run must share with the run in its folder: the model, the data and
# its split, the numerics and the steps per epoch. Everything else (epochs, the
# learning-rate schedule, the loss, XLA, the strategy) may change on resume.
RESUME_FIXED = (
    "dataset", "data_dir", "model", "image_size", "key_dim", "num_heads", "scope",
    "precision", "batch_size", "validation_fraction", "seed",
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
        config, (("model", MODELS), ("strategy", STRATEGIES), ("precision", PRECISIONS))
    )
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
    for field in ("key_dim", "num_heads", "scope"):
        value = getattr(config, field)
        if value is not None and value < 1:
            raise UsageError(f"`{field}` must be >= 1, got {value}")


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
