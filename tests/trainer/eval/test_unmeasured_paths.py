"""Evaluation measures every path of a known input combination and names any other one."""

import dataclasses

import numpy as np
import pytest

from trainer.eval import conditional, evaluate
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


def test_a_pair_path_without_test_data_is_noted_not_scored(method_config):
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


class _BrightnessJudge:
    """Reads the digit as the image's mean brightness in tenths (a stand-in classifier)."""

    def predict(self, images):
        x = np.asarray(images, np.float32)
        x = x / 127.5 - 1.0 if np.asarray(images).dtype == np.uint8 else x
        return np.clip(((x.mean(axis=(1, 2, 3)) + 1.0) * 5.0).astype(int), 0, 9)


def test_a_pair_path_is_scored_for_correspondence_histogram_and_diversity(method_config):
    """CoGAN's `sample` with each domain's test split and judge: one entry with the pair's
    correspondence and each domain's class histogram, gap from uniform and diversity."""
    config = method_config("cogan")
    config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, eval_examples=64))
    model = registry.build(config)
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 10
    x_test = {
        d: (rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8), labels)
        for d in (config.data.domain_a, config.data.domain_b)
    }
    notes, judges = [], {}
    paths = {"sample": model.translation_paths()["sample"]}
    scored, rows = evaluate._score_generate_paths(
        paths, config, x_test, judges, {"class", "samples"}, notes, lambda *a: _BrightnessJudge()
    )
    e = scored["sample"]
    assert notes == [] and e["kind"] == "joint_generate" and e["examples"] == 64
    assert set(e["per_domain"]) == set(x_test) and 0.0 <= e["correspondence"] <= 1.0
    for v in e["per_domain"].values():
        assert len(v["class_histogram"]) == 10 and abs(sum(v["class_histogram"]) - 1) < 1e-6
        assert v["uniform_gap"] == pytest.approx(max(abs(p - 0.1) for p in v["class_histogram"]))
        assert v["diversity"] > 0
    assert [name for name, _ in rows] == [f"sample {d}" for d in x_test]
    md = "\n".join(evaluate._joint_tables(scored))
    assert "| sample | 64 |" in md and "correspondence" in md


def test_diversity_of_a_collapsed_and_a_spread_set():
    """The mean pairwise distance: 0 for one sample repeated, large for uniform noise."""
    from trainer.eval import conditional

    same = np.full((30, 4, 4, 3), 0.3, np.float32)
    spread = np.random.default_rng(1).uniform(-1, 1, (30, 4, 4, 3)).astype(np.float32)
    assert conditional.mean_pairwise_distance(same) == pytest.approx(0.0, abs=1e-6)
    assert conditional.mean_pairwise_distance(spread) > 1.0


def test_the_default_groups_reach_a_pair_path(method_config):
    """Evaluation's default groups keep `class` for CoGAN (its `sample` path is what the class
    histogram and correspondence measure), and asking for it by name is accepted."""
    config = method_config("cogan")
    model = registry.build(config)
    kinds = {
        conditional.path_kind(p)
        for p in model.translation_paths().values()
        if conditional.path_kind(p)
    }
    directions = evaluate.translation_directions(model, config)
    for metrics in (None, ["class"]):
        asked = set(evaluate.METRIC_GROUPS if metrics is None else metrics)
        kept = evaluate._check_applicable(asked, metrics, model, config, kinds, directions)
        assert "class" in kept
    unit = method_config("unit")
    unit_model = registry.build(unit)
    unit_kinds = {conditional.path_kind(p) for p in unit_model.translation_paths().values()}
    with pytest.raises(ValueError, match="--metrics=class"):
        evaluate._check_applicable(
            {"class"}, ["class"], unit_model, unit, unit_kinds,
            evaluate.translation_directions(unit_model, unit),
        )  # fmt: skip
