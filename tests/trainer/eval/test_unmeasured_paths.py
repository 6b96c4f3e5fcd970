"""Evaluation measures single-image paths and names the ones it cannot measure yet."""

import pytest

from trainer.eval import evaluate
from trainer.methods import registry


@pytest.mark.parametrize(
    "method, path, inputs",
    [("gan", "generate", "z (noise)"), ("stargan", "translate", "target_domain (onehot)")],
)
def test_paths_with_noise_or_a_condition_are_skipped_with_a_note(
    method, path, inputs, method_config
):
    model = registry.build(method_config(method))
    assert evaluate.translation_directions(model, model.config) == []
    notes = evaluate.unmeasured_paths(model)
    assert len(notes) == 1 and repr(path) in notes[0] and inputs in notes[0], notes


def test_single_image_paths_are_measured(method_config):
    config = method_config("pix2pix")
    model = registry.build(config)
    assert evaluate.unmeasured_paths(model) == []
    assert [d[:2] for d in evaluate.translation_directions(model, config)] == [("a2b", "a2b")]
