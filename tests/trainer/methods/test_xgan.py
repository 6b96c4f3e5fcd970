"""XGAN: the gradient reversal layer, shared sub-models, the objective's terms, both
domain-adversarial variants."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import losses
from trainer.layers import GradientReversal
from trainer.methods import build
from trainer.methods.base import unique_variables


@pytest.fixture(scope="module")
def models(method_config):
    """A tiny XGAN per --domain_adversarial, with non-default weights and optimizers."""
    out = {}
    for mode in ("grl", "disc"):
        keras.utils.set_random_seed(0)
        config = method_config(
            "xgan",
            domain_adversarial=mode,
            lambda_rec=2.0,
            lambda_dann=0.5,
            lambda_sem=3.0,
            lambda_gan=1.5,
        )
        out[mode] = build(config)
        out[mode].make_optimizers(total_steps=10)
    return out


@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_gradient_reversal_is_identity_forward_and_minus_scale_times_upstream_backward(scale):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 3, 3, 4)), tf.float32)
    upstream = tf.constant(rng.normal(size=(2, 3, 3, 4)), tf.float32)
    layer = GradientReversal(scale)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    grad = tape.gradient(y, x, output_gradients=upstream)
    np.testing.assert_allclose(np.asarray(grad), -scale * np.asarray(upstream), rtol=1e-6)


def test_gradient_reversal_round_trips_and_refuses_a_negative_scale(tmp_path):
    inputs = keras.Input((4, 4, 2), name="z")
    model = keras.Model(inputs, GradientReversal(0.5, name="reverse")(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("reverse"), GradientReversal)
    assert loaded.get_layer("reverse").scale == 0.5
    layer = GradientReversal(0.5)
    assert GradientReversal.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="scale"):
        GradientReversal(-1.0)


def test_encoders_and_decoders_share_one_sub_model_held_once(models):
    model = models["grl"]
    assert model.enc_a.get_layer("shared_enc") is model.shared_enc
    assert model.enc_b.get_layer("shared_enc") is model.shared_enc
    assert model.dec_a.get_layer("shared_dec") is model.shared_dec
    assert model.dec_b.get_layer("shared_dec") is model.shared_dec
    gen = model.players()["gen"]
    shared = {id(v) for v in model.shared_enc.variables + model.shared_dec.variables}
    ids = [id(v) for v in unique_variables(gen)]
    assert shared <= set(ids) and len(ids) == len(set(ids))
    assert len(ids) < sum(len(n.trainable_variables) for n in gen)
    own_a = {id(v) for v in model.enc_a.trainable_variables} - shared
    assert own_a and not own_a & {id(v) for v in model.enc_b.trainable_variables}


@pytest.mark.parametrize("mode", ["grl", "disc"])
def test_step_logs_each_term_as_the_objective_says_and_weighs_them(models, mode, random_batch):
    model = models[mode]
    batch = random_batch(seed=3)
    x_a, x_b = batch["x_a"], batch["x_b"]
    e_a, e_b = model.enc_a(x_a), model.enc_b(x_b)
    d_a, d_b = model.disc_z(e_a), model.disc_z(e_b)
    if mode == "grl":  # the classifier's cross-entropy: A is 1, B is 0
        dann = losses.vanilla_discriminator(d_a, d_b)
    else:  # lsgan with flipped labels: A embeddings should read as B and B as A
        dann = 0.5 * (tf.reduce_mean((d_b - 1) ** 2, [1, 2, 3]) + tf.reduce_mean(d_a**2, [1, 2, 3]))
    x_ab, x_ba = model.dec_b(e_a), model.dec_a(e_b)
    want = {
        "rec_a": losses.l1(model.dec_a(e_a), x_a),
        "rec_b": losses.l1(model.dec_b(e_b), x_b),
        "dann": dann,
        "sem_ab": losses.l1(model.enc_b(x_ab), e_a),
        "sem_ba": losses.l1(model.enc_a(x_ba), e_b),
        "adv_ab": tf.reduce_mean((model.disc_b(x_ab) - 1) ** 2, [1, 2, 3]),
        "adv_ba": tf.reduce_mean((model.disc_a(x_ba) - 1) ** 2, [1, 2, 3]),
    }
    want = {k: float(tf.reduce_mean(v)) for k, v in want.items()}
    logs = {k: float(v) for k, v in model.train_step(batch).items()}
    for key, value in want.items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-4, err_msg=key)
    weights = {"rec": 2.0, "dann": 0.5, "sem": 3.0, "adv": 1.5}
    total = sum(weights[k.split("_")[0]] * v for k, v in want.items())
    np.testing.assert_allclose(logs["gen_loss"], total, rtol=1e-4)
    assert ("disc_z" in logs) == (mode == "disc")


def test_grl_reverses_the_classifier_gradient_into_the_embedding(models, random_batch):
    model = models["grl"]
    batch = random_batch(seed=4)
    e_a, e_b = model.enc_a(batch["x_a"]), model.enc_b(batch["x_b"])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([e_a, e_b])
        reversed_ = tf.reduce_sum(model.domain_adversarial_term(e_a, e_b))
        plain = tf.reduce_sum(losses.vanilla_discriminator(model.disc_z(e_a), model.disc_z(e_b)))
    np.testing.assert_allclose(
        np.asarray(tape.gradient(reversed_, e_a)),
        -np.asarray(tape.gradient(plain, e_a)),
        rtol=1e-5,
        atol=1e-8,
    )
    # The classifier itself descends its own loss.
    variables = model.disc_z.trainable_variables
    for g, h in zip(tape.gradient(reversed_, variables), tape.gradient(plain, variables)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(h), rtol=1e-5, atol=1e-8)


def test_disc_variant_trains_the_embedding_critic_as_a_discriminator(method_config, random_batch):
    keras.utils.set_random_seed(2)
    model = build(method_config("xgan", domain_adversarial="disc"))
    assert model.disc_z in model.players()["disc"] and model.disc_z not in model.players()["gen"]
    model.make_optimizers(total_steps=10)
    before = [np.array(v.numpy(), copy=True) for v in model.disc_z.trainable_variables]
    logs = model.train_step(random_batch(seed=5))
    assert float(logs["disc_z"]) > 0
    after = [v.numpy() for v in model.disc_z.trainable_variables]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))


def test_unknown_domain_adversarial_is_refused(method_config):
    with pytest.raises(ValueError, match="--domain_adversarial"):
        build(method_config("xgan", domain_adversarial="mmd"))
