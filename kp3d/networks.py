"""The networks of the unsupervised model: backbones, detector S, decoders (Table S1), mask decoder phi.

Small functional blocks; :mod:`kp3d.model` wires them together. Every module takes and returns
channels-first float tensors; shapes are written next to each argument.

Example:
    >>> import torch
    >>> dec = Decoder(latent_dim=32, out_channels=4, patch_size=32, channels=(32, 16, 8, 8), convs_per_block=1)
    >>> dec(torch.zeros(2, 32)).shape
    torch.Size([2, 4, 32, 32])
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def _check(x: torch.Tensor, name: str, ndim: int, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != ndim:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a tensor of shape {what}, got {got}")


class Backbone(nn.Module):
    """Image -> pooled feature vector.

    ``name``: "resnet18" / "resnet34" / "resnet50" (torchvision, ``weights=None``: the method is
    unsupervised and nothing is downloaded) or "tiny" (4 strided conv3x3+ReLU, 16->128 channels; for
    tests and smoke runs). ``pool``: "avg" = global average pool of the last feature map (a standard
    ResNet), "flatten" = the map flattened, keeping where things are (needs ``input_size``).

    Args (forward):
        x: (B, 3, H, W) float, any H, W >= 16.
    Returns:
        (B, self.out_dim) float.
    """

    def __init__(self, name: str, pool: str = "avg", input_size: int | None = None):
        super().__init__()
        self.name, self.pool = name, pool
        if pool not in ("avg", "flatten"):
            raise ValueError(f"pool={pool!r}: expected 'avg' or 'flatten'")
        if pool == "flatten" and not input_size:
            raise ValueError("pool='flatten' needs input_size (the side of the square input) to size the output")
        if name == "tiny":
            chans = [3, 16, 32, 64, 128]
            layers: list[nn.Module] = []
            for cin, cout in zip(chans[:-1], chans[1:]):
                layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            self.body = nn.Sequential(*layers)
            stride, width = 16, chans[-1]
        elif name in ("resnet18", "resnet34", "resnet50"):
            net = getattr(torchvision.models, name)(weights=None)
            stride, width = 32, net.fc.in_features
            net.fc = nn.Identity()  # drop the ImageNet classifier
            net.avgpool = nn.Identity()  # pooled (or not) in forward, see ``pool``
            self.body = net
        else:
            raise ValueError(f"backbone {name!r}: expected 'tiny', 'resnet18', 'resnet34' or 'resnet50'")
        self.width = width
        if pool == "avg":
            self.out_dim = width
        else:
            side = -(-int(input_size) // stride)  # ceil: stride-2 convs with padding round up
            self.out_dim = width * side * side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, "x", 4, "(B, 3, H, W)")
        if self.name == "tiny":
            y = self.body(x)
        else:  # torchvision's ResNet.forward flattens after avgpool; run the trunk to keep the map
            b = self.body
            y = b.layer4(b.layer3(b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x))))))))
        if self.pool == "avg":
            return y.mean(dim=(2, 3))
        y = y.flatten(1)
        if y.shape[1] != self.out_dim:
            raise ValueError(f"x: input of {tuple(x.shape[-2:])} px gives {y.shape[1]} flattened features, the "
                             f"backbone was built for {self.out_dim}: feed the input size it was built with")
        return y


class Detector(nn.Module):
    """Spatial-transformer detector S: image -> box (s_x, s_y, u_x, u_y) in normalised [-1, 1] units.

    The backbone sees the image downsampled by ``downsample`` (4x in the paper); ``pool`` is its
    pooling ("flatten" needs ``image_size``, the full image side). Scales are squashed
    into [min_scale, 1] with a sigmoid and centres into (-1, 1) with tanh, so every box lies inside
    the frame's scale range. The head starts at a centred box of side ``init_scale`` (small weights,
    bias set to the inverse squash): training starts from a sensible crop instead of a random one.

    Args (forward):
        images: (B, 3, H, W) float in [0, 1].
    Returns:
        box: (B, 4) float, (s_x, s_y, u_x, u_y).
    """

    def __init__(self, backbone: str = "resnet18", downsample: int = 4, init_scale: float = 0.75, min_scale: float = 0.1,
                 pool: str = "avg", image_size: int | None = None):
        super().__init__()
        if not (min_scale < init_scale <= 1.0):
            raise ValueError(f"init_scale={init_scale}: expected min_scale ({min_scale}) < init_scale <= 1")
        self.downsample = int(downsample)
        self.min_scale = float(min_scale)
        input_size = -(-int(image_size) // self.downsample) if image_size else None
        self.backbone = Backbone(backbone, pool, input_size)
        self.head = nn.Linear(self.backbone.out_dim, 4)
        nn.init.normal_(self.head.weight, std=1e-3)
        p = (min(init_scale, 0.999) - min_scale) / (1.0 - min_scale)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([math.log(p / (1 - p))] * 2 + [0.0, 0.0]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check(images, "images", 4, "(B, 3, H, W)")
        x = images
        if self.downsample > 1:
            x = F.interpolate(x, scale_factor=1.0 / self.downsample, mode="bilinear", align_corners=False, antialias=True)
        raw = self.head(self.backbone(x)).float()
        scale = self.min_scale + (1.0 - self.min_scale) * torch.sigmoid(raw[:, :2])
        centre = torch.tanh(raw[:, 2:])
        return torch.cat([scale, centre], dim=1)


class Encoder(nn.Module):
    """Encoder E: patch -> latent Xi (ResNet50 in the paper; its features, average-pooled or
    flattened per ``pool``, then a linear map to ``latent_dim`` = 729 on H36M, S.1.1).

    Args (forward):
        patch: (B, 3, P, P) float.
    Returns:
        (B, latent_dim) float.
    """

    def __init__(self, backbone: str = "resnet50", latent_dim: int = 729, pool: str = "avg", patch_size: int | None = None):
        super().__init__()
        self.backbone = Backbone(backbone, pool, patch_size)
        self.proj = nn.Linear(self.backbone.out_dim, latent_dim)

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        return self.proj(self.backbone(patch))


class Decoder(nn.Module):
    """Table S1 decoder: linear + dropout + ReLU -> C0 x (P/8)^2 -> 3 x (bilinear 2x, k x (conv3x3,
    ReLU)) -> conv1x1 to ``out_channels``. Used twice with distinct weights: the image decoder D
    (4 channels: RGB + mask logits) and the keypoint head psi (N channels).

    Args (forward):
        latent: (B, latent_dim) float.
    Returns:
        (B, out_channels, P, P) float, raw (no activation).
    """

    def __init__(self, latent_dim: int, out_channels: int, patch_size: int = 128,
                 channels: tuple = (256, 128, 64, 32), convs_per_block: int = 3, dropout: float = 0.1):
        super().__init__()
        if patch_size % 8:
            raise ValueError(f"patch_size={patch_size}: must be a multiple of 8")
        self.base = patch_size // 8
        self.c0 = channels[0]
        self.fc = nn.Sequential(nn.Linear(latent_dim, channels[0] * self.base ** 2), nn.Dropout(dropout), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        for cin, cout in zip(channels[:-1], channels[1:]):
            blocks.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            for k in range(convs_per_block):
                blocks += [nn.Conv2d(cin if k == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(channels[-1], out_channels, 1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        _check(latent, "latent", 2, "(B, latent_dim)")
        x = self.fc(latent).view(latent.shape[0], self.c0, self.base, self.base)
        return self.out(self.blocks(x))


class MaskDecoder(nn.Module):
    """Mask decoder phi (Eq. 9, S.1.1): N Gaussian heatmaps -> 3 conv5x5 (pad 2): N -> 1 -> 1 -> 1
    (``hidden`` = 1, the paper), or N -> hidden -> hidden -> 1.

    The paper does not name the non-linearities: LeakyReLU(0.2) between the convolutions (a
    one-channel ReLU can die and cut every keypoint gradient) and no activation at the end (the
    target mask lies in [0, 1] and the squared error keeps the output there). ``last_init_std`` > 0
    starts the last convolution near zero (an empty mask), see ``Config.mask_decoder_last_init_std``.

    Args (forward):
        heatmaps: (B, N, P, P) float, unnormalised Gaussians in [0, 1].
    Returns:
        (B, 1, P, P) float.
    """

    def __init__(self, n_keypoints: int, last_init_std: float = 0.0, hidden: int = 1):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden={hidden}: the mask decoder needs at least 1 channel between its convolutions")
        self.n_keypoints = n_keypoints
        self.conv1 = nn.Conv2d(n_keypoints, hidden, 5, padding=2)
        self.conv2 = nn.Conv2d(hidden, hidden, 5, padding=2)
        self.conv3 = nn.Conv2d(hidden, 1, 5, padding=2)
        if last_init_std > 0:
            nn.init.normal_(self.conv3.weight, std=last_init_std)
            nn.init.zeros_(self.conv3.bias)

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        _check(heatmaps, "heatmaps", 4, f"(B, N={self.n_keypoints}, P, P)")
        if heatmaps.shape[1] != self.n_keypoints:
            raise ValueError(f"heatmaps: expected N={self.n_keypoints} channels, got {heatmaps.shape[1]}")
        x = F.leaky_relu(self.conv1(heatmaps), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.conv3(x)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class PatchKeypointHead(nn.Module):
    """A small fully-convolutional keypoint head psi that reads the patch itself (a U-Net with two
    2x down- and up-sampling stages and skip connections), used when ``Config.keypoint_input`` is
    not "latent".

    Why it exists: the paper's head decodes the N maps from the global latent Xi (Table S1), so its
    keypoints can say no more about where the limbs are than Xi does; a head that sees the patch
    can put a map's peak where a body part is. Widths (16, 32, 64); about 120K parameters at N = 16.

    Args (forward):
        x: (B, C_in, P, P) float, the patch's input channels (a mask: C_in = 1; RGB: 3); P % 4 == 0.
    Returns:
        (maps, features): maps (B, N, P, P) raw logits C_n of Eq. 4, features (B, 4 * 64) the
        bottleneck average-pooled to 2 x 2 (what this head "knows", probed as the model's latent).

    Example:
        >>> head = PatchKeypointHead(1, 16)
        >>> maps, feats = head(torch.zeros(2, 1, 64, 64))
        >>> tuple(maps.shape), tuple(feats.shape)
        ((2, 16, 64, 64), (2, 256))
    """

    widths = (16, 32, 64)

    def __init__(self, in_channels: int, n_keypoints: int):
        super().__init__()
        w1, w2, w3 = self.widths
        self.in_channels = in_channels
        self.enc1 = _double_conv(in_channels, w1)
        self.enc2 = _double_conv(w1, w2)
        self.enc3 = _double_conv(w2, w3)
        self.dec2 = _double_conv(w3 + w2, w2)
        self.dec1 = _double_conv(w2 + w1, w1)
        self.out = nn.Conv2d(w1, n_keypoints, 1)
        self.feature_dim = 4 * w3

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check(x, "x", 4, f"(B, {self.in_channels}, P, P)")
        if x.shape[1] != self.in_channels or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"x: expected (B, {self.in_channels}, P, P) with P a multiple of 4, got {tuple(x.shape)}")
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(e3, scale_factor=2, mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False), e1], 1))
        return self.out(d1), F.adaptive_avg_pool2d(e3, 2).flatten(1)
