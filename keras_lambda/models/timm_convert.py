"""timm checkpoints of LambdaResNets into keras_lambda models.

`convert_timm(state_dict_or_path, model)` copies every tensor of a timm
`lambda_resnet26t` / `lambda_resnet50ts` / `lambda_resnet26rpt_256` state dict
into the matching keras_lambda model (`LambdaResNet26T()`, ...), and checks that
every tensor is used exactly once and every weight of the model is set.

Names (timm's `byobnet` modules → our layers):

| timm                                  | keras_lambda                         |
|---------------------------------------|--------------------------------------|
| `stem.convJ.{conv,bn}`                | `stem_convJ_{conv,bn}`               |
| `stages.S.I.shortcut.{conv,bn}`       | `cS+2_blockI_shortcut_{conv,bn}`     |
| `stages.S.I.conv1_1x1` / `conv2_kxk` / `conv3_1x1` | `..._conv1` / `_conv2` / `_conv3` |
| `stages.S.I.self_attn.*`              | `cS+2_blockI_lambda` (a LambdaLayer) |
| `stages.S.I.post_attn`                | `cS+2_blockI_lambda_bn`              |
| `head.fc`                             | `predictions`                        |

Layouts: conv `[O, I, kh, kw]` → `[kh, kw, I, O]`; linear `[O, I]` → `[I, O]`;
the lambda layer's fused 1x1 `qkv` `[h·k + k + v, c, 1, 1]` → `[c, h·k + k + v]`
(the same channel order: query head·k + key, then keys, then values); its r×r
`conv_lambda` `[k, 1, r, r, 1]` → table `[r, r, k, 1]` and bias `[k]`, or the
relative table `pos_emb` `[2H−1, 2W−1, k]` → `[2H−1, 2W−1, k, 1]`.
"""

import os
import re

import numpy as np

from keras_lambda.errors import first_line

CONV_NAMES = {"conv1": "conv1_1x1", "conv2": "conv2_kxk", "conv3": "conv3_1x1",
              "shortcut": "shortcut"}
STAGES = {"c2": 0, "c3": 1, "c4": 2, "c5": 3}
HEAD = "predictions"  # the classifier layer (timm's head.fc)
IGNORED_SUFFIX = ".num_batches_tracked"  # training bookkeeping of torch's BatchNorm


class ConversionError(ValueError):
    """A checkpoint that does not fit the model: the message names the tensor.

    Example:
    ```python
    import numpy as np
    from keras_lambda.models import ConversionError, LambdaResNet26T, convert_timm

    try:
        model = LambdaResNet26T(input_shape=(64, 64, 3))
        convert_timm({"stem.conv1.weight": np.zeros((3, 3))}, model)
    except ConversionError as error:
        print(error)                                   # names the tensor that does not fit
    ```
    """


def load_state_dict(source):
    """`{name: numpy array}` from a state dict (of torch tensors or arrays) or a file:
    `.safetensors` (the `safetensors` package, no torch needed) or `.pth`/`.bin`/`.pt`
    (torch, loaded with `weights_only=True`: tensors only, never pickled code)."""
    if isinstance(source, dict):
        return {name: _to_numpy(tensor) for name, tensor in source.items()}
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ConversionError(f"timm checkpoint {path!r} is not a file")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        try:
            return load_file(path)
        except Exception as error:  # SafetensorError: truncated, foreign, corrupt
            raise _unreadable(path, error, "a safetensors file") from None
    if path.endswith((".pth", ".bin", ".pt")):
        try:
            import torch
        except ImportError:
            raise ConversionError(
                f"{path!r} is a PyTorch file, which needs torch to read; install torch, "
                "or use the checkpoint's .safetensors file"
            ) from None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # truncated zip, pickled code, not a torch file
            raise _unreadable(path, error, "a PyTorch state dict of tensors") from None
        for wrapper in ("state_dict", "model", "state_dict_ema"):
            if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
        return load_state_dict(state)
    raise ConversionError(
        f"timm checkpoint {path!r}: expected a .safetensors, .pth, .bin or .pt file"
    )


def _unreadable(path, error, kind):
    reason = first_line(error)
    return ConversionError(
        f"timm checkpoint {path!r} is not readable as {kind} ({reason}): is the download "
        "complete? Fetch it again"
    )


def _to_numpy(tensor):
    if hasattr(tensor, "detach"):  # a torch tensor
        tensor = tensor.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(tensor)


def timm_module(layer_name):
    """The timm module path of one of our layers (`c4_block1_lambda` →
    `stages.2.1.self_attn`), or None for layers without weights in timm."""
    if layer_name == "predictions":
        return "head.fc"
    match = re.fullmatch(r"stem_(conv\d)_(conv|bn)", layer_name)
    if match:
        return f"stem.{match.group(1)}.{match.group(2)}"
    match = re.fullmatch(r"(c[2-5])_block(\d+)_(\w+)", layer_name)
    if not match:
        return None
    stage, block, part = match.groups()
    prefix = f"stages.{STAGES[stage]}.{block}"
    if part == "lambda":
        return f"{prefix}.self_attn"
    if part == "lambda_bn":
        return f"{prefix}.post_attn"
    match = re.fullmatch(r"(conv\d|shortcut)_(conv|bn)", part)
    if match and match.group(1) in CONV_NAMES:
        return f"{prefix}.{CONV_NAMES[match.group(1)]}.{match.group(2)}"
    return None


class _Checkpoint:
    """The tensors of a checkpoint, each handed out once, with shape checks."""

    def __init__(self, tensors):
        self.tensors = dict(tensors)
        self.used = set()

    def take(self, name, variable, layout=lambda array: array, layer=""):
        if name not in self.tensors:
            raise ConversionError(
                f"the timm checkpoint has no tensor {name!r} (for {layer or variable.path})"
            )
        if name in self.used:
            raise ConversionError(f"tensor {name!r} would be used twice")
        array = layout(self.tensors[name])
        if tuple(array.shape) != tuple(variable.shape):
            raise ConversionError(
                f"tensor {name!r} has shape {tuple(self.tensors[name].shape)}: as "
                f"{tuple(array.shape)} it does not fit {variable.path} "
                f"{tuple(variable.shape)}"
            )
        self.used.add(name)
        return variable, array.astype(variable.dtype)

    def unused(self, skip=()):
        return sorted(
            name for name in self.tensors
            if name not in self.used and not name.endswith(IGNORED_SUFFIX)
            and not name.startswith(tuple(skip))
        )


def _batch_norm(checkpoint, norm, path):
    names = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
             ("moving_variance", "running_var"))
    return [checkpoint.take(f"{path}.{theirs}", getattr(norm, ours), layer=norm.name)
            for ours, theirs in names]


def _lambda_layer(checkpoint, layer, path):
    pairs = [
        checkpoint.take(f"{path}.qkv.weight", layer.qkv_kernel,
                        lambda w: w[:, :, 0, 0].T, layer.name),
        *_batch_norm(checkpoint, layer.query_norm, f"{path}.norm_q"),
        *_batch_norm(checkpoint, layer.value_norm, f"{path}.norm_v"),
    ]
    table = layer.embedding.table
    if layer.scope is None:  # relative tables [2H−1, 2W−1, k] → [.., k, u=1]
        pairs.append(checkpoint.take(f"{path}.pos_emb", table, lambda w: w[..., None], layer.name))
    else:  # Conv3d(1, k, (r, r, 1)) [k, 1, r, r, 1] → [r, r, k, u=1]
        pairs.append(checkpoint.take(f"{path}.conv_lambda.weight", table,
                                     lambda w: w[:, 0, :, :, 0].transpose(1, 2, 0)[..., None],
                                     layer.name))
    if layer.position_bias:
        pairs.append(checkpoint.take(f"{path}.conv_lambda.bias", layer.position_bias_weight,
                                     layer=layer.name))
    return pairs


def _layer_pairs(checkpoint, layer, path):
    """(variable, array) pairs for one of our layers from the timm module at `path`."""
    kind = type(layer).__name__
    if kind == "LambdaLayer":
        return _lambda_layer(checkpoint, layer, path)
    if kind in ("BatchNormalization", "FusedBatchNormalization"):
        return _batch_norm(checkpoint, layer, path)
    if kind in ("Conv2D", "PointwiseConv2D"):
        pairs = [checkpoint.take(f"{path}.weight", layer.kernel,
                                 lambda w: w.transpose(2, 3, 1, 0), layer.name)]
        if layer.use_bias:
            pairs.append(checkpoint.take(f"{path}.bias", layer.bias, layer=layer.name))
        return pairs
    if kind == "Dense":
        return [checkpoint.take(f"{path}.weight", layer.kernel, lambda w: w.T, layer.name),
                checkpoint.take(f"{path}.bias", layer.bias, layer=layer.name)]
    raise ConversionError(f"layer {layer.name} ({kind}) has no timm counterpart")


def convert_timm(state_dict_or_path, model, new_head=False):
    """Copies a timm LambdaResNet checkpoint into `model`, a keras_lambda model of
    the same architecture (e.g. `LambdaResNet26T(classifier_activation=None)`).

    Every tensor of the checkpoint is used exactly once (BatchNorm's
    `num_batches_tracked` counters are read and dropped: inference does not
    use them) and every weight of the model is set; otherwise nothing is
    assigned and a `ConversionError` (a ValueError) names the missing,
    unexpected or mis-shaped tensor. Without the model's top (`include_top=False`),
    or with `new_head` (fine-tuning: the model's `predictions` layer keeps its
    own initial weights), the checkpoint's `head.fc` is left out. Returns the model.

    Example:
    ```python
    from keras_lambda.models import LambdaResNet26T, convert_timm

    # needs: timm's model.safetensors for lambda_resnet26t (a download)
    model = LambdaResNet26T(classifier_activation=None)
    convert_timm("model.safetensors", model)           # every tensor checked, or ConversionError
    model.save("lambda_resnet26t.keras")
    ```
    """
    checkpoint = _Checkpoint(load_state_dict(state_dict_or_path))
    pairs = []
    for layer in model.layers:
        if not layer.weights or (new_head and layer.name == HEAD):
            continue
        path = timm_module(layer.name)
        if path is None:
            raise ConversionError(f"layer {layer.name} ({type(layer).__name__}) has no "
                                  "timm counterpart: is this one of timm's architectures?")
        pairs += _layer_pairs(checkpoint, layer, path)
    has_top = any(layer.name == HEAD for layer in model.layers)
    unused = checkpoint.unused(skip=() if has_top and not new_head else ("head.fc.",))
    if unused:
        raise ConversionError(
            f"{len(unused)} tensor(s) of the timm checkpoint have no place in "
            f"{model.name}: {', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}"
        )
    assigned = {id(variable) for variable, _ in pairs}
    if new_head:
        assigned |= {id(variable) for variable in model.get_layer(HEAD).weights}
    unset = [v.path for v in model.weights if id(v) not in assigned]
    if unset:
        raise ConversionError(f"the checkpoint leaves {len(unset)} weight(s) of "
                              f"{model.name} unset: {', '.join(unset[:5])}")
    for variable, array in pairs:
        variable.assign(array)
    return model
