"""Published weights of the timm presets: download (cached), convert, load.

`weights="imagenet"` fetches timm's `model.safetensors` for the preset's
checkpoint from the Hugging Face hub with `keras.utils.get_file` (kept in
`~/.keras/models/keras_lambda/`, or `$KERAS_HOME`), so later calls read it from
disk; converting it takes a second. A path to a timm checkpoint (`.safetensors`,
`.pth`, `.bin`) or to Keras weights (`.weights.h5`, `.keras`) works too.
"""

import os

import keras

from keras_lambda.models.timm_convert import convert_timm

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
        reason = (str(error).strip().splitlines() or [""])[0][:200]
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
    timm checkpoint), a timm checkpoint file or a Keras weights file."""
    if weights == "imagenet":
        if preset.weights is None:
            raise ValueError(
                f"No ImageNet weights are published for {preset.name} (the paper released "
                f"none); presets with weights: LambdaResNet26T, LambdaResNet50TS, "
                f"LambdaResNet26RPT256. Received: weights='imagenet'"
            )
        return convert_timm(download(preset.weights, cache_dir), model)
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(
            f"`weights` must be None, 'imagenet' or the path of a weights file; "
            f"{path!r} is not a file"
        )
    if path.endswith(TIMM_SUFFIXES):
        return convert_timm(path, model)
    model.load_weights(path)
    return model
