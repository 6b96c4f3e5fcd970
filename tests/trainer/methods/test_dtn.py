"""DTN: f trains on source labels for --f_steps, then stays frozen while g and D train; target
labels never reach it; the phase survives a checkpoint; the paper's weights are the defaults."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer.methods import build
from trainer.methods.dtn import DTN

F_STEPS = 2


def weights(net):
    return [np.array(v.numpy(), copy=True) for v in net.variables]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def poisoned(batch, seed):
    """The batch with target labels that are valid-looking but random."""
    rng = np.random.default_rng(seed)
    n = batch["y_b"].shape[0]
    return {**batch, "y_b": tf.constant(rng.integers(0, 10, n), tf.int64)}


def run(method_config, batches, **hp):
    """A tiny DTN trained on ``batches`` through one traced step (as the training loop runs
    it); returns the model and, per step, (logs, f, gen, disc weights after it)."""
    keras.utils.set_random_seed(0)
    model = build(method_config("dtn", f_steps=F_STEPS, train_steps=10, **hp))
    model.make_optimizers(total_steps=10)
    step = tf.function(model.train_step)
    history = [(None, weights(model.f_net), weights(model.gen), weights(model.disc))]
    for batch in batches:
        logs = {k: float(v) for k, v in step(batch).items()}
        history.append((logs, weights(model.f_net), weights(model.gen), weights(model.disc)))
    return model, history


@pytest.fixture(scope="module")
def batches(random_batch):
    return [random_batch(n=4, seed=s) for s in range(F_STEPS + 2)]


@pytest.fixture(scope="module")
def trained(method_config, batches):
    return run(method_config, batches)


def test_paper_weights_are_the_defaults():
    hp = DTN.hparam_specs()
    assert (hp["lambda_const"].default, hp["lambda_tid"].default) == (15.0, 15.0)
    assert hp["lambda_tv"].default == 0.0 and hp["gan_loss"].default == "vanilla"
    assert DTN.SOURCE_LABELS and "uda" not in DTN.CAPABILITIES


def test_f_trains_alone_then_is_frozen_while_g_and_d_train(trained):
    model, history = trained
    for i in range(1, len(history)):
        logs, f, gen, disc = history[i]
        _, f0, gen0, disc0 = history[i - 1]
        if i <= F_STEPS:
            assert logs["f_phase"] == 1.0 and logs["f_loss"] > 0 and logs["gen_loss"] == 0
            assert not same(f, f0), f"step {i}: f did not train in its phase"
            assert same(gen, gen0) and same(disc, disc0), f"step {i}: g or D moved in f's phase"
        else:
            assert logs["f_phase"] == 0.0 and logs["f_loss"] == 0 and logs["gen_loss"] > 0
            assert same(f, f0), f"step {i}: the frozen f moved"
            assert not same(gen, gen0) and not same(disc, disc0), f"step {i}: g or D idle"
    # After its phase f is in no player, so the contract's frozen-part check covers it.
    assert set(model.players()) == {"gen", "disc"}
    assert int(model.optimizers["f"].iterations) == F_STEPS


def test_players_follow_the_phase(method_config, random_batch):
    model = build(method_config("dtn", f_steps=1, train_steps=10))
    model.make_optimizers(total_steps=10)
    assert set(model.players()) == {"f"} and bool(model.in_pretrain_phase())
    model.train_step(random_batch())  # eager, as the contract test runs it
    assert set(model.players()) == {"gen", "disc"} and not bool(model.in_pretrain_phase())


def test_without_an_f_phase_f_is_never_a_player(method_config, random_batch):
    model = build(method_config("dtn", f_steps=0))
    model.make_optimizers(total_steps=10)
    f = weights(model.f_net)
    logs = model.train_step(random_batch())  # eager: the flagfile test runs it traced
    assert "f" not in model.optimizers and set(model.players()) == {"gen", "disc"}
    assert float(logs["f_phase"]) == 0.0 and float(logs["gen_loss"]) > 0
    assert same(weights(model.f_net), f)


def test_f_never_sees_target_labels(method_config, batches, trained):
    _, clean = trained
    _, noisy = run(method_config, [poisoned(b, s) for s, b in enumerate(batches)])
    for (_, *a), (_, *b) in zip(clean, noisy):
        assert all(same(x, y) for x, y in zip(a, b)), "random target labels changed training"


def test_f_learns_the_source_labels(method_config, random_batch):
    keras.utils.set_random_seed(0)
    config = method_config("dtn", f_steps=40, train_steps=50, lr=5e-3, decay_start_step=0)
    model = build(config)
    model.make_optimizers(total_steps=50)
    step = tf.function(model.train_step)
    batch = random_batch(n=2)
    first = step(batch)
    for _ in range(30):
        last = step(batch)
    assert float(last["f_loss"]) < 0.5 * float(first["f_loss"])
    assert float(last["f_acc"]) == 1.0


def test_training_batches_carry_source_labels_and_no_target_labels(method_config, digits_data_dir):
    from trainer import data

    config = method_config("dtn", image_size=32, batch_size=16)
    config = config.replace(data=dataclasses.replace(config.data, data_dir=digits_data_dir))
    batch = next(iter(data.make_dataset(config, "unpaired", "train", batch_size=16,
                                        training=True, seed=0)))  # fmt: skip
    assert np.all(batch["y_b"].numpy() == -1)
    assert np.all((batch["y_a"].numpy() >= 0) & (batch["y_a"].numpy() < 10))


def test_the_phase_survives_a_checkpoint(method_config, random_batch, tmp_path):
    keras.utils.set_random_seed(0)
    config = method_config("dtn", f_steps=F_STEPS, train_steps=10)
    model = build(config)
    model.make_optimizers(total_steps=10)
    model.train_step(random_batch())
    items = lambda m: dict(model=m, **{f"optimizer_{k}": o for k, o in m.optimizers.items()})  # noqa: E731
    path = tf.train.Checkpoint(**items(model)).save(str(tmp_path / "ckpt"))
    fresh = build(config)
    fresh.make_optimizers(total_steps=10)
    tf.train.Checkpoint(**items(fresh)).restore(path).assert_consumed()
    assert int(fresh.optimizers["f"].iterations) == 1 and bool(fresh.in_pretrain_phase())
    assert same(weights(fresh.f_net), weights(model.f_net))
    fresh.train_step(random_batch(seed=1))
    assert not bool(fresh.in_pretrain_phase()) and set(fresh.players()) == {"gen", "disc"}


def test_bad_settings_are_refused_naming_the_fix(method_config):
    with pytest.raises(ValueError, match="--f_steps=10 leaves no step"):
        build(method_config("dtn", f_steps=10, train_steps=10))
    with pytest.raises(ValueError, match="--f_steps must be >= 0"):
        build(method_config("dtn", f_steps=-1))
    config = method_config("dtn", f_steps=5)
    mirrored = config.replace(train=dataclasses.replace(config.train, strategy="mirrored"))
    with pytest.raises(ValueError, match="--strategy=default or one_device"):
        build(mirrored)
    folder = config.replace(data=dataclasses.replace(config.data, dataset="folder"))
    with pytest.raises(ValueError, match="--f_steps=0 for a"):
        build(folder)
