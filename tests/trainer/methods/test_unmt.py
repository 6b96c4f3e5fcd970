"""UNMT-style latent: corruption, the objective's terms, one shared encoder, the frozen copy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import losses
from trainer.methods import build
from trainer.methods.unmt import UNMT, corrupt


def weights(net):
    return [np.array(w, copy=True) for w in net.get_weights()]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def clean(method_config):
    """A tiny UNMT without corruption (a deterministic step), and its optimizers."""
    keras.utils.set_random_seed(0)
    config = method_config(
        "unmt",
        pixel_dropout=0.0,
        noise_stddev=0.0,
        lambda_auto=2.0,
        lambda_cd=3.0,
        lambda_adv=0.5,
        backtranslate_every=3,
    )
    model = build(config)
    model.make_optimizers(total_steps=10)
    return model


def test_paper_weights_are_the_defaults():
    hp = UNMT.hparam_specs()
    assert [hp[k].default for k in ("lambda_auto", "lambda_cd", "lambda_adv")] == [1, 1, 1]
    assert (hp["lr"].default, hp["beta_1"].default) == (3e-4, 0.5)
    assert hp["gan_loss"].default == "vanilla" and hp["backtranslate_every"].default == 1


def test_corruption_drops_whole_pixels_and_adds_noise():
    tf.random.set_seed(1)
    x = tf.fill([4, 16, 16, 3], 0.5)
    dropped = np.asarray(corrupt(x, 0.5, 0.0))
    zero = dropped == 0
    # A pixel goes with all its channels; what stays is untouched.
    assert (zero.all(-1) == zero.any(-1)).all()
    assert 0.4 < zero[..., 0].mean() < 0.6
    np.testing.assert_array_equal(dropped[~zero], 0.5)
    noisy = np.asarray(corrupt(tf.zeros([4, 16, 16, 3]), 0.0, 0.2))
    assert 0.17 < noisy.std() < 0.23 and abs(noisy.mean()) < 0.03
    assert np.abs(np.asarray(corrupt(tf.ones([2, 4, 4, 3]), 0.0, 1.0))).max() <= 1.0
    np.testing.assert_array_equal(np.asarray(corrupt(x, 0.0, 0.0)), np.asarray(x))


def test_step_logs_each_term_as_the_objective_says_and_weighs_them(clean, random_batch):
    model = clean
    batch = random_batch(seed=3)
    x_a, x_b = batch["x_a"], batch["x_b"]
    enc, dec_a, dec_b, disc = model.enc, model.dec_a, model.dec_b, model.disc_z
    # Before the first step the frozen copy is the live model: y = dec_b(enc(x_a)).
    want = {
        "auto_a": losses.l1(dec_a(enc(x_a)), x_a),
        "auto_b": losses.l1(dec_b(enc(x_b)), x_b),
        "cd_a": losses.l1(dec_a(enc(dec_b(enc(x_a)))), x_a),
        "cd_b": losses.l1(dec_b(enc(dec_a(enc(x_b)))), x_b),
        # vanilla GAN with flipped labels: -log sigmoid(D(z_b)) - log(1 - sigmoid(D(z_a))).
        "adv_z": tf.reduce_mean(tf.nn.softplus(-disc(enc(x_b))), [1, 2, 3])
        + tf.reduce_mean(tf.nn.softplus(disc(enc(x_a))), [1, 2, 3]),
    }
    want = {k: float(tf.reduce_mean(v)) for k, v in want.items()}
    logs = {k: float(v) for k, v in model.train_step(batch).items()}
    for key, value in want.items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-4, err_msg=key)
    total = 2 * (want["auto_a"] + want["auto_b"]) + 3 * (want["cd_a"] + want["cd_b"])
    np.testing.assert_allclose(logs["gen_loss"], total + 0.5 * want["adv_z"], rtol=1e-4)
    assert logs["disc_z"] > 0


def test_frozen_copy_refreshes_every_n_steps_and_is_checkpointed(
    method_config, random_batch, tmp_path
):
    keras.utils.set_random_seed(1)
    config = method_config("unmt", backtranslate_every=3)
    model = build(config)
    model.make_optimizers(total_steps=10)
    live = [model.enc, model.dec_a, model.dec_b]
    frozen = [model.frozen_enc, model.frozen_dec_a, model.frozen_dec_b]
    assert all(same(weights(f), weights(n)) for f, n in zip(frozen, live))
    history = []  # the live weights at the start of each step
    for step in range(5):
        history.append([weights(n) for n in live])
        model.train_step(random_batch(seed=step))
        refreshed_at = step - step % 3
        for f, w in zip(frozen, history[refreshed_at]):
            assert same(weights(f), w), f"step {step}: the copy is not step {refreshed_at}'s"
    # Step 4 ran with step 3's copy, which is not the live model any more.
    assert not same(weights(model.frozen_enc), weights(model.enc))

    # A restart between two refreshes keeps translating with the same copy.
    items = {"model": model, **model.checkpoint_items()}
    items.update({f"optimizer_{n}": o for n, o in model.optimizers.items()})
    saved = tf.train.Checkpoint(**items).save(str(tmp_path / "ckpt"))
    fresh = build(config)
    fresh.make_optimizers(total_steps=10)
    items = {"model": fresh, **fresh.checkpoint_items()}
    items.update({f"optimizer_{n}": o for n, o in fresh.optimizers.items()})
    tf.train.Checkpoint(**items).restore(saved).assert_existing_objects_matched()
    for a, b in zip(frozen, [fresh.frozen_enc, fresh.frozen_dec_a, fresh.frozen_dec_b]):
        assert same(weights(a), weights(b))
    copy = weights(fresh.frozen_enc)
    fresh.train_step(random_batch(seed=5))  # step 5: not a refresh
    assert same(weights(fresh.frozen_enc), copy)


def test_one_encoder_serves_both_paths_and_is_held_once(clean, random_batch):
    model = clean
    paths = model.translation_paths()
    assert set(paths) == {"a2b", "b2a"}
    assert paths["a2b"].model.get_layer("enc") is model.enc is paths["b2a"].model.get_layer("enc")
    gen = model.players()["gen"]
    assert sum(len(n.trainable_variables) for n in gen) == len(
        {id(v) for n in gen for v in n.trainable_variables}
    )
    x = random_batch()["x_a"]
    np.testing.assert_allclose(
        np.asarray(paths["a2b"].model(x)), np.asarray(model.dec_b(model.enc(x))), atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(paths["b2a"].model(x)), np.asarray(model.dec_a(model.enc(x))), atol=1e-6
    )


@pytest.mark.parametrize(
    "hparams, flag",
    [
        ({"backtranslate_every": 0}, "--backtranslate_every"),
        ({"pixel_dropout": 1.0}, "--pixel_dropout"),
        ({"noise_stddev": -0.1}, "--noise_stddev"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(method_config, hparams, flag):
    with pytest.raises(ValueError, match=flag):
        build(method_config("unmt", **hparams))
