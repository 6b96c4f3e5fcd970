"""Evaluation measures every path of a known input combination and names any other one."""

from trainer.eval import evaluate
from trainer.methods import paths, registry


class OddModel:
    CAPABILITIES = frozenset()

    def translation_paths(self):
        return {
            "odd": paths.Path(
                model=None,
                inputs=(paths.Image("image"), paths.Noise("z")),
                outputs=(paths.Image("translated"),),
            )
        }


def test_a_path_of_an_unknown_input_combination_is_named():
    notes = evaluate.unmeasured_paths(OddModel())
    assert len(notes) == 1 and "'odd'" in notes[0] and "image (image), z (noise)" in notes[0]


def test_single_image_paths_are_measured(method_config):
    config = method_config("pix2pix")
    model = registry.build(config)
    assert evaluate.unmeasured_paths(model) == []
    assert [d[:2] for d in evaluate.translation_directions(model, config)] == [("a2b", "a2b")]
