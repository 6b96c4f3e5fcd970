"""ComboGAN: per-domain parts that grow linearly in N, routing by domain, the pair losses on
known inputs, the random cyclic pairing, the discriminators' real partners, and one path per
ordered pair of domains with the right encoder and decoder."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.methods.conditional_testing import make_config
from trainer import losses
from trainer.methods.combogan import (
    ComboGAN,
    real_partners,
    route,
    shifted_targets,
)

TINY = dict(filters=4, gen_blocks=2, disc_layers=2)
DOMAINS = ("mnist", "mnist_m", "digits")
SIZE = 16


def config(domains=DOMAINS, **hparams):
    return make_config(
        ComboGAN, "combogan", data={"domains": tuple(domains)}, **{**TINY, **hparams}
    )


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return ComboGAN(config(lambda_identity=0.5))


def images(n, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, SIZE, SIZE, 3)), tf.float32)


def count(networks):
    return [int(sum(np.prod(v.shape) for v in net.weights)) for net in networks]


def test_parameters_grow_linearly_in_the_number_of_domains(model):
    four = ComboGAN(config(DOMAINS + ("mnist_0_4",)))
    for m in (model, four):
        # Every domain's encoder, decoder and discriminator have the same size.
        for part in (m.encoders, m.decoders, m.discs):
            assert len(set(count(part))) == 1
    per_domain = sum(count([model.encoders[0], model.decoders[0], model.discs[0]]))
    total = {m.n_domains: sum(count(m.encoders + m.decoders + m.discs)) for m in (model, four)}
    assert total == {3: 3 * per_domain, 4: 4 * per_domain}
    assert sum(np.prod(v.shape) for v in model.weights) == total[3]  # nothing else is held


def test_the_encoder_and_decoder_split_a_cyclegan_generator():
    from trainer.networks import resnet_generator

    m = ComboGAN(config(("mnist", "mnist_m"), gen_blocks=3))
    blocks = [
        [layer for layer in net.layers if layer.name.startswith("res")]
        for net in (
            m.encoders[0],
            m.decoders[0],
        )
    ]
    assert [len(b) for b in blocks] == [1, 2]
    whole = resnet_generator(SIZE, filters=4, n_blocks=3)
    assert sum(count([m.encoders[0], m.decoders[0]])) == count([whole])[0]


def test_route_sends_each_example_through_its_own_domain_network():
    scales = (1.0, 10.0, 100.0)
    nets = []
    for k in scales:
        x = keras.Input((2,))
        nets.append(keras.Model(x, keras.layers.Rescaling(k)(x)))
    x = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    index = tf.constant([2, 0, 2, 0])  # network 1 gets no example
    want = x.numpy() * np.array([100.0, 1.0, 100.0, 1.0])[:, None]
    np.testing.assert_allclose(route(nets, x, index), want)
    # Inside a graph too, where an empty part must not reach a network.
    np.testing.assert_allclose(tf.function(route)(nets, x, index), want)


def test_every_step_pairs_each_domain_with_another_by_one_cyclic_shift(model):
    source = tf.constant([0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(shifted_targets(source, 3, 1), [1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(shifted_targets(source, 3, 2), [2, 0, 1, 2, 0, 1])
    seen = set()
    for s in range(20):
        target = model.targets(source, seed=(s, 0)).numpy()
        assert not np.any(target == source.numpy())  # never a domain into itself
        shift = (target - source.numpy()) % 3
        assert len(set(shift)) == 1  # one shift for the batch
        seen.add(int(shift[0]))
    assert seen == {1, 2}


def test_generator_terms_are_the_cyclegan_losses_through_encoder_decoder_pairs(model):
    x = images(4)
    source = tf.constant([0, 1, 2, 0])
    target = tf.constant([1, 2, 0, 2])
    terms, fake = model.generator_terms(x, source, target)
    enc, dec, disc = model.encoders, model.decoders, model.discs
    want = {"adv": [], "cycle": [], "identity": []}
    for e, (i, j) in enumerate(zip(source.numpy(), target.numpy())):
        xe = x[e : e + 1]
        code = enc[i](xe, training=True)
        fake_e = dec[j](code, training=True)
        np.testing.assert_allclose(fake[e : e + 1], fake_e, atol=1e-5)
        back = dec[i](enc[j](fake_e, training=True), training=True)
        want["adv"].append(losses.lsgan_generator(disc[j](fake_e, training=True)))
        want["cycle"].append(losses.l1(back, xe))
        want["identity"].append(losses.l1(dec[i](code, training=True), xe))
    for name, values in want.items():
        np.testing.assert_allclose(terms[name][1], np.concatenate(values), rtol=1e-4, atol=1e-6)
    hp = model.hp
    assert terms["cycle"][0] == 10.0 == hp.lambda_cycle
    assert terms["identity"][0] == hp.lambda_cycle * hp.lambda_identity
    plain = ComboGAN(config(("mnist", "mnist_m")))  # --lambda_identity=0: no identity term
    assert "identity" not in plain.generator_terms(x[:2], source[:2] % 2, 1 - source[:2] % 2)[0]


def test_discriminators_see_real_partners_of_the_target_domain(model):
    source = tf.constant([0, 0, 1, 1, 1])
    target = tf.constant([1, 1, 2, 2, 2])  # nothing of domain 2 in the batch
    for s in range(5):
        partner, found = real_partners(source, target, seed=(s, 1))
        np.testing.assert_array_equal(found, [True, True, False, False, False])
        np.testing.assert_array_equal(tf.gather(source, partner)[:2], [1, 1])

    x, fake = images(5, seed=1), images(5, seed=2)
    terms = model.critic_terms(x, source, target, fake, seed=(0, 1))
    partner, _ = real_partners(source, target, seed=(0, 1))
    real = tf.gather(x, partner)
    disc = model.discs[1]
    want = losses.lsgan_discriminator(disc(real[:2], training=True), disc(fake[:2], training=True))
    got = terms["disc_target"][1].numpy()
    np.testing.assert_allclose(got[:2], want, rtol=1e-4)
    np.testing.assert_array_equal(got[2:], 0.0)  # no real image of domain 2 to compare with


def test_a_step_with_a_domain_missing_from_the_batch_trains_in_a_graph():
    m = ComboGAN(config())
    m.make_optimizers(total_steps=10)
    batch = {"x": images(4), "domain": tf.constant([0, 1, 0, 1], tf.int64), "y": tf.zeros(4)}
    logs = tf.function(m.train_step)(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())


def test_one_path_per_ordered_pair_with_its_encoder_and_decoder(model):
    paths = model.translation_paths()
    pairs = list(itertools.permutations(range(3), 2))
    assert sorted(paths) == sorted(f"{DOMAINS[i]}2{DOMAINS[j]}" for i, j in pairs)
    x = images(2)
    for i, j in pairs:
        path = paths[f"{DOMAINS[i]}2{DOMAINS[j]}"]
        assert (path.source_domain, path.target_domain) == (DOMAINS[i], DOMAINS[j])
        assert path.exported and path.input_names() == ["image"]
        nested = [layer for layer in path.model.layers if isinstance(layer, keras.Model)]
        assert nested == [model.encoders[i], model.decoders[j]]
        assert path.info()["encoder"] == f"enc_{DOMAINS[i]}"
        assert path.info()["decoder"] == f"dec_{DOMAINS[j]}"
        want = model.decoders[j](model.encoders[i](x, training=False), training=False)
        np.testing.assert_allclose(path.model(x, training=False), want, atol=1e-6)


def test_bad_settings_are_refused_naming_the_fix():
    with pytest.raises(ValueError, match="--domains"):
        ComboGAN(config(("mnist",)))
    with pytest.raises(ValueError, match="twice"):
        ComboGAN(config(("mnist", "mnist_m", "mnist")))
    with pytest.raises(ValueError, match="norm"):
        ComboGAN(config(norm="batch"))


def test_evaluation_measures_the_domain_a_b_pair_and_every_ordered_pair(model):
    from trainer.eval import evaluate

    cfg = model.config  # --domain_a=mnist, --domain_b=mnist_m (the defaults)
    directions = evaluate.translation_directions(model, cfg)
    assert directions == [
        ("a2b", "mnist2mnist_m", "mnist", "mnist_m"),
        ("b2a", "mnist_m2mnist", "mnist_m", "mnist"),
    ]
    pairs = evaluate.pair_paths(model, cfg)
    assert [(s, t) for _, s, t in pairs] == list(itertools.permutations(DOMAINS, 2))
    assert all(name == f"{s}2{t}" for name, s, t in pairs)
    assert evaluate._pair_domains(pairs) == list(DOMAINS)
