"""Evaluation measures every path of a known input combination and names any other one."""

from trainer.eval import evaluate
from trainer.methods import paths, registry


class OddModel:
    CAPABILITIES = frozenset()

    def translation_paths(self):
        return {
            "odd": paths.Path(
                model=None,
                inputs=(paths.Image("image"), paths.Tensor("mask")),
                outputs=(paths.Image("translated"),),
            )
        }


def test_a_path_of_an_unknown_input_combination_is_named():
    notes = evaluate.unmeasured_paths(OddModel())
    assert len(notes) == 1 and "'odd'" in notes[0] and "image (image), mask (tensor)" in notes[0]


def test_single_image_paths_are_measured(method_config):
    config = method_config("pix2pix")
    model = registry.build(config)
    assert evaluate.unmeasured_paths(model) == []
    assert [d[:2] for d in evaluate.translation_directions(model, config)] == [("a2b", "a2b")]


def test_image_and_noise_paths_are_measured(method_config):
    # Latent exploration's a2b / b2a take an image and eps; its translate draws eps.
    config = method_config("latent_explore")
    model = registry.build(config)
    assert evaluate.unmeasured_paths(model) == []
    directions = [d[:2] for d in evaluate.translation_directions(model, config)]
    assert directions == [("a2b", "a2b"), ("b2a", "b2a")]


def test_a_path_generating_several_domains_at_once_is_noted_not_scored(method_config):
    # CoGAN's `sample` gives (x_a, x_b) from one z: its target is a list of domains.
    config = method_config("cogan")
    model = registry.build(config)
    kinds = {n: p for n, p in model.translation_paths().items()}
    assert isinstance(kinds["sample"].target_domain, (list, tuple))
    domains = evaluate._measured_domains(model, config, [], kinds)
    assert {config.data.domain_a, config.data.domain_b} <= set(domains)
    notes = []
    scored, rows = evaluate._score_generate_paths(
        {"sample": kinds["sample"]}, config, {}, {}, {"class"}, notes, None
    )
    assert scored == {} and rows == []
    assert len(notes) == 1 and "'sample' generates" in notes[0]
