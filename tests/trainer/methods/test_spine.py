"""Method plumbing shared by every method: pool, LR schedule, hyperparameters, optimizers."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig
from trainer.methods import METHODS, build, get
from trainer.methods.base import LinearDecay, unique_variables
from trainer.methods.image_pool import ImagePool


def make_config(method="cyclegan", image_size=32, batch_size=2, **hparams):
    specs = get(method).hparam_specs()
    values = {k: s.default for k, s in specs.items()}
    values.update(hparams)
    return Config(
        method=method,
        data=DataConfig(image_size=image_size, batch_size=batch_size),
        train=TrainConfig(train_steps=10),
        eval=EvalConfig(),
        hparams=HParams(values),
    )


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


def test_hparams_are_read_only_and_name_missing_keys():
    hp = HParams({"lr": 1.0})
    assert hp.lr == 1.0
    with pytest.raises(AttributeError, match="this method has lr"):
        hp.lambda_x  # noqa: B018
    with pytest.raises(Exception, match="read-only"):
        hp.lr = 2.0


def test_config_round_trips_through_dict():
    config = make_config(lambda_cycle=3.0)
    again = Config.from_dict(config.to_dict())
    assert again == config
    assert again.hparams.lambda_cycle == 3.0


def test_registry_error_lists_methods():
    with pytest.raises(ValueError, match="choose one of .*cyclegan"):
        get("nope")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_builds_with_one_optimizer_per_player(method):
    model = build(make_config(method, filters=8))
    optimizers = model.make_optimizers(total_steps=10)
    assert set(optimizers) == set(model.players())
    for name, networks in model.players().items():
        variables = unique_variables(networks)
        assert len({id(v) for v in variables}) == len(variables)
        assert optimizers[name].built
    paths = model.translation_paths()
    assert paths, f"{method} exports no translation path"


def test_cyclegan_train_step_updates_both_players_and_reports_losses():
    tf.random.set_seed(1)
    model = build(make_config(filters=4, gen_blocks=1, pool_size=2))
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


def test_cyclegan_fits_a_fixed_batch():
    """Cycle loss falls on a fixed batch: the losses and gradients are wired correctly."""
    tf.random.set_seed(2)
    model = build(make_config(filters=8, gen_blocks=1, pool_size=0, lr=2e-3))
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


def test_mixed_precision_step_scales_the_loss_and_updates_weights():
    import dataclasses

    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        config = make_config(filters=4, gen_blocks=1, pool_size=0)
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
