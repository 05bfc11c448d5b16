"""The `keras-lambda` command line: a thin argparse layer over the package."""

import argparse
import sys

import keras_lambda


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-lambda",
        description="LambdaNetworks for Keras 3: lambda layers and LambdaResNets.",
    )
    parser.add_argument(
        "--version", action="version", version=f"keras-lambda {keras_lambda.__version__}"
    )
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv=None):
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
