"""Method plumbing shared by every method: pool, LR schedule, hyperparameters, optimizers."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.config import Config, HParams
from trainer.methods import METHODS, build, get
from trainer.methods.base import LinearDecay, unique_variables
from trainer.methods.image_pool import ImagePool
from trainer.methods.optim import WeightAverages


def test_image_pool_fills_then_mixes_history():
    tf.random.set_seed(0)
    pool = ImagePool(4, (1, 1, 1))
    first = tf.reshape(tf.range(4, dtype=tf.float32), (4, 1, 1, 1))
    # While filling, the pool returns the images themselves and stores them.
    np.testing.assert_array_equal(pool.query(first).numpy(), first.numpy())
    assert int(pool.count.numpy()) == 4
    new = tf.fill((64, 1, 1, 1), 100.0)
    out = pool.query(new).numpy().ravel()
    # Some come from history (values < 100), most are new; the pool now holds new images.
    assert 0 < (out < 100).sum() <= 4
    assert (out == 100).sum() >= 60
    assert (pool.images.numpy() == 100).all()


def test_image_pool_of_size_zero_is_identity():
    x = tf.random.normal((3, 2, 2, 3))
    np.testing.assert_array_equal(ImagePool(0, (2, 2, 3)).query(x).numpy(), x.numpy())


def test_linear_decay_schedule():
    s = LinearDecay(1.0, decay_start=10, total_steps=20)
    assert float(s(0)) == 1.0 and float(s(10)) == 1.0
    np.testing.assert_allclose(float(s(15)), 0.5)
    assert float(s(20)) == 0.0 and float(s(30)) == 0.0


def test_weight_averages_follow_the_warmed_up_decay_and_swap_back():
    import keras

    w = keras.Variable(np.zeros(3, np.float32))
    averages = WeightAverages([w], decay=0.999)
    w.assign(np.ones(3, np.float32))
    averages.update(step=0)  # decay min(0.999, 1 / 10) = 0.1
    np.testing.assert_allclose(averages.values[0].numpy(), 0.9)
    w.assign(np.full(3, 2.0, np.float32))
    averages.update(step=1)  # decay 2 / 11
    expected = 2 / 11 * 0.9 + 9 / 11 * 2.0
    np.testing.assert_allclose(averages.values[0].numpy(), expected, rtol=1e-6)
    with averages.swapped_in():
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(w.numpy(), 2.0)
    averages.adopt()
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    # Late in a run the decay is the one asked for.
    assert float(averages.effective_decay(100_000)) == pytest.approx(0.999)
    with pytest.raises(ValueError, match="--ema_decay"):
        WeightAverages([w], decay=1.0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_ema_averages_exactly_the_weights_of_the_translation_paths(method, method_config):
    model = build(method_config(method, ema_decay=0.99))
    paths = [p.model for p in model.translation_paths().values() if p.model is not None]
    path_ids = {id(v) for v in unique_variables(paths)}
    assert {id(v) for v in model.averages._live} == path_ids
    # A training step moves the weights; the averages trail them; the swap puts them back.
    before = [v.numpy().copy() for v in model.averages._live]
    with model.averaged_weights():
        for v in model.averages._live:
            v.assign(v + 1.0)
    for v, b in zip(model.averages._live, before):
        np.testing.assert_array_equal(v.numpy(), b)
    assert build(method_config(method)).averages is None


def test_ema_decay_out_of_range_is_refused(method_config):
    with pytest.raises(ValueError, match=r"--ema_decay must be in \[0, 1\)"):
        build(method_config("cyclegan", ema_decay=1.5))


@pytest.mark.parametrize(
    "decay_start,lr_at",
    [(-1, {0: 1.0, 5: 1.0, 8: 0.4}), (0, {0: 1.0, 9: 1.0}), (4, {4: 1.0, 7: 0.5})],
)
def test_decay_start_step_flag(method_config, decay_start, lr_at):
    """-1 = decay over the second half; 0 = constant; N = decay from step N to the end."""
    model = build(method_config("cyclegan", lr=1.0, decay_start_step=decay_start))
    model.make_optimizers(total_steps=10)
    schedule = model.optimizers["gen"]._learning_rate  # the LearningRateSchedule itself
    for step, lr in lr_at.items():
        np.testing.assert_allclose(float(schedule(step)), lr, err_msg=f"step {step}")


def test_hparams_are_read_only_and_name_missing_keys():
    hp = HParams({"lr": 1.0})
    assert hp.lr == 1.0
    with pytest.raises(AttributeError, match="this method has lr"):
        hp.lambda_x  # noqa: B018
    with pytest.raises(Exception, match="read-only"):
        hp.lr = 2.0


def test_config_round_trips_through_dict(method_config):
    config = method_config("cyclegan", lambda_cycle=3.0)
    again = Config.from_dict(config.to_dict())
    assert again == config
    assert again.hparams.lambda_cycle == 3.0


def test_registry_error_lists_methods():
    with pytest.raises(ValueError, match="choose one of .*cyclegan"):
        get("nope")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_builds_with_one_optimizer_per_player(method, method_config):
    # Steps enough for every method's phases at their defaults (DTN's f, latent_explore's VAEs).
    model = build(method_config(method, image_size=32, smoke=False, filters=8, train_steps=5000))
    optimizers = model.make_optimizers(total_steps=10)
    # Every player has one; a phased method (DTN) builds its later phases' optimizers too.
    assert set(model.players()) <= set(optimizers)
    for name, networks in model.players().items():
        variables = unique_variables(networks)
        assert len({id(v) for v in variables}) == len(variables)
        assert optimizers[name].built
    paths = model.translation_paths()
    assert any(p.exported for p in paths.values()), f"{method} exports no translation path"


def test_cyclegan_train_step_updates_both_players_and_reports_losses(method_config):
    tf.random.set_seed(1)
    model = build(
        method_config("cyclegan", image_size=32, smoke=False, filters=4, gen_blocks=1, pool_size=2)
    )
    model.make_optimizers(total_steps=10)
    batch = {
        "x_a": tf.random.uniform((2, 32, 32, 3), -1, 1),
        "x_b": tf.random.uniform((2, 32, 32, 3), -1, 1),
        "y_a": tf.zeros(2, tf.int64),
        "y_b": tf.zeros(2, tf.int64),
    }
    before_g = model.gen_ab.get_weights()[0].copy()
    before_d = model.disc_b.get_weights()[0].copy()
    out = tf.function(model.train_step)(batch)
    assert set(out) >= {"gen_loss", "cycle", "identity", "disc_loss", "adv_ab"}
    assert all(np.isfinite(float(v)) for v in out.values())
    # gen_loss = adv_ab + adv_ba + 10 * cycle + 10 * 0.5 * identity (per global-batch mean)
    expected = out["adv_ab"] + out["adv_ba"] + 10 * out["cycle"] + 5 * out["identity"]
    np.testing.assert_allclose(float(out["gen_loss"]), float(expected), rtol=1e-5)
    assert not np.allclose(model.gen_ab.get_weights()[0], before_g)
    assert not np.allclose(model.disc_b.get_weights()[0], before_d)
    assert int(model.pool_a.count.numpy()) == 2


def test_cyclegan_fits_a_fixed_batch(method_config):
    """Cycle loss falls on a fixed batch: the losses and gradients are wired correctly."""
    tf.random.set_seed(2)
    model = build(
        method_config(
            "cyclegan", image_size=32, smoke=False, filters=8, gen_blocks=1, pool_size=0, lr=2e-3
        )
    )
    model.make_optimizers(total_steps=1000)
    rng = np.random.default_rng(0)
    batch = {
        "x_a": tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)), tf.float32),
        "x_b": tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)), tf.float32),
    }
    step = tf.function(model.train_step)
    first = float(step(batch)["cycle"])
    for _ in range(30):
        last = float(step(batch)["cycle"])
    assert last < 0.8 * first, (first, last)


def test_mixed_precision_step_scales_the_loss_and_updates_weights(method_config):
    import dataclasses

    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        config = method_config(
            "cyclegan", image_size=32, smoke=False, filters=4, gen_blocks=1, pool_size=0
        )
        config = config.replace(train=dataclasses.replace(config.train, mixed_precision=True))
        model = build(config)
        opts = model.make_optimizers(total_steps=10)
        assert isinstance(opts["gen"], keras.optimizers.LossScaleOptimizer)
        assert model.gen_ab.layers[2].compute_dtype == "float16"
        batch = {
            "x_a": tf.random.uniform((2, 32, 32, 3), -1, 1),
            "x_b": tf.random.uniform((2, 32, 32, 3), -1, 1),
        }
        before = model.gen_ab.get_weights()[0].copy()
        step = tf.function(model.train_step)
        # Dynamic loss scaling starts high and skips the steps whose float16 gradients
        # overflow, halving the scale each time, until updates go through.
        for _ in range(20):
            out = step(batch)
            if not np.allclose(model.gen_ab.get_weights()[0], before):
                break
        assert all(np.isfinite(float(v)) for v in out.values())
        assert not np.allclose(model.gen_ab.get_weights()[0], before)
        assert float(opts["gen"].dynamic_scale.numpy()) <= 2.0**15
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_weighted_loss_total_is_the_weighted_sum_of_what_is_logged(method_config):
    model = build(method_config("cyclegan", image_size=32))
    per_example = tf.constant([1.0, 3.0])
    total, logs = model.weighted_loss(
        "gen_loss", {"a": (2.0, per_example), "b": (0.5, tf.constant(4.0))}
    )
    # The batch of 2 is the global batch: mean(a) = 2; b is batch-independent.
    assert float(logs["a"]) == 2.0 and float(logs["b"]) == 4.0
    assert float(total) == float(logs["gen_loss"]) == 2.0 * 2.0 + 0.5 * 4.0


def test_wgan_is_refused_without_a_lipschitz_constraint(method_config):
    with pytest.raises(ValueError, match=r"--gan_loss=wgan needs .*--gradient_penalty=10"):
        build(method_config("cyclegan", gan_loss="wgan"))
    with pytest.raises(ValueError, match="--clip_weights must be >= 0"):
        build(method_config("cyclegan", gan_loss="wgan", clip_weights=-1.0))
    with pytest.raises(ValueError, match="Unknown --norm='group'"):
        build(method_config("cyclegan", norm="group"))
    build(method_config("cyclegan", gan_loss="hinge"))


def test_shape_hparams_are_declared_on_the_methods():
    assert {"filters", "gen_blocks", "norm", "pool_size", "disc_layers"} <= set(
        get("cyclegan").shape_hparams()
    )
    assert {"gen_norm", "gen_specific_layers", "num_classes", "latent_dim", "uda"} <= set(
        get("cogan").shape_hparams()
    )
    assert "lr" not in get("unit").shape_hparams()
    assert "uda" in get("unit").CAPABILITIES and "noise_prior" in get("cogan").CAPABILITIES
    assert not hasattr(get("cyclegan"), "classify")


def test_a_config_saved_before_an_hparam_existed_builds_with_its_default(method_config):
    config = method_config("cyclegan", image_size=32)
    old = dict(config.hparams)
    del old["gradient_penalty"], old["clip_weights"]
    model = build(config.replace(hparams=HParams(old)))
    assert model.hp.gradient_penalty == 0.0 and model.config.hparams.clip_weights == 0.0
