"""Tiny Keras models and their exact PyTorch mirrors, with weights copied by hand.

Layouts: Keras conv kernel (kh, kw, in, out) <-> torch (out, in, kh, kw); Dense kernel (in, out)
<-> torch Linear weight (out, in); LayerNormalization gamma/beta <-> LayerNorm weight/bias.
A Keras Flatten reads (h, w, c) in that order, so the torch mirrors flatten channels-last too.
"""

from __future__ import annotations

import numpy as np

from deepvision.backend import require_pytorch, require_tensorflow


def _randomize(model, rng: np.random.Generator, scale: float = 0.5) -> None:
    """Give every Keras weight a seeded random value (LayerNorm gammas near 1)."""
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("gamma"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.standard_normal(shape) * scale / np.sqrt(max(fan_in, 1)) * (3.0 if len(shape) > 1 else 0.3)
        variable.assign(value.astype("float32"))


def copy_conv(keras_layer, torch_conv) -> None:
    torch = require_pytorch()
    with torch.no_grad():
        torch_conv.weight.copy_(torch.from_numpy(np.asarray(keras_layer.kernel).transpose(3, 2, 0, 1).copy()))
        torch_conv.bias.copy_(torch.from_numpy(np.asarray(keras_layer.bias)))


def copy_dense(keras_layer, torch_linear) -> None:
    torch = require_pytorch()
    with torch.no_grad():
        torch_linear.weight.copy_(torch.from_numpy(np.asarray(keras_layer.kernel).T.copy()))
        torch_linear.bias.copy_(torch.from_numpy(np.asarray(keras_layer.bias)))


def copy_norm(keras_layer, torch_norm) -> None:
    torch = require_pytorch()
    with torch.no_grad():
        torch_norm.weight.copy_(torch.from_numpy(np.asarray(keras_layer.gamma)))
        torch_norm.bias.copy_(torch.from_numpy(np.asarray(keras_layer.beta)))


# --------------------------------------------------------------------------------------------
# CNN: conv-relu-pool-conv-relu-flatten-dense (cross-backend test)
# --------------------------------------------------------------------------------------------


def keras_cnn(seed: int = 0, classes: int = 5, input_shape=(16, 12, 3), dict_output: bool = False,
              softmax: bool = False):
    keras = require_tensorflow()
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(classes, activation="softmax" if softmax else None, name="logits")(x)
    model = keras.Model(inputs, {"output": x} if dict_output else x, name="tiny_cnn")
    _randomize(model, np.random.default_rng(seed))
    return model


def torch_cnn_mirror(keras_model, dict_output: bool = False, softmax: bool = False):
    torch = require_pytorch()
    nn = torch.nn
    classes = int(keras_model.get_layer("logits").units)
    height, width, channels = keras_model.inputs[0].shape[1:]

    class TinyCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, 4, 3, padding=1)
            self.relu1 = nn.ReLU()
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
            self.relu2 = nn.ReLU(inplace=True)  # in place on purpose: the capture must survive it
            self.logits = nn.Linear(6 * (height // 2) * (width // 2), classes)
            self.softmax = nn.Softmax(dim=1) if softmax else None

        def forward(self, x):
            x = self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x)))))
            x = self.logits(x.permute(0, 2, 3, 1).flatten(1))
            if self.softmax is not None:
                x = self.softmax(x)
            return {"output": x} if dict_output else x

    model = TinyCNN()
    copy_conv(keras_model.get_layer("conv1"), model.conv1)
    copy_conv(keras_model.get_layer("conv2"), model.conv2)
    copy_dense(keras_model.get_layer("logits"), model.logits)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Region model: the class evidence can only come from one quadrant of the image
# --------------------------------------------------------------------------------------------


def region_mask(height: int, width: int, corner: str) -> np.ndarray:
    """A (height, width) 0/1 mask that keeps rows < 3/8 H and cols < 1/3 W of ``corner``.

    After the model's 2x pooling and 3x3 conv, everything it lets through stays inside the
    quadrant of that corner.
    """
    mask = np.zeros((height, width), "float32")
    rows, cols = (3 * height) // 8, width // 3
    if corner == "top_left":
        mask[:rows, :cols] = 1.0
    elif corner == "bottom_right":
        mask[height - rows:, width - cols:] = 1.0
    else:
        raise ValueError(corner)
    return mask


def keras_region_model(mask: np.ndarray, seed: int = 1):
    keras = require_tensorflow()
    layers = keras.layers

    class FixedMask(layers.Layer):
        def __init__(self, mask, **kwargs):
            super().__init__(**kwargs)
            self.mask = np.asarray(mask, "float32")[None, :, :, None]

        def call(self, x):
            return x * self.mask

    height, width = mask.shape
    inputs = keras.Input((height, width, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = FixedMask(mask, name="mask")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, x, name="region_model")
    _randomize(model, np.random.default_rng(seed))
    conv2 = model.get_layer("conv2")
    conv2.bias.assign(np.zeros(conv2.bias.shape, "float32"))  # outside the region: exactly zero
    return model


def torch_region_mirror(keras_model, mask: np.ndarray):
    torch = require_pytorch()
    nn = torch.nn

    class RegionModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
            self.relu = nn.ReLU()
            self.logits = nn.Linear(6, 2)
            self.register_buffer("mask", torch.from_numpy(mask)[None, None])

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)) * self.mask)
            x = self.relu(self.conv2(x))
            return self.logits(x.mean(dim=(2, 3)))

    model = RegionModel()
    copy_conv(keras_model.get_layer("conv1"), model.conv1)
    copy_conv(keras_model.get_layer("conv2"), model.conv2)
    copy_dense(keras_model.get_layer("logits"), model.logits)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Colour model: class 0 = red evidence, class 1 = green evidence
# --------------------------------------------------------------------------------------------


def keras_colour_model():
    keras = require_tensorflow()
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(2, 1, activation="relu", name="detect")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, x, name="colour_model")
    kernel = np.zeros((1, 1, 3, 2), "float32")
    kernel[0, 0, 0, 0] = kernel[0, 0, 1, 1] = 1.0
    model.get_layer("detect").set_weights([kernel, np.zeros(2, "float32")])
    model.get_layer("logits").set_weights([np.eye(2, dtype="float32"), np.zeros(2, "float32")])
    return model


def torch_colour_mirror(keras_model):
    torch = require_pytorch()
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    copy_conv(keras_model.get_layer("detect"), model[0])
    copy_dense(keras_model.get_layer("logits"), model[4])
    return model.eval()


def colour_image(channels_last: bool = True) -> np.ndarray:
    """A black (16, 16) image with a red square at rows/cols 2..5 and a green one at rows 10..13, cols 9..13."""
    image = np.zeros((16, 16, 3), "float32")
    image[2:6, 2:6, 0] = 1.0
    image[10:14, 9:14, 1] = 1.0
    return image if channels_last else image.transpose(2, 0, 1)


# --------------------------------------------------------------------------------------------
# Reference model: conv (valid) + relu -> flatten -> dense, small enough for numpy by hand
# --------------------------------------------------------------------------------------------


def keras_reference_model(seed: int = 2):
    keras = require_tensorflow()
    layers = keras.layers
    inputs = keras.Input((6, 5, 2))
    x = layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(4, name="logits")(x)
    model = keras.Model(inputs, x, name="reference_model")
    _randomize(model, np.random.default_rng(seed))
    return model


def torch_reference_mirror(keras_model):
    torch = require_pytorch()
    nn = torch.nn

    class ReferenceModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)
            self.relu = nn.ReLU()
            self.logits = nn.Linear(4 * 3 * 3, 4)

        def forward(self, x):
            return self.logits(self.relu(self.conv(x)).permute(0, 2, 3, 1).flatten(1))

    model = ReferenceModel()
    copy_conv(keras_model.get_layer("conv"), model.conv)
    copy_dense(keras_model.get_layer("logits"), model.logits)
    return model.eval()


# --------------------------------------------------------------------------------------------
# ViT-like token model: patch conv -> [class token; patches] + positions -> 2 blocks -> norm -> head
# --------------------------------------------------------------------------------------------

DIM = 8
PATCH = 4


def keras_vit(seed: int = 3, input_shape=(8, 12, 3), classes: int = 4, blocks: int = 2):
    keras = require_tensorflow()
    layers, ops = keras.layers, keras.ops
    grid_h, grid_w = input_shape[0] // PATCH, input_shape[1] // PATCH
    tokens = grid_h * grid_w + 1

    class ClassTokenAndPosition(layers.Layer):
        def build(self, input_shape):
            self.cls = self.add_weight(shape=(1, 1, DIM), name="cls")
            self.pos = self.add_weight(shape=(1, tokens, DIM), name="pos")

        def call(self, x):
            cls = ops.broadcast_to(self.cls, (ops.shape(x)[0], 1, DIM))
            return ops.concatenate([cls, x], axis=1) + self.pos

    class Block(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.ln1 = layers.LayerNormalization(epsilon=1e-6)
            self.q, self.k, self.v, self.o = (layers.Dense(DIM) for _ in range(4))
            self.ln2 = layers.LayerNormalization(epsilon=1e-6)
            self.fc1, self.fc2 = layers.Dense(2 * DIM, activation="relu"), layers.Dense(DIM)

        def call(self, x):
            h = self.ln1(x)
            scores = ops.matmul(self.q(h), ops.transpose(self.k(h), (0, 2, 1))) / np.sqrt(DIM)
            x = x + self.o(ops.matmul(ops.softmax(scores, axis=-1), self.v(h)))
            return x + self.fc2(self.fc1(self.ln2(x)))

    class ClassToken(layers.Layer):
        def call(self, x):
            return x[:, 0]

    inputs = keras.Input(input_shape)
    x = layers.Conv2D(DIM, PATCH, strides=PATCH, name="patch")(inputs)
    x = layers.Reshape((grid_h * grid_w, DIM))(x)
    x = ClassTokenAndPosition(name="tokens")(x)
    for index in range(blocks):
        x = Block(name=f"block{index}")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    x = layers.Dense(classes, name="head")(ClassToken()(x))
    model = keras.Model(inputs, x, name="tiny_vit")
    _randomize(model, np.random.default_rng(seed))
    return model


def torch_vit_mirror(keras_model):
    torch = require_pytorch()
    nn = torch.nn
    blocks = sum(1 for layer in keras_model.layers if layer.name.startswith("block"))
    tokens_layer = keras_model.get_layer("tokens")
    classes = int(keras_model.get_layer("head").units)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(DIM, eps=1e-6)
            self.q, self.k, self.v, self.o = (nn.Linear(DIM, DIM) for _ in range(4))
            self.ln2 = nn.LayerNorm(DIM, eps=1e-6)
            self.fc1, self.fc2 = nn.Linear(DIM, 2 * DIM), nn.Linear(2 * DIM, DIM)

        def forward(self, x):
            h = self.ln1(x)
            scores = self.q(h) @ self.k(h).transpose(1, 2) / np.sqrt(DIM)
            x = x + self.o(scores.softmax(dim=-1) @ self.v(h))
            return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))

    class TinyViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, DIM, PATCH, stride=PATCH)
            self.cls = nn.Parameter(torch.from_numpy(np.asarray(tokens_layer.cls)))
            self.pos = nn.Parameter(torch.from_numpy(np.asarray(tokens_layer.pos)))
            self.blocks = nn.ModuleList(Block() for _ in range(blocks))
            self.norm = nn.LayerNorm(DIM, eps=1e-6)
            self.head = nn.Linear(DIM, classes)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)  # (N, grid_h * grid_w, D), row-major grid
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x)[:, 0])

    model = TinyViT()
    copy_conv(keras_model.get_layer("patch"), model.patch)
    for index, block in enumerate(model.blocks):
        source = keras_model.get_layer(f"block{index}")
        for name in ("q", "k", "v", "o", "fc1", "fc2"):
            copy_dense(getattr(source, name), getattr(block, name))
        copy_norm(source.ln1, block.ln1)
        copy_norm(source.ln2, block.ln2)
    copy_norm(keras_model.get_layer("norm"), model.norm)
    copy_dense(keras_model.get_layer("head"), model.head)
    return model.eval()
