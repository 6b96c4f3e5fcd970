"""DualGAN: the paper's defaults, RMSProp, the losses on known inputs, n_critic clipped critic
updates per step, and the unpaired pipeline handing over n_critic batches."""

import dataclasses

import keras
import numpy as np
import pytest

from trainer.methods import build
from trainer.methods.base import unique_variables
from trainer.methods.dualgan import DualGAN


def test_paper_defaults():
    hp = DualGAN.hparam_specs()
    assert (hp["gan_loss"].default, hp["clip_weights"].default) == ("wgan", 0.01)
    assert (hp["gradient_penalty"].default, hp["lr"].default) == (0.0, 5e-5)
    assert (hp["lambda_a"].default, hp["lambda_b"].default) == (1000.0, 1000.0)
    assert hp["n_critic"].default == 2


@pytest.fixture(scope="module")
def stepped(method_config, random_batch):
    """A tiny DualGAN after one training step (n_critic = 2 critic updates)."""
    keras.utils.set_random_seed(0)
    model = build(method_config("dualgan", n_critic=2, batch_size=2))
    model.make_optimizers(total_steps=10)
    before = {id(v): v.numpy().copy() for v in model.gen_ab.trainable_variables}
    logs = model.train_step(random_batch(n=4))
    return model, before, logs


def test_every_player_trains_with_rmsprop(stepped):
    model, _, _ = stepped
    for name, opt in model.optimizers.items():
        assert isinstance(opt, keras.optimizers.RMSprop), (name, type(opt).__name__)


def test_a_step_is_n_critic_clipped_critic_updates_then_one_generator_update(stepped):
    model, before, logs = stepped
    assert int(model.optimizers["disc"].iterations) == 2
    assert int(model.optimizers["gen"].iterations) == 1
    critics = unique_variables(model.players()["disc"])
    assert max(float(np.abs(v.numpy()).max()) for v in critics) <= 0.01
    # Clipping is the critics' alone: the generators move freely (and past the bound).
    moved = [v for v in model.gen_ab.trainable_variables if not np.allclose(v, before[id(v)])]
    assert moved and max(float(np.abs(v.numpy()).max()) for v in moved) > 0.01
    assert all(np.isfinite(float(v)) for v in logs.values())


def test_unknown_patch_size_and_bad_n_critic_are_refused(method_config):
    with pytest.raises(ValueError, match="--patch_size=40"):
        build(method_config("dualgan", patch_size=40))
    with pytest.raises(ValueError, match="--n_critic must be >= 1"):
        build(method_config("dualgan", n_critic=0))


def known_networks(model):
    """Generators that halve their input; critics whose logit map is the image itself."""
    model.gen_ab = model.gen_ba = lambda x, training=False: 0.5 * x
    model.disc_a = model.disc_b = lambda x, training=False: x
    return model


def test_losses_on_known_inputs(method_config, random_batch):
    model = known_networks(build(method_config("dualgan", lambda_a=100.0, lambda_b=10.0)))
    batch = random_batch()
    x_a, x_b = batch["x_a"].numpy(), batch["x_b"].numpy()
    mean = lambda x: x.mean(axis=(1, 2, 3))  # noqa: E731
    terms = model.generator_terms(batch["x_a"], batch["x_b"])
    assert set(terms) == {"adv_ab", "adv_ba", "recon_a", "recon_b"}
    # WGAN generator: -D(G(x)); D is the identity, G halves.
    np.testing.assert_allclose(terms["adv_ab"][1], -mean(0.5 * x_a), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(terms["adv_ba"][1], -mean(0.5 * x_b), rtol=1e-5, atol=1e-7)
    # L1 of the round trip (x -> x / 4), weighted lambda_U and lambda_V.
    assert (terms["recon_a"][0], terms["recon_b"][0]) == (100.0, 10.0)
    np.testing.assert_allclose(terms["recon_a"][1], mean(np.abs(0.75 * x_a)), rtol=1e-5)
    np.testing.assert_allclose(terms["recon_b"][1], mean(np.abs(0.75 * x_b)), rtol=1e-5)
    # WGAN critics: D(fake) - D(real), fakes the other domain's images halved.
    critic = model.critic_terms(batch["x_a"], batch["x_b"])
    assert set(critic) == {"disc_a", "disc_b"}
    np.testing.assert_allclose(
        critic["disc_a"][1], mean(0.5 * x_b) - mean(x_a), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        critic["disc_b"][1], mean(0.5 * x_a) - mean(x_b), rtol=1e-5, atol=1e-7
    )


def test_gradient_penalty_by_flag(method_config, random_batch):
    model = build(method_config("dualgan", gradient_penalty=10.0, clip_weights=0.0))
    critic = model.critic_terms(random_batch()["x_a"], random_batch()["x_b"])
    assert {"gp_a", "gp_b"} <= set(critic) and critic["gp_a"][0] == 10.0


def test_unpaired_training_batches_hold_n_critic_batches(method_config, digits_data_dir):
    from trainer import data

    config = method_config("dualgan", n_critic=3)
    config = config.replace(data=dataclasses.replace(config.data, data_dir=digits_data_dir))
    train = data.make_dataset(config, "unpaired", "train", batch_size=2, training=True, seed=0)
    test = data.make_dataset(config, "unpaired", "test", batch_size=2, training=False, seed=0)
    assert next(iter(train))["x_a"].shape[0] == 6
    assert next(iter(test))["x_b"].shape[0] == 2
