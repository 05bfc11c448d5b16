"""Published weights of the timm presets: download (cached), convert, load.

`weights="imagenet"` fetches timm's `model.safetensors` for the preset's
checkpoint from the Hugging Face hub with `keras.utils.get_file` (kept in
`~/.keras/models/keras_lambda/`, or `$KERAS_HOME`), so later calls read it from
disk; converting it takes a second. A path to a timm checkpoint (`.safetensors`,
`.pth`, `.bin`) or to Keras weights (`.weights.h5`, `.keras`) works too, and
into a model with another number of classes (fine-tuning: a new head).
"""

import os
import warnings

import keras

from keras_lambda.errors import first_line
from keras_lambda.models.timm_convert import HEAD, convert_timm, load_state_dict

CACHE_SUBDIR = os.path.join("models", "keras_lambda")
TIMM_SUFFIXES = (".safetensors", ".pth", ".bin", ".pt")


def download(timm_weights, cache_dir=None):
    """The local path of `timm_weights`' file, downloaded on first use.

    Raises ValueError in one line when it cannot be downloaded (offline), saying
    which file to fetch and where to put it."""
    fname = f"{timm_weights.checkpoint}.safetensors"
    target = os.path.join(os.path.expanduser(cache_dir or _keras_home()), CACHE_SUBDIR, fname)
    try:
        return keras.utils.get_file(
            fname, timm_weights.url, file_hash=timm_weights.sha256,
            cache_subdir=CACHE_SUBDIR, cache_dir=cache_dir,
        )
    except Exception as error:  # get_file raises bare Exceptions for URL failures
        reason = first_line(error)
        raise ValueError(
            f"could not download timm's weights {timm_weights.checkpoint} ({reason}); "
            f"download {timm_weights.url} where there is network access and pass its "
            f"path as weights=, or put it at {target}"
        ) from None


def _keras_home():
    """Where `keras.utils.get_file` keeps files by default."""
    return os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))


def load(model, preset, weights, cache_dir=None):
    """Sets `model`'s weights from `weights`: "imagenet" (the preset's published
    timm checkpoint), a timm checkpoint file or a Keras file (`.keras`: matched
    by layer name; `.weights.h5`: by position, the same architecture and head).

    Fine-tuning: when the model's head (`predictions`) has another number of
    classes than the checkpoint's, the backbone is loaded, the head keeps its
    fresh initialisation and a warning says so (`.keras` and timm files)."""
    if weights == "imagenet":
        if preset.weights is None:
            raise ValueError(
                f"No ImageNet weights are published for {preset.name} (the paper released "
                f"none); presets with weights: LambdaResNet26T, LambdaResNet50TS, "
                f"LambdaResNet26RPT256. Received: weights='imagenet'"
            )
        path = download(preset.weights, cache_dir)
    else:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(
                f"`weights` must be None, 'imagenet' or the path of a weights file; "
                f"{path!r} is not a file"
            )
    if path.endswith(TIMM_SUFFIXES):
        state = load_state_dict(path)
        head = state.get("head.fc.weight")
        new_head = _has_head(model) and head is not None and head.shape[0] != _classes(model)
        convert_timm(state, model, new_head=new_head)
        if new_head:
            _say_new_head(model, path, head.shape[0])
    elif path.endswith(".keras"):
        _copy_by_name(_load_keras_file(path), model, path)
    else:
        model.load_weights(path)
    return model


def _has_head(model):
    return any(layer.name == HEAD for layer in model.layers)


def _classes(model):
    return model.get_layer(HEAD).units


def _say_new_head(model, path, their_classes):
    warnings.warn(
        f"{model.name}: the backbone's weights come from {path}, whose head has "
        f"{their_classes} classes; the model's head ({_classes(model)} classes) is new, "
        "initialised at random: train it (fine-tuning)", stacklevel=4,
    )


def _load_keras_file(path):
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # a truncated zip, a foreign file, unknown layers
        reason = first_line(error)
        raise ValueError(f"`weights` {path!r} is not a readable .keras model ({reason})") from None


def _copy_by_name(source, model, path):
    """Every weighted layer of `model` from `source`'s layer of the same name and
    shapes; a head of another size stays new. Nothing is assigned on a mismatch."""
    pairs, new_head = [], None
    for layer in model.layers:
        if not layer.weights:
            continue
        try:
            theirs = source.get_layer(layer.name)
        except ValueError:
            theirs = None
        shapes = [tuple(weight.shape) for weight in layer.weights]
        their_shapes = None if theirs is None else [tuple(w.shape) for w in theirs.weights]
        fits = their_shapes == shapes
        if not fits and layer.name == HEAD:
            new_head = theirs.units if theirs is not None else 0
            continue
        if not fits:
            found = ("no such layer" if theirs is None else
                     f"shapes {their_shapes}, not {shapes}")
            raise ValueError(f"`weights` {path!r} does not fit {model.name}: layer "
                             f"{layer.name} ({found}); is it the same architecture?")
        pairs += zip(layer.weights, theirs.weights)
    for ours, theirs in pairs:
        ours.assign(theirs)
    if new_head is not None:
        _say_new_head(model, path, new_head or "no")
