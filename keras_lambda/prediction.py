"""Named classes for image files: what `keras-lambda predict` prints.

```python
from keras_lambda.prediction import predict_images
result = predict_images("runs/flowers/best.keras", ["rose.jpg", "photos/"], top=3)
result.predictions  # [{"path": "rose.jpg", "top": [{"class": "rose", "index": 2,
                    #   "probability": 0.93}, ...]}, ...]
result.skipped      # [{"path": "photos/notes.txt", "reason": "..."}]
```

Each model is fed as it was evaluated:
- a model of `keras-lambda train` (it has the `rescaling` layer: it takes pixel
  values 0..255) gets the training run's evaluation crop, the same function
  (`training.augment.center_crop`): the shorter side resized to
  floor(s / crop_pct), the centre s x s; its class names and crop_pct come from
  the run's `classes.json` beside the model file;
- a converted timm model (no rescaling layer, named after a timm preset, as
  `keras-lambda convert` writes it) gets timm's transform
  (`models.imagenet.preprocess_input`) and ImageNet's class names.
Files are decoded with TensorFlow (`tf.io.decode_image`: BMP, GIF, JPEG, PNG),
as the training pipeline decodes them.
"""

import dataclasses
import json
import os

import numpy as np

from keras_lambda.errors import UsageError, first_line

CLASSES_FILE = "classes.json"  # written by `keras-lambda train` beside its models
DEFAULT_CROP_PCT = 0.875
BATCH = 32


@dataclasses.dataclass
class Predictions:
    """`predictions`: per readable image, its path and top classes, in input order.
    `skipped`: per unreadable path, its path and why.

    Example:
    ```python
    from keras_lambda.prediction import Predictions

    result = Predictions(predictions=[], skipped=[{"path": "notes.txt", "reason": "not an image"}])
    print(result.skipped[0]["reason"])
    ```
    """

    predictions: list
    skipped: list


def image_paths(inputs):
    """(image files, skipped) from files and folders (searched recursively for
    image extensions, sorted); missing paths are skipped with a reason."""
    from keras_lambda.training.folders import IMAGE_EXTENSIONS

    paths, skipped = [], []
    for path in map(os.fspath, inputs):
        if os.path.isdir(path):
            found = sorted(
                os.path.join(root, name)
                for root, _, names in os.walk(path, followlinks=True)
                for name in names if name.lower().endswith(IMAGE_EXTENSIONS)
            )
            if not found:
                skipped.append({"path": path, "reason": "a folder without image files "
                                f"({', '.join(IMAGE_EXTENSIONS)})"})
            paths += found
        elif os.path.isfile(path):
            paths.append(path)
        else:
            skipped.append({"path": path, "reason": "no such file or folder"})
    return paths, skipped


def run_record(model_path):
    """The training run's `classes.json` beside `model_path` ({} when there is none)."""
    if model_path is None:
        return {}
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), CLASSES_FILE)
    try:
        with open(path) as file:
            return json.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise UsageError(f"{path} is not readable JSON ({error}); write it again or "
                         "remove it") from None


def _is_timm_model(model):
    from keras_lambda.models import presets

    layer_names = {layer.name for layer in model.layers}
    return model.name in presets.names("timm") and "rescaling" not in layer_names


def preprocessor(model, record):
    """uint8 image [H, W, c] → the model's input [s, s, c] (numpy), as it was evaluated."""
    from keras_lambda.models import imagenet

    if _is_timm_model(model):
        return lambda image: imagenet.preprocess_input(image, model.name)[0]
    if "rescaling" not in {layer.name for layer in model.layers}:
        raise UsageError(
            f"`model` {model.name}: cannot tell how its inputs are prepared: models of "
            "`keras-lambda train` (pixel values 0..255) and converted timm models are "
            "supported; build yours with include_rescaling=True"
        )
    from keras_lambda import _startup
    from keras_lambda.training.augment import center_crop, to_uint8

    tf = _startup.tensorflow_for("keras-lambda predict")
    height, width = model.input_shape[1:3]
    size = height or record.get("image_size") or 224
    if width not in (None, size):
        raise UsageError(f"`model` {model.name} takes {height}x{width} images; only square "
                         "inputs are supported")
    crop_pct = record.get("crop_pct", DEFAULT_CROP_PCT)
    return lambda image: to_uint8(center_crop(tf.cast(image, tf.float32), size, crop_pct)).numpy()


def class_names(model, record):
    """The names of the model's outputs: the run's, ImageNet's or the indices."""
    classes = model.output_shape[-1]
    names = record.get("class_names")
    if names and len(names) == classes:
        return list(names)
    if classes == 1000 and _is_timm_model(model):
        from keras_lambda.models.imagenet import imagenet_classes

        return [name for _, name in imagenet_classes()]
    return [str(index) for index in range(classes)]


def _probabilities(model, scores):
    """Softmax of the scores unless the model's last layer is already one."""
    activation = getattr(model.layers[-1], "activation", None)
    if getattr(activation, "__name__", "") == "softmax":
        return scores
    shifted = np.exp(scores - scores.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def _decode(path, channels):
    """uint8 [H, W, c], or the reason it is not an image."""
    from keras_lambda import _startup

    tf = _startup.tensorflow_for("keras-lambda predict")
    try:
        data = tf.io.read_file(path)
        return tf.io.decode_image(data, channels=channels, expand_animations=False), None
    except (tf.errors.InvalidArgumentError, tf.errors.OpError) as error:
        reason = first_line(error)
        return None, f"not a decodable image ({reason})"


def load(model_or_path):
    """(keras.Model, its path or None) from a model or a `.keras` file."""
    if not isinstance(model_or_path, (str, os.PathLike)):
        return model_or_path, None
    import keras

    import keras_lambda.layers  # noqa: F401  (registers the classes a .keras file names)

    path = os.fspath(model_or_path)
    try:
        return keras.saving.load_model(path), path
    except Exception as error:  # a truncated zip, a foreign file, another model's layers
        reason = first_line(error)
        raise UsageError(f"`model` {path} is not a readable .keras model ({reason})") from None


def predict_images(model, inputs, top=5, batch_size=BATCH):
    """Top-`top` classes with probabilities for image files and folders.

    Args:
        model: a `keras.Model` or the path of a `.keras` file.
        inputs: image files and folders (searched recursively).
        top: how many classes per image, best first.
    Returns:
        `Predictions` (readable images in order; unreadable paths with reasons).

    Example:
    ```python
    import numpy as np
    import keras
    from keras_lambda.models import build_preset
    from keras_lambda.prediction import predict_images

    model = build_preset("tiny", input_shape=(32, 32, 3), classes=3, include_rescaling=True)
    keras.utils.save_img("photo.png", np.random.randint(0, 256, (40, 40, 3)))
    result = predict_images(model, ["photo.png"], top=2)   # a train run's best.keras works too
    print(result.predictions[0]["top"])
    ```
    """
    model, model_path = load(model)
    record = run_record(model_path)
    prepare = preprocessor(model, record)
    names = class_names(model, record)
    channels = model.input_shape[-1]
    paths, skipped = image_paths(inputs)
    predictions, chunk = [], []

    def predict_chunk():  # a batch at a time: a folder of any size fits in memory
        scores = model.predict(np.stack([image for _, image in chunk]), verbose=0)
        probabilities = _probabilities(model, np.asarray(scores, "float64"))
        for (path, _), row in zip(chunk, probabilities):
            best = np.argsort(-row, kind="stable")[:top]
            predictions.append({"path": path, "top": [
                {"class": names[index], "index": int(index), "probability": float(row[index])}
                for index in best]})
        chunk.clear()

    for path in paths:
        image, reason = _decode(path, channels)
        if reason:
            skipped.append({"path": path, "reason": reason})
            continue
        chunk.append((path, prepare(image)))
        if len(chunk) == batch_size:
            predict_chunk()
    if chunk:
        predict_chunk()
    return Predictions(predictions, skipped)
