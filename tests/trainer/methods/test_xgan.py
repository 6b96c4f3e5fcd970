"""XGAN: the gradient reversal layer, shared sub-models, the objective's terms, both
domain-adversarial variants, the optional teacher (trained on source labels, then frozen)."""

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
            lambda_teacher=0.0,
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


# -- the teacher ---------------------------------------------------------------------------------

TEACHER_STEPS = 2


def weights(net):
    return [np.array(v.numpy(), copy=True) for v in net.variables]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def teacher_model(method_config, **hp):
    keras.utils.set_random_seed(0)
    hp = {"lambda_teacher": 2.0, "teacher_steps": TEACHER_STEPS, "train_steps": 10, **hp}
    model = build(method_config("xgan", **hp))
    model.make_optimizers(total_steps=10)
    return model


def test_without_a_teacher_nothing_is_built_and_no_term_or_label_is_used(
    method_config, random_batch
):
    config = method_config("xgan", lambda_teacher=0.0, teacher_dim=9, teacher_steps=7)
    model = build(config)
    model.make_optimizers(total_steps=10)
    assert model.teacher is None and model.teacher_proj is None
    networks = [model.enc_a, model.enc_b, model.dec_a, model.dec_b]
    networks += [model.disc_a, model.disc_b, model.disc_z]
    own = {id(v) for v in unique_variables(networks)}
    assert {id(v) for v in model.variables} == own
    assert sorted(model.optimizers) == ["disc", "gen"]
    assert not type(model).reads_source_labels(config.hparams)
    logs = model.train_step(random_batch())
    assert not any(k.startswith("teach") for k in logs)


def test_the_teacher_term_is_the_l1_to_the_frozen_features_and_weighed(method_config, random_batch):
    model = teacher_model(method_config, teacher_steps=0)
    assert (
        sorted(model.optimizers) == ["disc", "gen"] and model.teacher_proj in model.players()["gen"]
    )
    assert model.teacher not in model.players()["gen"] + model.players()["disc"]
    batch = random_batch(seed=6)
    e_a = model.enc_a(batch["x_a"])
    want = losses.l1(model.teacher_proj(e_a), model.teacher(batch["x_a"])["features"])
    teacher = weights(model.teacher)
    logs = {k: float(v) for k, v in model.train_step(batch).items()}
    np.testing.assert_allclose(logs["teach"], float(tf.reduce_mean(want)), rtol=1e-4)
    others = ("rec_a", "rec_b", "dann", "sem_ab", "sem_ba", "adv_ab", "adv_ba")
    total = sum(logs[k] for k in others) + 2.0 * logs["teach"]
    np.testing.assert_allclose(logs["gen_loss"], total, rtol=1e-4)
    assert same(weights(model.teacher), teacher), "the frozen teacher moved"


def test_the_teacher_trains_alone_on_source_labels_then_stays_frozen(method_config, random_batch):
    model = teacher_model(method_config)
    assert type(model).reads_source_labels(model.config.hparams)
    rest = [model.enc_a, model.enc_b, model.dec_a, model.dec_b, model.teacher_proj]
    rest += [model.disc_a, model.disc_b, model.disc_z]
    for i in range(TEACHER_STEPS + 2):
        t0, r0 = weights(model.teacher), [weights(n) for n in rest]
        logs = {k: float(v) for k, v in model.train_step(random_batch(seed=i)).items()}
        t1, r1 = weights(model.teacher), [weights(n) for n in rest]
        if i < TEACHER_STEPS:
            assert logs["teacher_phase"] == 1.0 and logs["teacher_loss"] > 0
            assert logs["gen_loss"] == 0 and logs["teach"] == 0
            assert not same(t1, t0) and all(same(a, b) for a, b in zip(r1, r0)), i
        else:
            assert logs["teacher_phase"] == 0.0 and logs["teacher_loss"] == 0
            assert logs["teach"] > 0 and logs["gen_loss"] > 0
            assert same(t1, t0), f"step {i}: the frozen teacher moved"
            assert all(not same(a, b) for a, b in zip(r1, r0)), f"step {i}: a network idled"
    assert int(model.optimizers["teacher"].iterations) == TEACHER_STEPS
    assert set(model.players()) == {"gen", "disc"}


def test_target_labels_never_reach_the_teacher(method_config, random_batch):
    runs = []
    for labels in (None, 7):
        model = teacher_model(method_config)
        for i in range(TEACHER_STEPS):
            batch = random_batch(seed=i)
            if labels is not None:  # valid-looking target labels
                batch = {**batch, "y_b": tf.fill(tf.shape(batch["y_b"]), tf.constant(7, tf.int64))}
            model.train_step(batch)
        runs.append(weights(model.teacher))
    assert same(*runs)


def test_the_teacher_phase_survives_a_checkpoint(method_config, random_batch, tmp_path):
    model = teacher_model(method_config)
    model.train_step(random_batch())

    def checkpoint(m):
        return tf.train.Checkpoint(
            model=m, **{f"optimizer_{k}": o for k, o in m.optimizers.items()}
        )

    path = checkpoint(model).save(str(tmp_path / "ckpt"))
    fresh = teacher_model(method_config)
    checkpoint(fresh).restore(path).assert_consumed()
    assert int(fresh.optimizers["teacher"].iterations) == 1 and bool(fresh.in_pretrain_phase())
    assert same(weights(fresh.teacher), weights(model.teacher))
    assert float(fresh.train_step(random_batch(seed=1))["teacher_phase"]) == 1.0
    assert not bool(fresh.in_pretrain_phase()) and set(fresh.players()) == {"gen", "disc"}
    assert float(fresh.train_step(random_batch(seed=2))["teach"]) > 0


def test_a_resume_across_the_teacher_switch_is_refused(method_config, tmp_path):
    import json

    from trainer.train_lib import check_model_dir

    old = method_config("xgan", lambda_teacher=0.0, model_dir=tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(old.to_dict()))
    check_model_dir(method_config("xgan", lambda_teacher=0.0, model_dir=tmp_path))
    with pytest.raises(ValueError, match="lambda_teacher > 0 False"):
        check_model_dir(method_config("xgan", lambda_teacher=1.0, model_dir=tmp_path))


def test_bad_teacher_settings_are_refused_naming_the_fix(method_config):
    with pytest.raises(ValueError, match="--teacher_steps=10 leaves no step"):
        build(method_config("xgan", lambda_teacher=1.0, teacher_steps=10, train_steps=10))
    with pytest.raises(ValueError, match="--teacher_dim must be >= 1"):
        build(method_config("xgan", lambda_teacher=1.0, teacher_dim=0))
    # Without a teacher its settings are not read.
    build(method_config("xgan", lambda_teacher=0.0, teacher_steps=10, train_steps=10))
