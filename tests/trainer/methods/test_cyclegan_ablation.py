"""CycleGAN's loss ablations (--ablation): each generator objective has exactly its terms."""

import numpy as np
import pytest

from trainer import losses
from trainer.methods import build
from trainer.methods.cyclegan import ABLATIONS

# The generator terms of each ablation, and which cycle directions its "cycle" term sums.
EXPECTED = {
    "none": ({"adv_ab", "adv_ba", "cycle", "identity"}, ("forward", "backward")),
    "gan_only": ({"adv_ab", "adv_ba"}, ()),
    "cycle_only": ({"cycle"}, ("forward", "backward")),
    "forward": ({"adv_ab", "adv_ba", "cycle"}, ("forward",)),
    "backward": ({"adv_ab", "adv_ba", "cycle"}, ("backward",)),
}


def test_every_ablation_is_checked():
    assert set(EXPECTED) == set(ABLATIONS)


@pytest.fixture(scope="module")
def batch(random_batch):
    return random_batch()


@pytest.mark.parametrize("ablation", sorted(EXPECTED))
def test_generator_objective_has_exactly_its_terms(ablation, method_config, batch):
    model = build(method_config("cyclegan", ablation=ablation, lambda_cycle=10.0))
    x_a, x_b = batch["x_a"], batch["x_b"]
    terms, x_ab, x_ba = model.generator_terms(x_a, x_b)
    names, directions = EXPECTED[ablation]
    assert set(terms) == names
    if not directions:
        return
    cycles = {
        "forward": losses.l1(model.gen_ba(x_ab, training=True), x_a),
        "backward": losses.l1(model.gen_ab(x_ba, training=True), x_b),
    }
    weight, cycle = terms["cycle"]
    assert weight == 10.0
    np.testing.assert_allclose(cycle, sum(cycles[d] for d in directions), rtol=1e-5)


@pytest.mark.parametrize("ablation", ["gan_only", "cycle_only"])
def test_an_ablation_trains_every_player(ablation, method_config, batch):
    model = build(method_config("cyclegan", ablation=ablation))
    model.make_optimizers(total_steps=10)
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.train_step(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())
    unchanged = [
        v.path
        for v, old in zip(model.trainable_variables, before, strict=True)
        if np.array_equal(v.numpy(), old)
    ]
    assert not unchanged
    logged = sum(float(logs[k]) * w for k, w in (("cycle", 10.0),) if k in logs)
    logged += sum(float(logs[k]) for k in ("adv_ab", "adv_ba") if k in logs)
    np.testing.assert_allclose(float(logs["gen_loss"]), logged, rtol=1e-5)


def test_unknown_ablation_is_refused_naming_the_choices(method_config):
    with pytest.raises(ValueError, match="--ablation='gan'.*gan_only, cycle_only"):
        build(method_config("cyclegan", ablation="gan"))
