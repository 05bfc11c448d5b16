"""Training LambdaResNets with TensorFlow: what `keras-lambda train` runs.

Modules, each with one job (data flows `run` → the others → `keras_lambda.models`):

- `options`: the settings (`TrainConfig`) and their checks, free of TensorFlow;
- `folders`: image folders as people keep them (nested class folders, train/val);
- `data`: the streaming input pipelines (folders, tensorflow-datasets, the digits);
- `augment`: random-resized crops, centre crops, RandAugment, MixUp and CutMix;
- `recipe`: named training recipes (`--recipe paper`);
- `checkpoints`: epoch checkpoints and resuming;
- `distribute`: `tf.distribute` strategies by name;
- `custom_loop`: the loop for strategies under which `model.fit` fails;
- `run`: `train(TrainConfig(...))`, which puts them together.

`from keras_lambda.training import train, TrainConfig` imports TensorFlow only
when `train` is first used.
"""

import importlib

_LAZY = {"train": "keras_lambda.training.run", "TrainConfig": "keras_lambda.training.options"}


def __getattr__(name):
    if name not in _LAZY:
        try:  # a submodule: keras_lambda.training.data, ...
            return importlib.import_module(f"keras_lambda.training.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"keras_lambda.training.{name}":
                raise
            raise AttributeError(
                f"module 'keras_lambda.training' has no attribute {name!r}"
            ) from None
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
