"""Training settings and their checks, free of TensorFlow so the CLI answers fast."""

import dataclasses


class UsageError(ValueError):
    """Bad settings or data: the command prints the message as one line, exit code 2."""

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
MODELS = ("tiny",) + tuple(
    f"lambda_resnet{depth}" for depth in (50, 101, 152, 200, 270, 350, 420)
)
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
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "auto"
    key_dim: int = None
    num_heads: int = None
    scope: int = None  # tiny model: None = global lambda layers
    output_dir: str = "runs/keras-lambda"
    seed: int = 0
    verbose: int = 1


def _check_choices(config, choices):
    for field, allowed in choices:
        value = getattr(config, field)
        if value not in allowed:
            raise UsageError(f"unknown --{field} {value!r}; choose from {', '.join(allowed)}")


def validate(config):
    """Raises UsageError naming the first bad setting."""
    _check_choices(
        config, (("model", MODELS), ("strategy", STRATEGIES), ("precision", PRECISIONS))
    )
    if config.dataset != "digits" and not (
        config.dataset.startswith("tfds:") and len(config.dataset) > 5
    ):
        raise UsageError(
            f"unknown --dataset {config.dataset!r}: use 'digits', 'tfds:NAME[:SPLIT]', "
            "or --data-dir PATH"
        )
    for field in ("epochs", "batch_size", "image_size"):
        if getattr(config, field) < 1:
            raise UsageError(f"--{field.replace('_', '-')} must be >= 1, got {getattr(config, field)}")
    if config.image_size < NETWORK_STRIDE:
        raise UsageError(f"--image-size must be >= 32 (the network stride), got {config.image_size}")


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
            raise UsageError(f"--space expects NAME=VALUE[,VALUE...], got {item!r}")
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
            raise UsageError(f"--{field.replace('_', '-')} must be >= 1, got {getattr(config, field)}")
    if not 0 < config.validation_fraction < 1:
        raise UsageError(
            f"--validation-fraction must be between 0 and 1, got {config.validation_fraction}"
        )
    validate(TrainConfig(dataset=config.dataset, data_dir=config.data_dir,
                         image_size=config.image_size))
