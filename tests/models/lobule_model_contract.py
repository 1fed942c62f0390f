"""The contract every segmentation architecture keeps (after smp's tests/models/base.py).

Each architecture's test file reuses it with a one-line subclass naming the registry name and
small constructor arguments::

    class TestUNet(ModelContract): name, kwargs = "unet", {"base_width": 4, "depth": 3}
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

import torch

from lobule.models.registry import available_models, create_model


class ModelContract:
    name: ClassVar[str]
    kwargs: ClassVar[dict[str, Any]]
    num_classes: ClassVar[int] = 7

    def build(self) -> torch.nn.Module:
        return create_model(self.name, num_classes=self.num_classes, **self.kwargs)

    def test_is_registered(self):
        assert self.name in available_models()

    def test_forward_gives_logits_at_input_size(self):
        model = self.build().eval()
        with torch.no_grad():
            for shape in [(1, 3, 64, 64), (2, 3, 48, 80), (1, 3, 45, 67)]:
                out = model(torch.randn(*shape))
                assert tuple(out.shape) == (shape[0], self.num_classes, *shape[2:])
                assert out.dtype == torch.float32 and torch.isfinite(out).all()

    def test_backward_reaches_every_parameter(self):
        model = self.build().train()
        x = torch.randn(2, 3, 64, 64)
        target = torch.randint(0, self.num_classes, (2, 64, 64))
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        assert torch.isfinite(loss)
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert missing == []

    def test_training_step_with_batch_of_one(self):
        model = self.build().train()
        out = model(torch.randn(1, 3, 64, 64))
        out.mean().backward()

    def test_eval_is_deterministic_and_batch_independent(self):
        model = self.build().eval()
        x = torch.randn(3, 3, 64, 64)
        with torch.no_grad():
            first, second = model(x), model(x)
            alone = model(x[1:2])
        assert torch.equal(first, second)
        torch.testing.assert_close(alone, first[1:2], rtol=1e-4, atol=1e-4)

    def test_arguments_round_trip_through_json(self):
        model = self.build()
        arguments = json.loads(json.dumps(model.arguments))
        assert arguments["num_classes"] == self.num_classes
        clone = create_model(self.name, **arguments)
        clone.load_state_dict(model.state_dict())
        assert clone.arguments == model.arguments
