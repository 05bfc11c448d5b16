"""The `keras-lambda` command line: a thin argparse layer over the package."""

import argparse
import dataclasses
import os
import sys

import keras_lambda


class _Parser(argparse.ArgumentParser):
    """Bad input: one line on stderr and exit code 2, no usage dump or traceback."""

    def error(self, message):
        self.exit(2, f"keras-lambda: error: {message}\n")


def _add_train(commands):
    from keras_lambda.options import MODELS, PRECISIONS, STRATEGIES, TrainConfig

    defaults = TrainConfig()
    train = commands.add_parser(
        "train",
        help="train a LambdaResNet (default: the tiny one on the bundled digits)",
        description="Train a LambdaResNet with model.fit; resumes from --output-dir.",
    )
    train.add_argument("--dataset", default=defaults.dataset,
                       help="digits (bundled, default) or tfds:NAME[:SPLIT]")
    train.add_argument("--data-dir", help="a folder with one sub-folder of images per class")
    train.add_argument("--model", default=defaults.model, help=f"one of {', '.join(MODELS)}")
    train.add_argument("--image-size", type=int, default=defaults.image_size)
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help="global batch size, split over the replicas")
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs)
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    train.add_argument("--precision", default=defaults.precision, help=", ".join(PRECISIONS))
    train.add_argument("--jit-compile", action="store_true")
    train.add_argument("--strategy", default=defaults.strategy, help=", ".join(STRATEGIES))
    train.add_argument("--key-dim", type=int)
    train.add_argument("--num-heads", type=int)
    train.add_argument("--scope", type=int, help="lambda convolution scope (default: global)")
    train.add_argument("--output-dir", default=defaults.output_dir)
    train.add_argument("--seed", type=int, default=defaults.seed)


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
    return parser


def _train(args):
    from keras_lambda.options import TrainConfig, UsageError, validate

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    try:
        validate(config)
        from keras_lambda.train import train

        summary = train(config)
    except UsageError as error:  # bad settings or data, found before anything is written
        print(f"keras-lambda: error: {error}", file=sys.stderr)
        return 2
    summary_path = os.path.join(config.output_dir, "summary.json")
    print(
        f"\ntest accuracy {summary['test_accuracy']:.4f} · {summary['params']:,} parameters · "
        f"{summary['seconds']:.0f} s · epochs {summary['initial_epoch']}→{summary['epochs']} "
        f"· {summary['replicas']} replica(s)\nsaved: {summary['model_path']} (final), "
        f"{summary['best_path']} (best), {summary['logs']} (TensorBoard)"
        + (f", {summary_path}" if os.path.exists(summary_path) else "")
    )
    return 0


def main(argv=None):
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        return _train(args)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
