"""The `keras-lambda` command line: a thin argparse layer over the package."""

import argparse
import dataclasses
import math
import os
import re
import sys

import keras_lambda
from keras_lambda import _startup


class _Parser(argparse.ArgumentParser):
    """Bad input: one line on stderr and exit code 2, no usage dump or traceback."""

    def error(self, message):
        self.exit(2, f"keras-lambda: error: {message}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless it has none (None, a
    switch that is off) or the help already says what it is."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_train(commands):
    from keras_lambda.training.options import MODELS, PRECISIONS, STRATEGIES, TrainConfig

    defaults = TrainConfig()
    train = commands.add_parser(
        "train",
        help="train a LambdaResNet (default: the tiny one on the bundled digits)",
        description="Train a LambdaResNet with model.fit. Writes model.keras (final), "
        "best.keras (best validation accuracy), checkpoints/, logs/ (TensorBoard) and "
        f"summary.json into --output-dir (default: {defaults.output_dir}). Run the same "
        "command again to resume from the newest checkpoint; more --epochs extends the run.",
        formatter_class=_HelpFormatter,
    )
    train.add_argument("--dataset", default=defaults.dataset,
                       help="digits (scikit-learn's, bundled) or tfds:NAME[:SPLIT] "
                       "(tensorflow-datasets)")
    train.add_argument("--data-dir", help="a folder with one sub-folder of images per class; "
                       "with tfds:NAME, tensorflow-datasets' data folder")
    train.add_argument("--model", default=defaults.model, help=f"one of {', '.join(MODELS)}")
    train.add_argument("--image-size", type=int, default=defaults.image_size,
                       help="images are resized to this side (>= 32)")
    train.add_argument("--epochs", type=int, default=defaults.epochs,
                       help="epochs in all, counting those of a resumed run")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="global batch size, split over the replicas")
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                       help="AdamW's peak learning rate (> 0): linear warm-up, then cosine "
                       "decay to 0 at the last epoch")
    train.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs,
                       help="epochs of linear warm-up (>= 0)")
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                       help="AdamW's decoupled weight decay (>= 0)")
    train.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing,
                       help="of the cross-entropy, in [0, 1)")
    train.add_argument("--validation-fraction", type=float,
                       default=defaults.validation_fraction,
                       help="of the training split, held out to pick best.keras; the test "
                       "split is used once, at the end")
    train.add_argument("--precision", default=defaults.precision, help=", ".join(PRECISIONS))
    train.add_argument("--jit-compile", action="store_true", help="compile steps with XLA")
    train.add_argument("--strategy", default=defaults.strategy,
                       help="tf.distribute strategy: " + ", ".join(STRATEGIES))
    train.add_argument("--key-dim", type=int,
                       help="lambda layers' key depth k (default: the model's)")
    train.add_argument("--num-heads", type=int,
                       help="lambda layers' heads h (default: the model's)")
    train.add_argument("--scope", type=int,
                       help="odd lambda convolution scope r (default: the model's; tiny: global)")
    train.add_argument("--output-dir", default=defaults.output_dir,
                       help="where the run writes (and resumes from)")
    train.add_argument("--seed", type=int, default=defaults.seed,
                       help="of the data split, the initialisation and the shuffling")


def _add_tune(commands):
    from keras_lambda.training.options import PRECISIONS, TUNE_STRATEGIES, TUNERS, TuneConfig

    defaults = TuneConfig()
    tune = commands.add_parser(
        "tune",
        help="search LambdaResNet hyperparameters with KerasTuner",
        description="KerasTuner search over LambdaResNetHyperModel; running it again with "
        "the same --output-dir continues the search without repeating finished trials.",
        formatter_class=_HelpFormatter,
    )
    tune.add_argument("--tuner", default=defaults.tuner, help=", ".join(TUNERS))
    tune.add_argument("--max-trials", type=int, default=defaults.max_trials,
                      help="trials in all, counting those of a resumed search")
    tune.add_argument("--epochs", type=int, default=defaults.epochs,
                      help="epochs per trial (hyperband: the most a trial trains)")
    tune.add_argument("--dataset", default=defaults.dataset,
                      help="digits (bundled, default) or tfds:NAME[:SPLIT]")
    tune.add_argument("--data-dir", help="a folder with one sub-folder of images per class")
    tune.add_argument("--image-size", type=int, default=defaults.image_size,
                      help="images are resized to this side (>= 32)")
    tune.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction,
                      help="of the training split, to rank trials on")
    tune.add_argument("--precision", default=defaults.precision, help=", ".join(PRECISIONS))
    tune.add_argument("--jit-compile", action="store_true", help="compile steps with XLA")
    tune.add_argument("--strategy", default=defaults.strategy, help=", ".join(TUNE_STRATEGIES))
    tune.add_argument("--output-dir", default=defaults.output_dir,
                      help="the tuner's project, best.keras and best.json")
    tune.add_argument("--seed", type=int, default=defaults.seed,
                      help="of the data split, the tuner and the initialisation")
    tune.add_argument("--space", action="append", default=[], metavar="NAME=VALUE[,VALUE...]",
                      help="narrow the search space: one value fixes NAME, several are its "
                      "choices (names: key_dim, num_heads, intra_depth, scope (0 = global), "
                      "placement, blocks_per_stage, width_multiplier, learning_rate, "
                      "weight_decay, batch_size); repeatable")


def _add_bench(commands):
    from keras_lambda.bench import defaults

    bench = commands.add_parser(
        "bench",
        help="time and memory of lambda layers vs attention, and of LambdaResNets",
        description="Each case runs in a fresh process: train step (forward + backward) and "
        "inference time (median of --repeats), peak memory; ratios against "
        "MultiHeadAttention measured in the same run. Writes NAME.md, NAME.json and the "
        "figures NAME.png and NAME-implementations.png.",
        formatter_class=_HelpFormatter,
    )
    bench.add_argument("--quick", action="store_true",
                       help="a short subset (1-2 min on 2 CPU cores): s 16 and 32, d 128, five "
                       "methods, no models")
    bench.add_argument("--sizes", type=int, nargs="+", default=list(defaults.SIZES),
                       help="image sides s (n = s²)")
    bench.add_argument("--dims", type=int, nargs="+", default=list(defaults.DIMS),
                       help="channels d")
    bench.add_argument("--methods", nargs="+", metavar="METHOD",
                       help=f"any of {defaults.METHOD_GRAMMAR} (default: every layer method and "
                       + ", ".join(defaults.MODEL_METHODS) + ")")
    bench.add_argument("--batch", type=int, default=defaults.BATCH,
                       help="batch of the layer cases (model cases: 16 images of 128 px)")
    bench.add_argument("--repeats", type=int, default=defaults.REPEATS,
                       help="timed steps per case, after a warm-up step (the median counts)")
    bench.add_argument("--race-rounds", type=int, default=defaults.RACE_ROUNDS,
                       help="rounds of the races that judge implementation='auto' against the "
                       "implementations within 1.5x of the fastest (0: no races)")
    bench.add_argument("--timeout", type=int, default=defaults.TIMEOUT, help="seconds per case")
    bench.add_argument("--memory-limit-gib", type=float,
                       help="per case; beyond it a case is OOM (None: 80%% of RAM)")
    bench.add_argument("--output-dir", default="benchmarks",
                       help="folder of NAME.md, NAME.json (written after every case) and the figures")
    bench.add_argument("--name", default=None,
                       help="output file names (default: bench-cpu or bench-gpu on TensorFlow, "
                       "bench-BACKEND-cpu/gpu on others, quick with --quick)")


def _add_convert(commands):
    from keras_lambda.models import presets

    convert = commands.add_parser(
        "convert",
        help="convert a timm LambdaResNet checkpoint into a .keras model",
        description="Reads a timm checkpoint (.safetensors without torch; .pth/.bin with "
        "torch, tensors only) of lambda_resnet26t, lambda_resnet50ts or "
        "lambda_resnet26rpt_256, checks that every tensor is used exactly once, and "
        "writes a .keras model (keras.models.load_model after import keras_lambda).",
        formatter_class=_HelpFormatter,
    )
    convert.add_argument("--timm-checkpoint", required=True, metavar="FILE",
                         help="the timm state dict")
    convert.add_argument("--model", required=True,
                         help="its architecture: " + ", ".join(presets.names("timm")))
    convert.add_argument("--output", required=True, metavar="OUT.keras",
                         help="the .keras file to write")


def build_parser():
    parser = _Parser(
        prog="keras-lambda",
        description="LambdaNetworks for Keras 3: lambda layers and LambdaResNets.",
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-lambda {keras_lambda.__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train(commands)
    _add_tune(commands)
    _add_bench(commands)
    _add_convert(commands)
    parser.commands = commands.choices  # name → its parser, for error messages
    return parser


def _need_tensorflow(command):
    from keras_lambda.errors import UsageError

    try:
        _startup.import_tensorflow()
    except ModuleNotFoundError:
        raise UsageError(
            f"`keras-lambda {command}` needs TensorFlow (tf.data, tf.distribute), which this "
            "environment lacks: `pip install -e .` installs it (layers, models and "
            "`keras-lambda bench` run on any Keras backend)"
        ) from None


def _train(args, argv):
    from keras_lambda.training.options import TrainConfig

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})  # checked
    _need_tensorflow("train")  # only now, quietly
    from keras_lambda.training.run import train

    summary = train(config)
    summary_path = os.path.join(config.output_dir, "summary.json")
    best = (
        f"\nbest model (epoch {summary['best_epoch']}, validation accuracy "
        f"{summary['best_val_accuracy']:.4f}): test accuracy {summary['best_test_accuracy']:.4f}"
        if summary.get("best_test_accuracy") is not None else ""
    )
    print(
        f"\ntest accuracy {summary['test_accuracy']:.4f} (validation "
        f"{summary['val_accuracy']:.4f}) · {summary['params']:,} parameters · "
        f"{summary['seconds']:.0f} s · epochs {summary['initial_epoch']}→{summary['epochs']} "
        f"· {summary['replicas']} replica(s){best}\nsaved: {summary['model_path']} (final), "
        f"{summary['best_path']} (best), {summary['logs']} (TensorBoard)"
        + (f", {summary_path}" if os.path.exists(summary_path) else "")
    )
    return 0


def _tune(args, argv):
    from keras_lambda.training.options import TuneConfig, parse_space

    fields = {field.name for field in dataclasses.fields(TuneConfig)} - {"space"}
    config = TuneConfig(space=parse_space(args.space),
                        **{k: v for k, v in vars(args).items() if k in fields})  # checked
    _need_tensorflow("tune")
    from keras_lambda.tuning import search

    best = search(config)
    print(f"\nbest of {best['completed_trials']} trials (trial {best['trial_id']}): "
          f"val accuracy {best['val_accuracy']:.4f} · test accuracy {best['test_accuracy']:.4f}")
    for name, value in best["hyperparameters"].items():
        print(f"  {name:<18} {value}" + (" (global)" if name == "scope" and value == 0 else ""))
    print(f"saved: {best['model_path']}, {os.path.join(args.output_dir, 'best.json')}")
    return 0


def _bench(args, argv):
    _startup.import_keras()
    from keras_lambda.bench import LAYER_METHODS, MODEL_METHODS, QUICK, benchmark

    settings = dict(sizes=args.sizes, dims=args.dims,
                    methods=args.methods or LAYER_METHODS + MODEL_METHODS)
    if args.quick:
        settings.update(QUICK)
    from keras_lambda.bench.runner import default_name

    name = args.name or ("quick" if args.quick else default_name())
    limit = int(args.memory_limit_gib * 2**30) if args.memory_limit_gib else None
    benchmark(
        batch=args.batch, repeats=args.repeats, race_rounds=args.race_rounds,
        timeout=args.timeout, memory_limit_bytes=limit, output_dir=args.output_dir,
        name=name, command=" ".join(["keras-lambda", *argv]), **settings,
    )
    return 0


def _convert(args, argv):
    from keras_lambda.errors import UsageError
    from keras_lambda.files import atomic_write, check_output_dir
    from keras_lambda.models import presets

    if args.model not in presets.names("timm"):
        raise UsageError(f"unknown `model` {args.model!r}; timm's: "
                         + ", ".join(presets.names("timm")))
    if not args.output.endswith(".keras"):
        raise UsageError(f"`output` must end in .keras, got {args.output!r}")
    check_output_dir(os.path.dirname(os.path.abspath(args.output)), setting="output")
    _startup.import_keras()
    from keras_lambda.models import build_preset, convert_timm

    model = build_preset(args.model)
    try:
        convert_timm(args.timm_checkpoint, model)
    except ValueError as error:  # ConversionError: a tensor missing, left over, mis-shaped
        raise UsageError(f"`timm_checkpoint` {args.timm_checkpoint}: {error}") from None
    atomic_write(args.output, model.save)
    trainable = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    print(f"converted {args.timm_checkpoint} ({args.model}, {trainable:,} trainable "
          f"parameters, as timm counts them) → {args.output}")
    return 0


COMMANDS = {"train": _train, "tune": _tune, "bench": _bench, "convert": _convert}


def as_flags(message, command_parser):
    """The library names settings in backticks (`batch_size`); on the command line
    they are the command's flags (--batch-size). Other names keep their backticks."""
    flags = {
        action.dest: action.option_strings[0]
        for action in command_parser._actions
        if action.option_strings
    }
    return re.sub(r"`(\w+)`", lambda match: flags.get(match.group(1), match.group(0)), message)


def main(argv=None):
    """Entry point of the console script; returns the process exit code.

    The one place where errors become what a command-line user sees: the
    library's UsageError (bad settings, data or files, found before the work)
    is one line on stderr with the command's flags, and exit code 2."""
    from keras_lambda.errors import UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in COMMANDS:
        parser.print_help(sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args, sys.argv[1:] if argv is None else list(argv))
    except UsageError as error:
        message = as_flags(str(error), parser.commands[args.command])
        print(f"keras-lambda: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
