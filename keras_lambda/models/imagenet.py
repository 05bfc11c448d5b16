"""ImageNet inputs and outputs of the pretrained models: timm's evaluation
transform (`preprocess_input`) and class names (`decode_predictions`).

```python
model = LambdaResNet26T(weights="imagenet")
probabilities = model.predict(preprocess_input(images, "lambda_resnet26t"))
decode_predictions(probabilities, top=3)   # [[("n02123045", "tabby", 0.71), ...], ...]
```
"""

import functools
import json
import math
import os

import keras
import numpy as np

from keras_lambda.models import presets

CLASSES_FILE = os.path.join(os.path.dirname(__file__), "imagenet_classes.json")


def _data_config(model):
    weights = presets.get(model).weights
    if weights is None:
        raise ValueError(
            f"`model` must name a preset with ImageNet weights "
            f"({', '.join(presets.names('timm'))}). Received: model={model!r}"
        )
    return weights


def preprocess_input(images, model="lambda_resnet26t"):
    """timm's evaluation transform for the checkpoint of preset `model`.

    images `[H, W, 3]` or `[b, H, W, 3]` (RGB, values 0..255, any size) →
    float32 `[b, s, s, 3]`, s the checkpoint's input size (256): the shorter
    side resized to floor(s / crop_pct) (bicubic, antialiased), the centre s×s
    cropped, scaled to [0, 1] and normalised with ImageNet's mean and std. As
    timm's `create_transform(**resolve_data_config(...))`, up to the resampling
    of TensorFlow's bicubic kernel against PIL's (see the tests).

    Example:
    ```python
    import numpy as np
    from keras_lambda.models import preprocess_input

    photo = np.random.randint(0, 256, (300, 400, 3))   # RGB, any size
    batch = preprocess_input(photo, "lambda_resnet26t")
    print(batch.shape)                                 # (1, 256, 256, 3)
    ```
    """
    config = _data_config(model)
    x = keras.ops.convert_to_tensor(images)
    integer = not keras.backend.is_float_dtype(x.dtype)
    x = keras.ops.cast(x, "float32")
    if len(x.shape) == 3:
        x = x[None]
    if len(x.shape) != 4 or x.shape[-1] != 3:
        raise ValueError(
            f"`images` must be [H, W, 3] or [b, H, W, 3] RGB. Received shape {tuple(x.shape)}"
        )
    height, width = x.shape[1:3]
    size = config.input_size
    short = math.floor(size / config.crop_pct)
    if height <= width:
        resized = (short, int(short * width / height))
    else:
        resized = (int(short * height / width), short)
    x = keras.ops.image.resize(x, resized, interpolation=config.interpolation, antialias=True)
    x = keras.ops.clip(x, 0.0, 255.0)
    if integer:  # PIL resamples 8-bit images to 8-bit values
        x = keras.ops.round(x)
    top = int(round((resized[0] - size) / 2.0))
    left = int(round((resized[1] - size) / 2.0))
    x = x[:, top : top + size, left : left + size, :] / 255.0
    mean = keras.ops.convert_to_tensor(config.mean, "float32")
    std = keras.ops.convert_to_tensor(config.std, "float32")
    return keras.ops.convert_to_numpy((x - mean) / std)


@functools.cache
def imagenet_classes():
    """The 1,000 ImageNet classes in index order: (WordNet id, first lemma)."""
    with open(CLASSES_FILE) as file:
        return tuple(tuple(row) for row in json.load(file))


def decode_predictions(predictions, top=5):
    """`[b, 1000]` scores → per image the `top` classes as (WordNet id, name, score),
    best first, as `keras.applications.imagenet_utils.decode_predictions` (whose
    class list is a download; this one ships with the package).

    Example:
    ```python
    import numpy as np
    from keras_lambda.models import decode_predictions

    scores = np.zeros((1, 1000))
    scores[0, 281] = 1.0
    print(decode_predictions(scores, top=1))           # [[('n02123045', 'tabby', 1.0)]]
    ```
    """
    scores = np.asarray(keras.ops.convert_to_numpy(predictions))
    if scores.ndim != 2 or scores.shape[1] != 1000:
        raise ValueError(
            f"`predictions` must be [b, 1000] ImageNet scores. Received shape {scores.shape}"
        )
    classes = imagenet_classes()
    return [
        [(*classes[index], float(row[index])) for index in np.argsort(row)[::-1][:top]]
        for row in scores
    ]
