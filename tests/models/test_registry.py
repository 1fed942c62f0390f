"""The model registry: names, the factory, and its error listing valid names."""
from __future__ import annotations

import pytest
from torch import nn

from lobule.core.errors import UnknownModelError
from lobule.models.registry import available_models, create_model, model_class, register_model


def test_architectures_of_this_area_are_registered():
    names = available_models()
    for name in ("deformable_deeplabv3plus", "deeplabv3plus", "unet", "resnet"):
        assert name in names
    assert names == sorted(names)


def test_factory_passes_arguments():
    model = create_model("unet", num_classes=3, base_width=2, depth=2)
    assert model.classifier.out_channels == 3 and model.arguments["depth"] == 2


def test_unknown_name_lists_the_valid_names_in_one_line():
    with pytest.raises(UnknownModelError) as info:
        create_model("deeplab_v3_plus")
    message = str(info.value)
    assert message.startswith("unknown model architecture 'deeplab_v3_plus'; valid names: ")
    assert "deformable_deeplabv3plus" in message and "unet" in message and "\n" not in message


def test_a_name_cannot_be_taken_twice(monkeypatch):
    from lobule.models import registry

    available_models()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # undone after the test

    class First(nn.Module):
        pass

    class Second(nn.Module):
        pass

    register_model("test-only-first")(First)
    register_model("test-only-first")(First)  # the same class again is harmless (re-import)
    assert model_class("test-only-first") is First
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-only-first")(Second)
