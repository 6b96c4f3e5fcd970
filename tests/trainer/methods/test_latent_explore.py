"""Latent-space exploration: its losses on known inputs, the class map, the matched pairs, and
the two phases (each trains only its players; a checkpoint resumes in the phase it was saved
in, the frozen VAEs bit-identical)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from trainer import losses
from trainer.eval.evaluate import _expected_labels
from trainer.methods import latent_explore, registry
from trainer.methods.paths import normal

SIZE = 16
VAE_NETS = ("enc_a", "dec_a", "enc_b", "dec_b")
GAN_NETS = ("gen_ab", "gen_ba", "disc_ab", "disc_ba")


def values(model, names):
    return {
        f"{n}/{v.path}": np.array(v.numpy(), copy=True)
        for n in names
        for v in getattr(model, n).weights
    }


def differ(a, b):
    return sorted(k for k in a if not np.array_equal(a[k], b[k]))


def labelled_batch(random_batch, n=4):
    """Random images; A's labels 0..3 and B's their images under i -> i + 5, shuffled."""
    batch = random_batch(n=n, size=SIZE)
    y_a = np.arange(n) % 5
    return {**batch, "y_a": tf.constant(y_a, tf.int64), "y_b": tf.constant(y_a[::-1] + 5)}


# -- losses on known inputs -------------------------------------------------------------------


def test_pair_discriminator_loss_weighs_real_fake_and_noise_pairs():
    real = tf.constant([0.0, 2.0, -1.0])
    fake = tf.constant([0.0, -3.0, 1.0])
    noise = tf.constant([0.0, 1.0, 4.0])
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    r, f, z = (np.asarray(t) for t in (real, fake, noise))
    want = softplus(-r) + 0.5 * softplus(f) + 0.5 * softplus(z)
    got = losses.pair_discriminator_loss(losses.vanilla_discriminator, real, fake, noise)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)

    # LSGAN: a perfect D (real 1, fakes 0) pays nothing; the worst (real 0, fakes 1) pays 1.
    got = losses.pair_discriminator_loss(
        losses.lsgan_discriminator, tf.constant([1.0, 0.0]), tf.constant([0.0, 1.0]),
        tf.constant([0.0, 1.0]),
    )  # fmt: skip
    np.testing.assert_allclose(got.numpy(), [0.0, 1.0])

    # Noise pairs count: a D fooled only by noise pairs pays for them.
    fooled = losses.pair_discriminator_loss(
        losses.lsgan_discriminator, tf.constant([1.0]), tf.constant([0.0]), tf.constant([1.0])
    )
    np.testing.assert_allclose(fooled.numpy(), [0.25])

    # An example without a real partner is left out.
    got = losses.pair_discriminator_loss(
        losses.vanilla_discriminator, real, fake, noise, matched=tf.constant([1.0, 0.0, 1.0])
    )
    np.testing.assert_allclose(got.numpy(), want * [1, 0, 1], rtol=1e-6)


def test_noise_regulariser_is_the_mean_squared_distance_to_the_noise():
    eps = tf.constant([[1.0, 2.0], [0.5, 0.5]])
    g = tf.constant([[0.0, 0.0], [0.5, -0.5]])
    np.testing.assert_allclose(losses.noise_regulariser(eps, g).numpy(), [2.5, 0.5])


def test_negative_elbo_and_the_reparameterised_sample():
    mu = tf.constant([[1.0, 0.0]])
    log_var = tf.constant([[0.0, np.log(4.0)]], tf.float32)
    z = losses.gaussian_sample(mu, log_var, noise=tf.constant([[1.0, 1.0]]))
    np.testing.assert_allclose(z.numpy(), [[2.0, 2.0]], rtol=1e-6)
    x = tf.zeros([1, 2, 2, 1])
    x_recon = tf.fill([1, 2, 2, 1], 0.5)
    kl = 0.5 * (1.0 + 0.0) + 0.5 * (4.0 - np.log(4.0) - 1.0)
    want = (4 * 0.25 + kl) / 4
    np.testing.assert_allclose(
        losses.negative_elbo(x, x_recon, mu, log_var).numpy(), [want], rtol=1e-6
    )


# -- class map and matched pairs ----------------------------------------------------------------


def test_class_map_defaults_and_refusals(method_config):
    assert latent_explore.parse_class_map("", "mnist_0_4", "mnist_5_9") == {
        i: i + 5 for i in range(5)
    }
    assert latent_explore.parse_class_map("", "mnist", "mnist_m") == {i: i for i in range(10)}
    assert latent_explore.parse_class_map("0:9, 1:8", "a", "b") == {0: 9, 1: 8}
    for text, words in (
        ("0-5", "SOURCE:TARGET"),
        ("0:5,x:6", "SOURCE:TARGET"),
        ("0:12", "outside 0-9"),
        ("0:5,0:6", "mapped twice"),
        ("0:5,1:5", "one-to-one"),
    ):
        with pytest.raises(ValueError, match=words):
            latent_explore.parse_class_map(text, "a", "b")
    with pytest.raises(ValueError, match="one-to-one"):
        registry.build(method_config("latent_explore", class_map="1:5,2:5"))
    with pytest.raises(ValueError, match="--vae_steps"):
        registry.build(method_config("latent_explore", vae_steps=100, train_steps=100))
    config = method_config("latent_explore")
    mirrored = config.replace(train=dataclasses.replace(config.train, strategy="mirrored"))
    with pytest.raises(ValueError, match="--strategy=default or one_device"):
        registry.build(mirrored)


def test_match_partners_pairs_each_source_with_an_image_of_its_mapped_class():
    table = latent_explore.label_table({i: i + 5 for i in range(5)})
    y_a = tf.constant([0, 1, 2, -1, 4], tf.int64)
    y_b = tf.constant([6, 5, 9, 5, 8], tf.int64)
    j, matched = latent_explore.match_partners(y_a, y_b, table, seed=(1, 2))
    j, matched = j.numpy(), matched.numpy()
    np.testing.assert_array_equal(matched, [1, 1, 0, 0, 1])
    assert j[0] in (1, 3) and j[1] == 0 and j[4] == 2


def test_evaluation_expects_the_declared_class_map():
    labels = np.array([0, 3, 4])
    info = {"class_map": [[0, 5], [3, 8], [4, 9]]}
    np.testing.assert_array_equal(_expected_labels(labels, info, 0), [5, 8, 9])
    np.testing.assert_array_equal(_expected_labels(labels, {"class_map": [[0, 1]]}, 0), [1, -1, -1])
    np.testing.assert_array_equal(_expected_labels(labels, {}, 5), [5, 8, 9])


# -- the two phases -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phased(method_config, random_batch, tmp_path_factory):
    """A build with --vae_steps=2: checkpoints after step 1 (phase 1) and step 3 (phase 2),
    and the weights at each."""
    config = method_config(
        "latent_explore", image_size=SIZE, batch_size=4, vae_steps=2, train_steps=6,
        gan_loss="wgan", gradient_penalty=10.0, class_map="0:5,1:6,2:7,3:8,4:9",
    )  # fmt: skip
    model = registry.build(config)
    model.make_optimizers(config.train.train_steps)
    batch = labelled_batch(random_batch)
    root = tmp_path_factory.mktemp("latent_explore")
    saved, weights, logs = {}, {}, []
    for step in range(1, 4):
        logs.append({k: float(v) for k, v in model.train_step(batch).items()})
        if step in (1, 3):
            saved[step] = checkpoint(model).save(str(root / f"step{step}"))
            weights[step] = values(model, VAE_NETS + GAN_NETS)
    return dict(config=config, model=model, batch=batch, saved=saved, weights=weights, logs=logs)


def checkpoint(model):
    items = {"model": model, **{f"optimizer_{n}": o for n, o in model.optimizers.items()}}
    return tf.train.Checkpoint(**items)


def restored(phased, step):
    fresh = registry.build(phased["config"])
    fresh.make_optimizers(phased["config"].train.train_steps)
    checkpoint(fresh).restore(phased["saved"][step]).assert_existing_objects_matched()
    return fresh


def test_the_phase_is_logged_and_switches_at_vae_steps(phased):
    logs = phased["logs"]
    assert [log["phase"] for log in logs] == [1.0, 1.0, 2.0]
    assert logs[0]["vae_loss"] > 0 and logs[0]["gen_loss"] == 0
    assert logs[2]["vae_loss"] == 0 and logs[2]["matched"] == 1.0
    # WGAN-GP on the pair discriminators: the penalty is in phase 2's critic loss.
    assert logs[2]["gp_ab"] > 0 and logs[2]["gp_ba"] > 0


def test_a_phase_1_checkpoint_resumes_in_phase_1(phased):
    fresh = restored(phased, 1)
    assert fresh.phase() == "vae" and sorted(fresh.active_players()) == ["vae"]
    assert not differ(phased["weights"][1], values(fresh, VAE_NETS + GAN_NETS))
    fresh.train_step(phased["batch"])
    after = values(fresh, VAE_NETS + GAN_NETS)
    moved = differ(phased["weights"][1], after)
    assert moved and all(k.split("/")[0] in VAE_NETS for k in moved), moved
    assert {k.split("/")[0] for k in moved} == set(VAE_NETS)


def test_a_phase_2_checkpoint_resumes_in_phase_2_with_the_vaes_frozen(phased):
    fresh = restored(phased, 3)
    assert fresh.phase() == "latent_gan"
    assert sorted(fresh.active_players()) == ["disc", "gen"]
    saved = phased["weights"][3]
    vae_at_switch = {k: v for k, v in saved.items() if k.split("/")[0] in VAE_NETS}
    # The VAEs have not moved since phase 1 ended (step 2) and stay so through a step.
    assert not differ(vae_at_switch, values(fresh, VAE_NETS))
    logs = fresh.train_step(phased["batch"])  # eager (the flagfile test runs it in a graph)
    assert float(logs["phase"]) == 2.0
    assert not differ(vae_at_switch, values(fresh, VAE_NETS))
    moved = {k.split("/")[0] for k in differ(saved, values(fresh, VAE_NETS + GAN_NETS))}
    assert moved == set(GAN_NETS)


def test_paths_take_the_image_and_declared_normal_noise(phased):
    model = phased["model"]
    for name, mapping in (("a2b", [0, 5]), ("b2a", [5, 0])):
        path = model.translation_paths()[name]
        assert [(s.name, s.kind) for s in path.inputs] == [("image", "image"), ("eps", "noise")]
        assert path.inputs[1].prior == normal(0.0, 1.0)
        assert mapping in path.extra["class_map"]
    x = phased["batch"]["x_a"]
    a, b = model.translate(x, "a2b", seed=0), model.translate(x, "a2b", seed=1)
    assert a.shape == x.shape and not np.allclose(a, b)  # eps changes the translation
    np.testing.assert_array_equal(a, model.translate(x, "a2b", seed=0))


def test_training_batches_keep_both_domains_labels(method_config, digits_data_dir):
    from trainer import data

    config = method_config("latent_explore", image_size=SIZE)
    config = config.replace(
        data=dataclasses.replace(
            config.data, data_dir=digits_data_dir, domain_a="mnist_0_4", domain_b="mnist_5_9"
        )
    )
    kw = dict(batch_size=16, training=True, seed=0)
    batch = next(iter(data.make_dataset(config, "unpaired_labeled", "train", **kw)))
    assert (batch["y_a"].numpy() < 5).all() and (batch["y_a"].numpy() >= 0).all()
    assert (batch["y_b"].numpy() >= 5).all()
    # The plain unpaired kind keeps them out of training.
    plain = next(iter(data.make_dataset(config, "unpaired", "train", **kw)))
    assert (plain["y_b"].numpy() == -1).all()
