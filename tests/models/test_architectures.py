"""The shared model contract, applied to each segmentation architecture on small inputs."""
from __future__ import annotations

from lobule_model_contract import ModelContract


class TestDeformableDeepLabV3Plus(ModelContract):
    name, kwargs = "deformable_deeplabv3plus", {"depth": 18, "base_width": 8, "head_channels": 16}


class TestDeformableDeepLabV3PlusResNet50OS8(ModelContract):
    name, kwargs = "deformable_deeplabv3plus", {"depth": 50, "base_width": 4, "head_channels": 8, "output_stride": 8}


class TestDeepLabV3Plus(ModelContract):
    name, kwargs = "deeplabv3plus", {"depth": 18, "base_width": 8, "head_channels": 16}


class TestUNet(ModelContract):
    name, kwargs = "unet", {"base_width": 4, "depth": 3}
