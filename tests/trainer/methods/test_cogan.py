"""CoGAN: coupled generators/discriminators share layers, the step, paths, inversion, UDA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import losses
from trainer.methods import build
from trainer.methods.base import unique_variables
from trainer.methods.cogan import CoGAN, invert_generator
from trainer.networks import coupled_discriminators, coupled_generators


def test_generators_share_their_first_layers_only():
    gen_a, gen_b, shared = coupled_generators(32, latent_dim=8, filters=4, specific_layers=1)
    assert gen_a.get_layer("shared_gen") is shared is gen_b.get_layer("shared_gen")
    assert gen_a.get_layer("head_deconv") is not gen_b.get_layer("head_deconv")
    ids_a = {id(v) for v in gen_a.trainable_variables}
    ids_b = {id(v) for v in gen_b.trainable_variables}
    assert ids_a & ids_b == {id(v) for v in shared.trainable_variables} != set()
    assert gen_a.output_shape == (None, 32, 32, 3)
    # The DCGAN layout: the per-domain layer is the output upsampling itself, and no bias
    # precedes a norm (a dense bias reshaped to 4x4 is a fixed image drawn for every z).
    assert [v.path for v in gen_a.trainable_variables if v.path.startswith("head")] == [
        "head_deconv/kernel",
        "head_deconv/bias",
    ]
    assert len(shared.get_layer("project").weights) == 1


def test_discriminators_share_their_last_layers_and_heads(random_batch):
    d_a, d_b = coupled_discriminators(
        16, filters=4, n_layers=3, shared_layers=2, num_classes=5, patch=False
    )
    assert d_a.get_layer("conv0") is not d_b.get_layer("conv0")
    for name in ("conv1", "conv2", "logits_dense", "class_dense"):
        assert d_a.get_layer(name) is d_b.get_layer(name)
    out = d_a(random_batch()["x_a"])
    assert out["logits"].shape == (2, 1) and out["class_logits"].shape == (2, 5)


def test_domain_norm_shares_the_convolutions_and_keeps_statistics_per_domain():
    d_a, d_b = coupled_discriminators(
        16, filters=4, n_layers=3, shared_layers=2, norm="batch", patch=False, domain_norm=True
    )
    for name in ("conv1", "conv2", "logits_dense"):
        assert d_a.get_layer(name) is d_b.get_layer(name)
    for name in ("conv1_norm", "conv2_norm"):
        assert d_a.get_layer(name) is not d_b.get_layer(name)
    # Training D1 on bright images and D2 on dark ones moves each domain's moving averages
    # toward its own images only; with one shared norm both would see both.
    bright, dark = tf.fill((4, 16, 16, 3), 0.9), tf.fill((4, 16, 16, 3), -0.9)
    for _ in range(20):
        d_a(bright + tf.random.normal((4, 16, 16, 3), stddev=0.1, seed=1), training=True)
        d_b(dark + tf.random.normal((4, 16, 16, 3), stddev=0.1, seed=2), training=True)
    mean_a = d_a.get_layer("conv1_norm").moving_mean.numpy()
    mean_b = d_b.get_layer("conv1_norm").moving_mean.numpy()
    assert np.abs(mean_a - mean_b).max() > 0.05
    # The extra variables are exactly the second domain's two norm layers (gamma, beta and
    # the two moving statistics each).
    shared_a, shared_b = coupled_discriminators(
        16, filters=4, n_layers=3, shared_layers=2, norm="batch", patch=False
    )

    def distinct(*models):
        return len({id(v) for m in models for v in m.weights})

    assert distinct(d_a, d_b) - distinct(shared_a, shared_b) == 2 * 4


def test_minibatch_stddev_feeds_the_shared_real_fake_head_only(method_config, random_batch):
    model = build(method_config("cogan", invert_steps=30, minibatch_stddev=2))
    assert model.disc_a.get_layer("mbstd") is model.disc_b.get_layer("mbstd")
    # The real/fake head reads the features plus the one appended channel; the UDA
    # classifier head reads the features alone.
    features = model.disc_a.get_layer("features").output.shape[-1]
    assert model.disc_a.get_layer("logits_flatten").input.shape[-1] == features + 1
    d_a, _ = coupled_discriminators(
        16, filters=4, n_layers=3, shared_layers=2, num_classes=5, patch=False, minibatch_stddev=2
    )
    assert (
        d_a.get_layer("class_flatten").input.shape[-1]
        == (d_a.get_layer("features").output.shape[-1])
    )
    model.make_optimizers(total_steps=10)
    out = model.train_step(random_batch())
    assert all(np.isfinite(float(v)) for v in out.values())
    with pytest.raises(ValueError, match="minibatch_stddev"):
        CoGAN.validate_config(method_config("cogan", minibatch_stddev=-1))


@pytest.mark.parametrize("size", [12, 24, 4])
def test_generator_sizes_must_be_4_times_a_power_of_two(size):
    with pytest.raises(ValueError, match="image_size"):
        coupled_generators(size, latent_dim=8, filters=4)


def test_a_step_through_g1_changes_what_g2_draws(method_config):
    model = build(method_config("cogan", invert_steps=30))
    z = tf.random.uniform((2, 8), -1, 1, seed=1)
    b_before = np.asarray(model.gen_b(z, training=False))
    head_b = model.gen_b.get_layer("head_deconv").kernel.numpy().copy()
    variables = model.gen_a.trainable_variables
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model.gen_a(z, training=False) - 1.0))
    keras.optimizers.SGD(1.0).apply_gradients(zip(tape.gradient(loss, variables), variables))
    np.testing.assert_array_equal(model.gen_b.get_layer("head_deconv").kernel.numpy(), head_b)
    assert not np.allclose(np.asarray(model.gen_b(z, training=False)), b_before)


def test_train_step_updates_both_players_and_optimizers_see_shared_weights_once(
    method_config, random_batch
):
    tf.random.set_seed(0)
    model = build(method_config("cogan", invert_steps=30))
    opts = model.make_optimizers(total_steps=10)
    gen = model.players()["gen"]
    assert len(unique_variables(gen)) < sum(len(g.trainable_variables) for g in gen)
    momenta = [v for v in opts["gen"].variables if "momentum" in v.name]
    assert len(momenta) == len(unique_variables(gen))
    before_g = model.shared_gen.get_weights()[0].copy()
    before_d = model.disc_b.get_layer("conv1").get_weights()[0].copy()
    out = model.train_step(random_batch())
    assert all(np.isfinite(float(v)) for v in out.values())
    np.testing.assert_allclose(
        float(out["gen_loss"]), float(out["adv_a"] + out["adv_b"]), rtol=1e-5
    )
    np.testing.assert_allclose(
        float(out["disc_loss"]), float(out["disc_a"] + out["disc_b"]), rtol=1e-5
    )
    assert not np.allclose(model.shared_gen.get_weights()[0], before_g)
    assert not np.allclose(model.disc_b.get_layer("conv1").get_weights()[0], before_d)


def test_lbfgs_inversion_recovers_a_known_code():
    keras.utils.set_random_seed(0)
    gen, _, _ = coupled_generators(16, latent_dim=8, filters=8)
    z_true = np.random.default_rng(1).uniform(-0.8, 0.8, (4, 8)).astype("float32")
    x = gen(z_true, training=False)
    z, loss = invert_generator(gen, x, 8, max_iter=100, restarts=2, seed=0)
    assert z.shape == (4, 8) and loss.shape == (4,)
    assert loss.max() < 1e-6, loss
    np.testing.assert_allclose(z, z_true, atol=1e-2)


def test_inversion_respects_the_prior_box_and_more_restarts_never_fit_worse(random_batch):
    keras.utils.set_random_seed(0)
    gen, _, _ = coupled_generators(16, latent_dim=8, filters=8)
    x = random_batch(n=3)["x_a"]  # not in g's range: the fit is imperfect
    z1, loss1 = invert_generator(gen, x, 8, max_iter=10, restarts=1, seed=0)
    z3, loss3 = invert_generator(gen, x, 8, max_iter=10, restarts=3, seed=0)
    assert np.abs(z1).max() <= 1.0 and np.abs(z3).max() <= 1.0
    # Restart 0 of the 3 starts where the single run starts (same seed stream), but the batch
    # is one L-BFGS-B problem whose line search couples the images: the best of 3 is no worse
    # than the single run up to that coupling (1%), and better somewhere.
    assert (loss3 <= loss1 * 1.01).all() and (loss3 < loss1).any()
    with pytest.raises(ValueError, match="invert_loss"):
        invert_generator(gen, x, 8, loss="huber")


def test_translate_inverts_g1_then_decodes_with_g2(method_config):
    model = build(method_config("cogan", invert_steps=30))
    x = model.gen_a(tf.random.uniform((2, 8), -0.5, 0.5, seed=3), training=False)
    y = np.asarray(model.translate(x, "a2b"))
    z = model.invert(x, "a")
    np.testing.assert_allclose(y, np.asarray(model.gen_b(z, training=False)), atol=1e-5)
    assert y.shape == (2, 16, 16, 3) and np.abs(y).max() <= 1.0
    assert np.asarray(model.translate(x, "b2a")).shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="a2b"):
        model.translate(x, "sideways")


def test_paths_sample_pairs_from_one_code(method_config):
    model = build(method_config("cogan", invert_steps=30))
    declared = model.translation_paths()
    # Evaluation finds the inversion directions by their domains; export skips them.
    assert set(declared) == {"sample", "z2a", "z2b", "a2b", "b2a"}
    inversion = declared["a2b"]
    assert not inversion.exported and inversion.model is None
    assert inversion.info()["source_domain"] == "mnist"
    paths = {n: p.model for n, p in declared.items() if p.exported}
    assert set(paths) == {"sample", "z2a", "z2b"}
    # The noise input declares the prior CoGAN trains with: U(-1, 1).
    for name in paths:
        (z_spec,) = declared[name].inputs
        assert z_spec.kind == "noise" and z_spec.name == "z"
        assert z_spec.to_metadata([None, 8])["prior"] == {
            "distribution": "uniform",
            "low": -1.0,
            "high": 1.0,
        }
    assert declared["sample"].output_names() == ["image_a", "image_b"]
    z = tf.random.uniform((3, 8), -1, 1, seed=4)
    sample = paths["sample"]
    assert [t.name for t in sample.inputs] == ["z"] and len(sample.outputs) == 2
    x_a, x_b = sample(z)
    np.testing.assert_allclose(np.asarray(x_a), np.asarray(model.gen_a(z)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(x_b), np.asarray(paths["z2b"](z)), atol=1e-6)
    assert x_b.dtype == tf.float32 and np.abs(np.asarray(x_b)).max() <= 1.0
    assert [t.name for t in paths["z2b"].inputs] == ["z"]


@pytest.mark.parametrize(
    "norm", [{"disc_norm": "layer"}, {"disc_norm": "batch", "disc_domain_norm": True}]
)
def test_uda_head_learns_source_labels_above_chance(method_config, norm):
    """A tiny run on a fixed labelled batch: the head on the shared D layers learns labels,
    and reads them in inference mode (with per-domain batch norm, through D1's own moving
    averages)."""
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    n, size = 16, 16
    labels = np.arange(n) % 4
    x = np.full((n, size, size, 3), -1.0, "float32")
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 2)
        x[i, r * 8 : r * 8 + 8, col * 8 : col * 8 + 8] = 1.0
    x += rng.normal(0, 0.1, x.shape).astype("float32")
    model = build(
        method_config(
            "cogan",
            invert_steps=30,
            batch_size=n,
            uda=True,
            num_classes=4,
            lr=2e-3,
            **norm,
        )
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
    assert {"cls_a", "acc_a"} <= set(out)
    for _ in range(40):
        step(batch)
    accuracy = float(losses.masked_accuracy(labels, model.classify(x, domain="a")))
    assert accuracy >= 0.75, accuracy  # chance is 0.25
    assert model.classify(x, domain="b").shape == (n, 4)


def test_classify_needs_uda_and_bad_settings_are_named(method_config, random_batch):
    with pytest.raises(ValueError, match="--uda"):
        build(method_config("cogan", invert_steps=30)).classify(random_batch()["x_b"])
    with pytest.raises(ValueError, match="gan_loss=wgan needs"):
        CoGAN.validate_config(method_config("cogan", invert_steps=30, gan_loss="wgan"))
    CoGAN.validate_config(method_config("cogan", gan_loss="wgan", clip_weights=0.01))
    with pytest.raises(ValueError, match="invert_loss"):
        CoGAN.validate_config(method_config("cogan", invert_steps=30, invert_loss="huber"))
    # Batch norm's moving averages in the shared layers mix the domains: the head then reads
    # every target image as one class at inference.
    with pytest.raises(ValueError, match="--uda with --disc_norm=batch.*--disc_norm=layer"):
        CoGAN.validate_config(method_config("cogan", uda=True, disc_norm="batch"))
    CoGAN.validate_config(method_config("cogan", uda=True, disc_norm="layer"))
    CoGAN.validate_config(
        method_config("cogan", uda=True, disc_norm="batch", disc_domain_norm=True)
    )


def test_the_coupling_term_pulls_the_features_of_a_generated_pair_together(
    method_config, random_batch
):
    def trained(lambda_pair_feat):
        keras.utils.set_random_seed(0)
        model = build(
            method_config("cogan", invert_steps=30, lambda_pair_feat=lambda_pair_feat, lr=2e-3)
        )
        model.make_optimizers(total_steps=100)
        step = tf.function(model.train_step)
        logs = [step(random_batch()) for _ in range(20)]
        return model, logs[-1]

    coupled, logs = trained(10.0)
    assert np.isfinite(float(logs["pair_feat"]))
    z = coupled.sample_z(4)
    x_a, x_b = coupled.gen_a(z, training=False), coupled.gen_b(z, training=False)
    f_a = coupled.disc_a(x_a, training=True)["features"].numpy()
    f_b = coupled.disc_b(x_b, training=True)["features"].numpy()
    np.testing.assert_allclose(
        coupled.pair_feature_distance(x_a, x_b), ((f_a - f_b) ** 2).sum(axis=(1, 2, 3)), rtol=1e-5
    )
    free, logs = trained(0.0)
    assert "pair_feat" not in logs

    def distance(model):
        # Relative to the features' size: D's update could shrink every feature instead.
        x_a, x_b = model.gen_a(z, training=False), model.gen_b(z, training=False)
        f_a = model.disc_a(x_a, training=True)["features"]
        return float(
            tf.reduce_mean(model.pair_feature_distance(x_a, x_b))
            / tf.reduce_mean(tf.reduce_sum(tf.square(f_a), axis=[1, 2, 3]))
        )

    # D's update makes the per-domain first layers map one z's pair to one feature.
    assert distance(coupled) < 0.5 * distance(free), (distance(coupled), distance(free))
