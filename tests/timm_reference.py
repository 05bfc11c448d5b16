"""What timm itself computes, for tests/models/test_timm_convert.py.

Run in its own process (`python tests/timm_reference.py FOLDER`): torchvision,
which timm imports, crashes a process that has loaded TensorFlow, so the tests
never import timm themselves. Writes into FOLDER, for each timm LambdaResNet:

- NAME.safetensors and NAME.pth: its state dict with random weights, where every
  batch norm's statistics and affine parameters, every bias and every relative
  table are randomised too, so that every tensor matters;
- NAME.npz: `images` (a random batch, channels last), `c2` .. `c5` (every stage's
  output, channels last), `logits`, `params` (timm's parameter count);
- NAME.preprocessed.npy: timm's evaluation transform of `image.npy`;

and classes.json: timm's ImageNet class ids and descriptions, in index order.
"""

import json
import pathlib
import sys

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from timm.data import ImageNetInfo, create_transform, resolve_data_config

MODELS = ("lambda_resnet26t", "lambda_resnet50ts", "lambda_resnet26rpt_256")


def randomised(name, seed=0):
    """timm's model with every tensor random: weights from timm's initialisation,
    biases and relative tables drawn, batch-norm affine parameters drawn around
    1 and 0, batch-norm statistics measured on a random batch.
    Measured statistics keep every layer's output near unit scale, so every
    block's residual branch (and every tensor in it) moves the output; a floor
    on the variances keeps float32 rounding from being amplified."""
    torch.manual_seed(seed)
    model = timm.create_model(name)
    generator = torch.Generator().manual_seed(seed + 1)

    def random(shape, scale, offset=0.0, uniform=False):
        draw = torch.rand if uniform else torch.randn
        return draw(shape, generator=generator) * scale + offset

    norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith(("conv_lambda.bias", "pos_emb", "fc.bias")):
                parameter.copy_(random(parameter.shape, 0.5))
        for norm in norms:
            norm.weight.copy_(random(norm.weight.shape, 1.0, 0.5, True))  # [0.5, 1.5)
            norm.bias.copy_(random(norm.bias.shape, 0.2))
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: the statistics of the batch
        model.train()
        model(random((8, 3, 256, 256), 1.0))
        for norm in norms:
            norm.momentum = 0.1
            # Channels that barely vary (dead ReLUs) would amplify rounding 300-fold.
            norm.running_var.clamp_(min=0.1 * float(norm.running_var.mean()))
    return model.eval()


def outputs(model, images):
    """Every stage's output and the logits, channels last."""
    with torch.no_grad():
        inputs = torch.from_numpy(images.transpose(0, 3, 1, 2))
        x = model.stem(inputs)
        stages = {}
        for stage_name, stage in zip(("c2", "c3", "c4", "c5"), model.stages):
            x = stage(x)
            stages[stage_name] = x.numpy().transpose(0, 2, 3, 1)
        logits = model(inputs).numpy()
    return stages, logits


def main(folder):
    folder = pathlib.Path(folder)
    image = np.load(folder / "image.npy")
    for name in MODELS:
        model = randomised(name)
        state = {key: value.contiguous() for key, value in model.state_dict().items()}
        save_file(state, str(folder / f"{name}.safetensors"))
        torch.save({"state_dict": state}, folder / f"{name}.pth")  # a wrapped checkpoint
        images = np.random.default_rng(0).normal(size=(2, 256, 256, 3)).astype("float32")
        stages, logits = outputs(model, images)
        params = sum(parameter.numel() for parameter in model.parameters())
        np.savez(folder / f"{name}.npz", images=images, logits=logits, params=params, **stages)
        transform = create_transform(**resolve_data_config(model=model))
        preprocessed = transform(Image.fromarray(image)).numpy().transpose(1, 2, 0)
        np.save(folder / f"{name}.preprocessed.npy", preprocessed)
    info = ImageNetInfo()
    classes = [[info.index_to_label_name(i), info.index_to_description(i)] for i in range(1000)]
    (folder / "classes.json").write_text(json.dumps(classes))


if __name__ == "__main__":
    main(sys.argv[1])
