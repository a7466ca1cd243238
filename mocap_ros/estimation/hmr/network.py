"""HMR body regressor, state-dict compatible with FrankMocap's/SPIN's ``hmr.py``.

ResNet-50 (Bottleneck [3, 4, 6, 3]) written in plain torch, so that no torchvision is
needed and no ImageNet weights are fetched: every weight comes from the user's checkpoint.
Layer names match SPIN's so that FrankMocap's body checkpoint loads with strict key
matching (see ``checkpoint.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mocap_ros.geometry.torch_rotations import rot6d_to_rotmat

NPOSE = 24 * 6
NSHAPE = 10
NCAM = 3
FEATURES = 2048
IMG_RES = 224


class Bottleneck(nn.Module):
    """ResNet v1.5-free bottleneck as in torchvision/SPIN (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _make_layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride,
                      bias=False),
            nn.BatchNorm2d(planes * Bottleneck.expansion),
        )
    layers = [Bottleneck(inplanes, planes, stride, downsample)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class HMR(nn.Module):
    """ResNet-50 features + iterative error feedback regressor of SMPL pose, shape and camera.

    ``forward`` returns (rotmat (B, 24, 3, 3) float32, betas (B, 10), cam (B, 3)) where cam is
    HMR's weak-perspective (s, tx, ty) in the normalised crop ([-1, 1] spans the 224 crop).
    """

    def __init__(self, init_pose: np.ndarray | None = None, init_shape: np.ndarray | None = None,
                 init_cam: np.ndarray | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _make_layer(64, 64, 3, 1)
        self.layer2 = _make_layer(256, 128, 4, 2)
        self.layer3 = _make_layer(512, 256, 6, 2)
        self.layer4 = _make_layer(1024, 512, 3, 2)
        # 2048 + 144 + 10 + 3 = 2205 inputs, as FrankMocap's fc1.
        self.fc1 = nn.Linear(FEATURES + NPOSE + NSHAPE + NCAM, 1024)
        self.drop1 = nn.Dropout()
        self.fc2 = nn.Linear(1024, 1024)
        self.drop2 = nn.Dropout()
        self.decpose = nn.Linear(1024, NPOSE)
        self.decshape = nn.Linear(1024, NSHAPE)
        self.deccam = nn.Linear(1024, NCAM)

        def buf(v: np.ndarray | None, n: int) -> torch.Tensor:
            t = torch.zeros(1, n) if v is None else torch.as_tensor(np.asarray(v, np.float32))
            return t.reshape(1, n).float()

        self.register_buffer("init_pose", buf(init_pose, NPOSE))
        self.register_buffer("init_shape", buf(init_shape, NSHAPE))
        self.register_buffer("init_cam", buf(init_cam, NCAM))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        # FrankMocap uses AvgPool2d(7), which equals a global mean at 224x224 input.
        return x.mean(dim=(2, 3))

    def regress(self, xf: torch.Tensor, n_iter: int) -> tuple[torch.Tensor, ...]:
        b = xf.shape[0]
        pose = self.init_pose.expand(b, -1).to(xf.dtype)
        shape = self.init_shape.expand(b, -1).to(xf.dtype)
        cam = self.init_cam.expand(b, -1).to(xf.dtype)
        for _ in range(n_iter):
            xc = torch.cat((xf, pose, shape, cam), dim=1)
            xc = self.drop2(self.fc2(self.drop1(self.fc1(xc))))
            pose = self.decpose(xc) + pose
            shape = self.decshape(xc) + shape
            cam = self.deccam(xc) + cam
        return pose, shape, cam

    def forward(self, x: torch.Tensor, n_iter: int = 3) -> tuple[torch.Tensor, ...]:
        if n_iter < 1:
            raise ValueError(f"n_iter must be >= 1, got {n_iter}")
        pose6d, shape, cam = self.regress(self.features(x), n_iter)
        # Outside autocast: the 6D->R normalisation must stay float32 (see rotations.py).
        with torch.autocast(device_type=x.device.type, enabled=False):
            rotmat = rot6d_to_rotmat(pose6d.float().reshape(-1, 24, 6))
        return rotmat, shape.float(), cam.float()
