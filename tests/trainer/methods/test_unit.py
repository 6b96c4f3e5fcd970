"""UNIT: shared layers are shared, the step is wired as the objective says, paths, UDA head."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import losses
from trainer.methods import build
from trainer.methods.base import unique_variables
from trainer.methods.unit import UNIT
from trainer.networks import latent_shape, unit_decoders, unit_encoders


def test_paper_weights_and_optimizer_are_the_defaults():
    hp = UNIT.hparam_specs()
    assert [hp[k].default for k in ("lambda_gan", "lambda_kl", "lambda_recon")] == [10, 0.1, 100]
    assert [hp[k].default for k in ("lambda_cycle_kl", "lambda_cycle", "lambda_cycle_b")] == [
        0.1,
        100,
        100,
    ]
    assert (hp["lr"].default, hp["beta_1"].default, hp["beta_2"].default) == (1e-4, 0.5, 0.999)
    assert hp["weight_decay"].default == 1e-4


def test_encoders_and_decoders_share_one_sub_model():
    enc_a, enc_b, shared_enc = unit_encoders(16, filters=4, n_down=2, enc_blocks=1)
    dec_a, dec_b, shared_dec = unit_decoders(16, filters=4, n_down=2, dec_blocks=1)
    assert enc_a.get_layer("shared_enc") is shared_enc is enc_b.get_layer("shared_enc")
    assert dec_a.get_layer("shared_dec") is shared_dec is dec_b.get_layer("shared_dec")
    ids_a = {id(v) for v in enc_a.trainable_variables}
    ids_b = {id(v) for v in enc_b.trainable_variables}
    shared = {id(v) for v in shared_enc.trainable_variables}
    assert shared and shared <= ids_a & ids_b
    # Everything else is domain-specific.
    assert ids_a & ids_b == shared
    assert enc_a.output_shape == (None, *latent_shape(16, 4, 2)) == dec_a.input_shape


def test_a_step_through_domain_a_moves_the_weights_domain_b_uses(method_config, random_batch):
    model = build(method_config("unit"))
    x_a, x_b = random_batch()["x_a"], random_batch()["x_b"]
    b_before = np.asarray(model.dec_b(model.enc_b(x_b)))
    stem_b = model.enc_b.get_layer("stem_conv").kernel.numpy().copy()
    head_b = model.dec_b.get_layer("head_conv").kernel.numpy().copy()
    variables = unique_variables([model.enc_a, model.dec_a])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(losses.l1(model.dec_a(model.enc_a(x_a)), x_a))
    keras.optimizers.SGD(1.0).apply_gradients(zip(tape.gradient(loss, variables), variables))
    # B's own layers are untouched, yet B's output moved: through the shared blocks.
    np.testing.assert_array_equal(model.enc_b.get_layer("stem_conv").kernel.numpy(), stem_b)
    np.testing.assert_array_equal(model.dec_b.get_layer("head_conv").kernel.numpy(), head_b)
    assert not np.allclose(np.asarray(model.dec_b(model.enc_b(x_b))), b_before)


def test_checkpoint_holds_shared_layers_once(tmp_path, method_config):
    model = build(method_config("unit"))
    model.make_optimizers(total_steps=10)
    nets = [model.enc_a, model.enc_b, model.dec_a, model.dec_b, model.disc_a, model.disc_b]
    naive = sum(len(n.trainable_variables) for n in nets)
    unique = unique_variables(nets)
    assert len(unique) < naive
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    stored = [
        name
        for name, _ in tf.train.list_variables(path)
        if name.endswith("VARIABLE_VALUE") and "save_counter" not in name
    ]
    assert len(stored) == len({id(v) for v in model.variables}) == len(unique)
    # The optimizer's slots, like the weights, exist once per shared variable.
    gen = unique_variables(model.players()["gen"])
    momenta = [v for v in model.optimizers["gen"].variables if "momentum" in v.name]
    assert len(momenta) == len(gen)


def test_train_step_combines_the_losses_with_their_weights_and_updates_both_players(
    method_config, random_batch
):
    tf.random.set_seed(0)
    model = build(method_config("unit"))
    model.make_optimizers(total_steps=10)
    before_g = model.shared_dec.get_weights()[0].copy()
    before_d = model.disc_b.get_weights()[0].copy()
    out = model.train_step(random_batch())
    assert all(np.isfinite(float(v)) for v in out.values())
    # The paper's weights lambda0..lambda4 = 10, 0.1, 100, 0.1, 100 on the named terms.
    weights = {"adv": 10, "kl": 0.1, "recon": 100, "cycle_kl": 0.1, "cycle": 100}
    expected = sum(w * (out[f"{k}_a" if k != "adv" else "adv_ab"]) for k, w in weights.items())
    expected += sum(w * (out[f"{k}_b" if k != "adv" else "adv_ba"]) for k, w in weights.items())
    np.testing.assert_allclose(float(out["gen_loss"]), float(expected), rtol=1e-5)
    assert float(out["kl_a"]) > 0 and float(out["recon_a"]) > 0
    assert not np.allclose(model.shared_dec.get_weights()[0], before_g)
    assert not np.allclose(model.disc_b.get_weights()[0], before_d)


def test_cycle_kl_is_the_papers_whole_l_cc_kl_half(method_config, random_batch, monkeypatch):
    """L_CC1 (eq. 5) = lambda3 * [KL(q1(z|x_a)) + KL(q2(z|x_ab))] - lambda4 * log p: the cycle
    term's KL holds the source code's KL as well as the re-encoding's."""
    monkeypatch.setattr(losses, "fixed_variance_sample", lambda mu: mu)  # deterministic z
    model = build(method_config("unit"))
    model.make_optimizers(total_steps=10)
    batch = random_batch()
    expected = {}
    for d, (enc, dec, enc_back) in {
        "a": (model.enc_a, model.dec_b, model.enc_b),
        "b": (model.enc_b, model.dec_a, model.enc_a),
    }.items():
        mu = enc(batch[f"x_{d}"], training=True)
        mu_back = enc_back(dec(mu, training=True), training=True)
        kl = losses.unit_variance_kl(mu) + losses.unit_variance_kl(mu_back)
        expected[d] = float(tf.reduce_mean(kl))
    out = model.train_step(batch)
    for d in "ab":
        np.testing.assert_allclose(float(out[f"cycle_kl_{d}"]), expected[d], rtol=1e-4)
        assert float(out[f"cycle_kl_{d}"]) > float(out[f"kl_{d}"]) > 0


@pytest.mark.parametrize("stddev", [0.0, 0.3])
def test_cycle_noise_reaches_the_re_encoding_and_nothing_else(
    method_config, random_batch, monkeypatch, stddev
):
    """x_ab and x_ba, and only they, get noise of the flag's std, and the cycle's re-encoding
    (its KL term) is of the noisy translation."""
    from trainer.methods import unit as unit_module

    monkeypatch.setattr(losses, "fixed_variance_sample", lambda mu: mu)  # deterministic z
    tf.random.set_seed(0)
    model = build(method_config("unit", cycle_noise=stddev))
    model.make_optimizers(total_steps=10)
    batch = random_batch()
    mu = {d: getattr(model, f"enc_{d}")(batch[f"x_{d}"], training=True) for d in "ab"}
    clean = {"ab": model.dec_b(mu["a"], training=True), "ba": model.dec_a(mu["b"], training=True)}
    calls = []
    real = unit_module.with_noise

    def recording(images, s):
        out = real(images, s)
        back = model.enc_b if not calls else model.enc_a  # x_ab first, then x_ba
        calls.append((np.asarray(images), np.asarray(out), s, back(out, training=True)))
        return out

    monkeypatch.setattr(unit_module, "with_noise", recording)
    out = model.train_step(batch)
    assert [c[2] for c in calls] == [stddev, stddev]
    for (images, noisy, _, mu_back), d, name in zip(calls, "ab", ("ab", "ba"), strict=True):
        np.testing.assert_allclose(images, np.asarray(clean[name]), atol=1e-5)
        noise = noisy - images
        if stddev == 0:
            np.testing.assert_array_equal(noise, 0)
        else:
            assert abs(noise.std() - stddev) < 0.03 and abs(noise.mean()) < 0.03
        kl = losses.unit_variance_kl(mu[d]) + losses.unit_variance_kl(mu_back)
        np.testing.assert_allclose(
            float(out[f"cycle_kl_{d}"]), float(tf.reduce_mean(kl)), rtol=1e-4
        )


def test_paths_run_the_latent_mean_and_name_their_tensors(method_config, random_batch):
    model = build(method_config("unit"))
    paths = model.translation_paths()
    assert set(paths) == {"a2b", "b2a"}
    x = random_batch()["x_a"]
    for name, (enc, dec) in {
        "a2b": (model.enc_a, model.dec_b),
        "b2a": (model.enc_b, model.dec_a),
    }.items():
        assert paths[name].input_names() == ["image"] and paths[name].exported
        path = paths[name].model
        assert [t.name for t in path.inputs] == ["image"]
        y = np.asarray(path(x))
        # No sampling at inference: deterministic and equal to G(E(x)) on the mean.
        np.testing.assert_allclose(y, np.asarray(path(x)))
        np.testing.assert_allclose(y, np.asarray(dec(enc(x))), atol=1e-6)
        assert np.abs(y).max() <= 1.0 and y.dtype == np.float32
        assert {id(v) for v in path.trainable_variables} == {
            id(v) for v in unique_variables([enc, dec])
        }
    np.testing.assert_allclose(
        np.asarray(model.translate(x, "a2b")), np.asarray(paths["a2b"].model(x)), atol=1e-6
    )
    assert paths["a2b"].info()["source_domain"] == model.config.data.domain_a
    assert paths["b2a"].info()["target_domain"] == model.config.data.domain_a


def test_path_survives_a_keras_save_load_round_trip(tmp_path, method_config, random_batch):
    model = build(method_config("unit"))
    path = model.translation_paths()["a2b"].model
    x = random_batch()["x_a"]
    path.save(tmp_path / "a2b.keras")
    again = keras.models.load_model(tmp_path / "a2b.keras")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(path(x)), atol=1e-6)


def test_uda_discriminators_share_all_but_the_first_layer_and_a_head(method_config, random_batch):
    model = build(method_config("unit", uda=True, disc_layers=3))
    a, b = model.disc_a, model.disc_b
    assert a.get_layer("conv0") is not b.get_layer("conv0")
    for name in ("conv1", "conv2", "logits_conv", "class_dense"):
        assert a.get_layer(name) is b.get_layer(name)
    assert model.classify(random_batch()["x_b"]).shape == (2, 10)
    plain = build(method_config("unit"))
    assert plain.disc_a.get_layer("conv1") is not plain.disc_b.get_layer("conv1")
    with pytest.raises(ValueError, match="--uda"):
        plain.classify(random_batch()["x_b"])


@pytest.mark.slow
def test_uda_head_learns_source_labels_above_chance(method_config):
    """A tiny run on a fixed labelled batch: the head on the shared layers learns the labels,
    and the VAE reconstruction falls (the step's losses and gradients are wired)."""
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    # Four classes, each a different bright quadrant: learnable by a 2-layer conv head.
    n, size = 16, 16
    labels = np.arange(n) % 4
    x = np.full((n, size, size, 3), -1.0, "float32")
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 2)
        x[i, r * 8 : r * 8 + 8, col * 8 : col * 8 + 8] = 1.0
    x += rng.normal(0, 0.1, x.shape).astype("float32")
    model = build(
        method_config("unit", batch_size=n, uda=True, num_classes=4, lr=2e-3, weight_decay=0.0)
    )
    model.make_optimizers(total_steps=1000)
    batch = {
        "x_a": tf.constant(x),
        "x_b": tf.constant(x[::-1].copy()),
        "y_a": tf.constant(labels, tf.int64),
        "y_b": tf.fill([n], tf.constant(-1, tf.int64)),
    }
    step = tf.function(model.train_step)
    out = step(batch)
    assert {"cls_a", "cls_ab", "acc_a", "feat"} <= set(out)
    assert float(out["feat"]) > 0 and float(out["cls_a"]) > 0
    parts = ("adv_ab", "adv_ba", "recon_a", "recon_b", "kl_a", "kl_b", "cycle_a", "cycle_b")
    weights = dict(adv_ab=10, adv_ba=10, recon_a=100, recon_b=100, kl_a=0.1, kl_b=0.1)
    expected = sum(weights.get(k, 100) * out[k] for k in parts)
    expected += 0.1 * (out["cycle_kl_a"] + out["cycle_kl_b"]) + out["feat"]
    np.testing.assert_allclose(float(out["gen_loss"]), float(expected), rtol=1e-5)
    np.testing.assert_allclose(
        float(out["disc_loss"]),
        float(10 * (out["disc_a"] + out["disc_b"]) + out["cls_a"] + out["cls_ab"]),
        rtol=1e-5,
    )
    first = float(out["recon_a"])
    for _ in range(30):
        last = float(step(batch)["recon_a"])
    assert last < 0.8 * first, (first, last)
    accuracy = float(losses.masked_accuracy(labels, model.classify(x, domain="a")))
    assert accuracy >= 0.75, accuracy  # chance is 0.25


def test_wgan_needs_a_lipschitz_constraint(method_config):
    with pytest.raises(ValueError, match="--gradient_penalty=10"):
        build(method_config("unit", gan_loss="wgan"))
    UNIT.validate_config(method_config("unit", gan_loss="wgan", gradient_penalty=10.0))
    UNIT.validate_config(method_config("unit", gan_loss="hinge"))
    with pytest.raises(ValueError, match="choose one of"):
        UNIT.validate_config(method_config("unit", gan_loss="relativistic"))


def test_shared_blocks_must_be_positive(method_config):
    with pytest.raises(ValueError, match="shared_blocks"):
        build(method_config("unit", shared_blocks=0))


def test_config_with_mixed_precision_keeps_float32_paths(method_config, random_batch):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        config = method_config("unit")
        config = config.replace(train=dataclasses.replace(config.train, mixed_precision=True))
        model = build(config)
        y = model.translation_paths()["a2b"].model(random_batch()["x_a"])
        assert y.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")
