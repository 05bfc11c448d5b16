"""The `keras-lambda` command line: a thin argparse layer over the package."""

import argparse
import dataclasses
import math
import os
import re
import signal
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
    from keras_lambda.training import recipe
    from keras_lambda.training.options import CROPS, MODELS, OPTIMIZERS, PRECISIONS, STRATEGIES
    from keras_lambda.training.options import TrainConfig

    defaults = TrainConfig()
    paper = recipe.RECIPES["paper"]

    def recipe_default(key):
        """Help text for a setting a recipe covers: argparse's default is None."""
        shown = f"(default {recipe.DEFAULTS[key]}"
        return shown + (f"; --recipe paper: {paper[key]})" if key in paper else ")")

    train = commands.add_parser(
        "train",
        help="train a LambdaResNet (default: the tiny one on the bundled digits)",
        description="Train a LambdaResNet with model.fit. Writes model.keras (final), "
        "best.keras (best validation accuracy), classes.json, checkpoints/, logs/ "
        f"(TensorBoard) and summary.json into --output-dir (default: {defaults.output_dir}). "
        "Run the same command again to resume from the newest checkpoint; more --epochs "
        "extends the run. Ctrl-C stops it; it resumes from its last finished epoch.",
        formatter_class=_HelpFormatter,
    )
    add = train.add_argument
    add("--dataset", default=defaults.dataset,
        help="digits (scikit-learn's, bundled) or tfds:NAME[:SPLIT] (tensorflow-datasets)")
    add("--data-dir", help="a folder of images: one sub-folder per class (nested folders "
        "belong to their class), or train/ and val/ folders of class folders; with "
        "tfds:NAME, tensorflow-datasets' data folder")
    add("--model", default=defaults.model, help=f"one of {', '.join(MODELS)}")
    add("--weights", help="fine-tune from pretrained weights: imagenet (timm's presets; "
        "downloaded once) or a file (a timm checkpoint, a .keras model, .weights.h5); the "
        "backbone is loaded and a head sized to the data's classes is new")
    add("--freeze-backbone-epochs", type=int, default=defaults.freeze_backbone_epochs,
        help="with --weights: the first N epochs train only the new head (the backbone's "
        "batch norms keep their statistics), then the whole model trains")
    add("--image-size", type=int, default=defaults.image_size,
        help="the side of the training crops and evaluation images (>= 32)")
    add("--recipe", help="a named set of the training settings below: "
        + ", ".join(recipe.names()) + " (LambdaNetworks' ImageNet recipe); a flag given "
        "with it wins")
    add("--epochs", type=int, help="epochs in all, counting those of a resumed run "
        + recipe_default("epochs"))
    add("--steps-per-epoch", type=int,
        help="training steps between checkpoints and validations (default: one pass over "
        "the training split)")
    add("--batch-size", type=int, default=defaults.batch_size,
        help="global batch size, split over the replicas")
    add("--optimizer", help=f"{', '.join(OPTIMIZERS)} (SGD with momentum) "
        + recipe_default("optimizer"))
    add("--momentum", type=float, help="SGD's momentum " + recipe_default("momentum"))
    add("--learning-rate", type=float,
        help="peak learning rate (> 0): linear warm-up, then cosine decay to 0 at the last "
        "epoch " + recipe_default("learning_rate"))
    add("--lr-scaling-batch", type=int,
        help="the learning rate is for this batch size and scales with --batch-size; 0: "
        "used as given " + recipe_default("lr_scaling_batch"))
    add("--warmup-epochs", type=float, help="epochs of linear warm-up (>= 0) "
        + recipe_default("warmup_epochs"))
    add("--weight-decay", type=float, help="decoupled weight decay (>= 0) "
        + recipe_default("weight_decay"))
    add("--label-smoothing", type=float, help="of the cross-entropy, in [0, 1) "
        + recipe_default("label_smoothing"))
    add("--dropout", type=float, help="dropout before the classifier, in [0, 1) "
        + recipe_default("dropout"))
    add("--stochastic-depth", type=float,
        help="drop-path rate at the last block, linear in depth (default: the model's; "
        f"--recipe paper: {paper['stochastic_depth']})")
    add("--randaugment", type=float, help="RandAugment magnitude 0..10 (2 operations an "
        "image; 0: off) " + recipe_default("randaugment"))
    add("--mixup", type=float, help="MixUp alpha (0: off) " + recipe_default("mixup"))
    add("--cutmix", type=float, help="CutMix alpha (0: off; with --mixup, one of them a "
        "batch) " + recipe_default("cutmix"))
    add("--ema-momentum", type=float,
        help="moving average of the weights, e.g. 0.9999 (0: off); validation, best.keras "
        "and model.keras use it " + recipe_default("ema_momentum"))
    add("--train-crop", help=f"{', '.join(CROPS)}: a random-resized crop, or a random "
        "translation for tiny images (default: inception; pad for the 8x8 digits)")
    add("--crop-pct", type=float, help="evaluation resizes to --image-size / this and "
        "crops the centre (default: 0.875; 1 for the digits)")
    add("--validation-fraction", type=float, default=defaults.validation_fraction,
        help="of the training split, held out to pick best.keras; the test split is used "
        "once, at the end")
    add("--precision", default=defaults.precision, help=", ".join(PRECISIONS))
    add("--jit-compile", action="store_true", help="compile steps with XLA")
    add("--strategy", default=defaults.strategy,
        help="tf.distribute strategy: " + ", ".join(STRATEGIES))
    add("--key-dim", type=int, help="lambda layers' key depth k (default: the model's)")
    add("--num-heads", type=int, help="lambda layers' heads h (default: the model's)")
    add("--scope", type=int,
        help="odd lambda convolution scope r (default: the model's; tiny: global)")
    add("--output-dir", default=defaults.output_dir,
        help="where the run writes (and resumes from)")
    add("--seed", type=int, default=defaults.seed,
        help="of the data split, the initialisation, the shuffling and the augmentation")


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
    bench.add_argument("--input-pipeline", action="store_true",
                       help="time one pass of the training input pipeline instead (no model): "
                       "first batch, images/s, peak memory; with --data-dir or --dataset, "
                       "--image-size, --batch-size and the augmentation flags")
    bench.add_argument("--export-latency", action="store_true",
                       help="race batch-1 latency of LambdaResNet-50 and LambdaResNet26T against "
                       "ResNet50 in Keras, ONNX Runtime and TFLite instead, at --image-size, "
                       "--race-rounds rounds of --repeats calls; writes NAME.md and NAME.json "
                       "(NAME: export-latency)")
    bench.add_argument("--dataset", default="digits",
                       help="with --input-pipeline: digits or tfds:NAME[:SPLIT]")
    bench.add_argument("--data-dir", help="with --input-pipeline: a folder of images")
    bench.add_argument("--image-size", type=int, default=224, help="with --input-pipeline")
    bench.add_argument("--batch-size", type=int, default=64, help="with --input-pipeline")
    bench.add_argument("--randaugment", type=float, help="with --input-pipeline: magnitude")
    bench.add_argument("--mixup", type=float, help="with --input-pipeline: alpha")
    bench.add_argument("--cutmix", type=float, help="with --input-pipeline: alpha")
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
    bench.add_argument("--output-dir", default=defaults.OUTPUT_DIR,
                       help="folder of NAME.md, NAME.json (written after every case) and the "
                       f"figures (default: {defaults.OUTPUT_DIR})")
    bench.add_argument("--overwrite", action="store_true",
                       help="replace a record NAME.json / NAME.md that exists (refused without)")
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


def _add_predict(commands):
    predict = commands.add_parser(
        "predict",
        help="top classes of images, from a trained or converted model",
        description="Prints the top classes and their probabilities for each image (files, "
        "or folders searched recursively), one line an image, each model fed as it was "
        "evaluated: a model of `keras-lambda train` gets the run's centre crop and class "
        "names (classes.json beside it); a converted timm model, or a timm preset's name "
        "(its ImageNet weights, downloaded once), timm's transform and ImageNet's names. "
        "Paths that are not images: one line each on stderr, and exit code 2 after the "
        "others are printed.",
        formatter_class=_HelpFormatter,
    )
    predict.add_argument("model", metavar="MODEL",
                         help="a .keras file, or a timm preset with ImageNet weights")
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER",
                         help="image files, or folders searched recursively")
    predict.add_argument("--top", type=int, default=5, help="classes an image")
    predict.add_argument("--batch-size", type=int, default=32, help="images a forward pass")
    predict.add_argument("--json", action="store_true",
                         help="print one JSON object (predictions and skipped paths)")


def _add_export(commands):
    from keras_lambda.export import FORMATS

    export = commands.add_parser(
        "export",
        help="export a .keras model to SavedModel, ONNX or TFLite",
        description="Writes MODEL as a SavedModel folder (TF Serving's `serve` signature), "
        "an .onnx file (ONNX Runtime) or a .tflite file (LiteRT, builtin ops only), each "
        "with a dynamic batch, then runs it in its runtime at batch 1 and 2 and compares it "
        "with Keras (within 1e-5 of the largest output). Position kernels a format lacks "
        "(the FFT) are swapped for ones it has, from the same weights, and named.",
        formatter_class=_HelpFormatter,
    )
    export.add_argument("model", metavar="MODEL", help="a .keras file")
    export.add_argument("--format", required=True, help=", ".join(FORMATS))
    export.add_argument("--output", required=True, metavar="PATH",
                        help="the folder (saved_model) or file to write")
    export.add_argument("--no-check", action="store_true",
                        help="skip running the export and comparing it with Keras")


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
    _add_predict(commands)
    _add_export(commands)
    parser.commands = commands.choices  # name → its parser, for error messages
    return parser


def _need_tensorflow(command, why="(tf.data, tf.distribute)", otherwise=(
        "layers, models and `keras-lambda bench` run on any Keras backend without it")):
    from keras_lambda.errors import UsageError

    try:
        _startup.import_tensorflow()
    except ModuleNotFoundError:
        raise UsageError(
            f"`keras-lambda {command}` needs TensorFlow {why}, which this environment lacks: "
            f"{_startup.INSTALL_TENSORFLOW}; {otherwise}"
        ) from None


def _import_keras(command):
    """Keras for a command that runs on any backend; on TensorFlow's (Keras's default)
    a missing TensorFlow is one line, not Keras's import traceback."""
    if _startup.keras_backend() == "tensorflow":
        _need_tensorflow(command, why="(Keras's backend here)",
                         otherwise="or set KERAS_BACKEND to jax or torch")
    _startup.import_keras()


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived during a run (raised from the signal handler; like
    KeyboardInterrupt, no `except Exception` on the way catches it)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on_signals():
    """SIGINT and SIGTERM raise Stopped in the main thread: the run unwinds (its
    lock released, no half-written file left: see files.atomic_write)."""

    def handler(signum, frame):
        raise Stopped(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _stopped_message(config, stopped):
    from keras_lambda.training import checkpoints

    done = next(iter(checkpoints.saved(os.path.join(config.output_dir, "checkpoints"))), None)
    epochs_done = done["epoch"] if done else 0
    resumes = (f"the run resumes from epoch {epochs_done + 1} (its checkpoint after epoch "
               f"{epochs_done})" if done else "no epoch had finished: the run starts over")
    return (f"stopped by {stopped} during epoch {min(epochs_done + 1, config.epochs)} of "
            f"{config.epochs}; {resumes}: run the same command again")


def _train(args, argv):
    from keras_lambda.training.options import TrainConfig

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})  # checked
    _need_tensorflow("train")  # only now, quietly
    from keras_lambda.training.run import train

    _stop_on_signals()
    try:
        summary = train(config)
    except Stopped as stopped:
        print(f"keras-lambda: {_stopped_message(config, stopped)}", file=sys.stderr)
        return 128 + stopped.signum
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
    skipped = summary.get("undecodable_files") or []
    if skipped:
        print(f"keras-lambda: {len(skipped)} image file(s) did not decode and were skipped "
              f"(listed in {summary_path}): {skipped[0]}" + (", ..." if len(skipped) > 1 else ""),
              file=sys.stderr)
    return 0


def _tune(args, argv):
    from keras_lambda.training.options import TuneConfig, parse_space

    fields = {field.name for field in dataclasses.fields(TuneConfig)} - {"space"}
    config = TuneConfig(space=parse_space(args.space),
                        **{k: v for k, v in vars(args).items() if k in fields})  # checked
    _need_tensorflow("tune")
    from keras_lambda.tuning import search

    best = search(config)
    print(f"\nbest of {best['completed_trials']} trials (trial #{best['trial_number']}): "
          f"val accuracy {best['val_accuracy']:.4f} · test accuracy {best['test_accuracy']:.4f}")
    for name, value in best["hyperparameters"].items():
        print(f"  {name:<18} {value}" + (" (global)" if name == "scope" and value == 0 else ""))
    print(f"saved: {best['model_path']}, {os.path.join(args.output_dir, 'best.json')}")
    return 0


def _bench_input_pipeline(args, argv):
    import time

    from keras_lambda.files import check_output_dir, write_json
    from keras_lambda.training.options import TrainConfig

    started = time.perf_counter()
    TrainConfig(dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                batch_size=args.batch_size, randaugment=args.randaugment, mixup=args.mixup,
                cutmix=args.cutmix)  # the same checks as `train`
    check_output_dir(args.output_dir)
    _need_tensorflow("bench --input-pipeline")
    from keras_lambda.training import pipeline_bench

    figures = pipeline_bench.measure(
        args.dataset, args.data_dir, args.image_size, args.batch_size, started=started,
        randaugment=args.randaugment,
        mixup=args.mixup, cutmix=args.cutmix)
    figures["command"] = " ".join(["keras-lambda", *argv])
    print("\n".join(pipeline_bench.report(figures)))
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, _bench_name(args) + ".json")
    write_json(path, figures)
    print(f"saved: {path}")
    return 0


def _bench_export_latency(args, argv):
    from keras_lambda.errors import UsageError
    from keras_lambda.files import atomic_write, check_output_dir, write_json

    if args.image_size < 32:
        raise UsageError(f"`image_size` must be >= 32, got {args.image_size}")
    for name in ("race_rounds", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"`{name}` must be >= 1, got {getattr(args, name)}")
    check_output_dir(args.output_dir)
    _need_tensorflow("bench --export-latency")
    from keras_lambda.bench import export_latency

    record = export_latency.measure(args.image_size, args.race_rounds, args.repeats)
    record["command"] = " ".join(["keras-lambda", *argv])
    lines = export_latency.report(record) + ["", f"Reproduce: `{record['command']}`"]
    print("\n".join(lines))
    os.makedirs(args.output_dir, exist_ok=True)
    name = os.path.join(args.output_dir, _bench_name(args))
    write_json(name + ".json", record)

    def write_markdown(path):
        with open(path, "w") as file:
            file.write("\n".join(lines) + "\n")

    atomic_write(name + ".md", write_markdown)
    print(f"saved: {name}.md, {name}.json")
    return 0


def _bench_name(args):
    """The record's file name (no extension) for the mode `args` asks for."""
    if args.input_pipeline:
        return args.name or "input-pipeline"
    if args.export_latency:
        return args.name or "export-latency"
    if args.name or args.quick:
        return args.name or "quick"
    _import_keras("bench")  # the default name says the backend and device
    from keras_lambda.bench.runner import default_name

    return default_name()


def _refuse_to_overwrite(args):
    """A record is replaced only when asked: a bench run from a checkout's root must not
    wipe the records it ships with."""
    from keras_lambda.errors import UsageError

    if args.overwrite:
        return
    name = os.path.join(args.output_dir, _bench_name(args))
    for path in (name + ".json", name + ".md"):
        if os.path.exists(path):
            raise UsageError(f"`output_dir`: {path} exists; pass --overwrite to replace it, "
                             "or choose another --output-dir or --name")


def _bench(args, argv):
    _refuse_to_overwrite(args)
    if args.input_pipeline:
        return _bench_input_pipeline(args, argv)
    if args.export_latency:
        return _bench_export_latency(args, argv)
    _import_keras("bench")
    from keras_lambda.bench import LAYER_METHODS, MODEL_METHODS, QUICK, benchmark

    settings = dict(sizes=args.sizes, dims=args.dims,
                    methods=args.methods or LAYER_METHODS + MODEL_METHODS)
    if args.quick:
        settings.update(QUICK)
    name = _bench_name(args)
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
    from keras_lambda.models.timm_convert import load_state_dict

    try:  # numpy and safetensors only: a missing or broken file is told before Keras loads
        state_dict = load_state_dict(args.timm_checkpoint)
    except ValueError as error:  # ConversionError: not a file, truncated, foreign
        raise UsageError(f"`timm_checkpoint`: {error}") from None
    _import_keras("convert")
    from keras_lambda.models import build_preset, convert_timm

    model = build_preset(args.model)
    try:
        convert_timm(state_dict, model)
    except ValueError as error:  # ConversionError: a tensor missing, left over, mis-shaped
        raise UsageError(f"`timm_checkpoint` {args.timm_checkpoint}: {error}") from None
    atomic_write(args.output, model.save)
    trainable = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    print(f"converted {args.timm_checkpoint} ({args.model}, {trainable:,} trainable "
          f"parameters, as timm counts them) → {args.output}")
    return 0


def _predict(args, argv):
    import json

    from keras_lambda.errors import UsageError
    from keras_lambda.models import presets

    for name in ("top", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"`{name}` must be at least 1, got {getattr(args, name)}")
    by_name = args.model in presets.names("timm")
    if not by_name and not os.path.isfile(args.model):
        raise UsageError(f"`model` {args.model!r} is neither a .keras file nor a timm preset "
                         f"({', '.join(presets.names('timm'))})")
    _import_keras("predict")
    from keras_lambda.prediction import predict_images

    model = args.model
    if by_name:
        from keras_lambda.models import build_preset

        try:
            model = build_preset(args.model, weights="imagenet")
        except ValueError as error:  # offline: which file to fetch and where
            raise UsageError(f"`model` {args.model}: {error}") from None
    result = predict_images(model, args.inputs, top=args.top, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        for row in result.predictions:
            print(f"{row['path']}: " + " · ".join(
                f"{guess['class']} {guess['probability']:.3f}" for guess in row["top"]))
    for skipped in result.skipped:
        print(f"keras-lambda: skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    return 2 if result.skipped else 0


def _export(args, argv):
    from keras_lambda.errors import UsageError
    from keras_lambda.export import FORMATS
    from keras_lambda.files import check_output_dir

    if args.format not in FORMATS:
        raise UsageError(f"unknown `format` {args.format!r}; choose from {', '.join(FORMATS)}")
    if not os.path.isfile(args.model):
        raise UsageError(f"`model` {args.model!r} is not a file (a .keras model)")
    check_output_dir(os.path.dirname(os.path.abspath(args.output)), setting="output")
    if args.format == "onnx":
        import importlib.util

        missing = [name for name in ("tf2onnx", "onnxruntime") if not importlib.util.find_spec(name)]
        if missing:
            raise UsageError(f"`format` onnx needs {' and '.join(missing)}: "
                             "pip install 'keras-lambda[export]'")
    _import_keras("export")
    from keras_lambda.export import export

    report = export(args.model, args.output, args.format, check=not args.no_check)
    for layer, kernel, portable in report.swaps:
        print(f"{layer}: the {kernel} kernel has no {args.format} ops; exported with the "
              f"{portable} kernel (the same weights)")
    checked = ("" if report.max_difference is None else
               f", agrees with Keras within {report.max_difference:.1e} of the largest output "
               "at batch 1 and 2")
    print(f"exported {args.model} → {report.path} ({args.format}{checked})")
    return 0


COMMANDS = {"train": _train, "tune": _tune, "bench": _bench, "convert": _convert,
            "predict": _predict, "export": _export}


def as_flags(message, command_parser):
    """The library names settings in backticks (`batch_size`); on the command line
    they are the command's flags (--batch-size) or positionals (MODEL). Other names
    keep their backticks."""
    flags = {
        action.dest: action.option_strings[0] if action.option_strings
        else action.metavar or action.dest.upper()  # a positional: as the usage names it
        for action in command_parser._actions
    }
    return re.sub(r"`(\w+)`", lambda match: flags.get(match.group(1), match.group(0)), message)


def main(argv=None):
    """Entry point of the console script; returns the process exit code.

    The one place where errors become what a command-line user sees: the
    library's UsageError (bad settings, data or files, found before the work)
    is one line on stderr with the command's flags, and exit code 2."""
    from keras_lambda.errors import FaultError, UsageError

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
    except FaultError as error:
        print(f"keras-lambda: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
