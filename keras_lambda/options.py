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


def validate(config):
    """Raises ValueError naming the first bad setting."""
    choices = (("model", MODELS), ("strategy", STRATEGIES), ("precision", PRECISIONS))
    for field, allowed in choices:
        value = getattr(config, field)
        if value not in allowed:
            raise UsageError(f"unknown --{field} {value!r}; choose from {', '.join(allowed)}")
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
