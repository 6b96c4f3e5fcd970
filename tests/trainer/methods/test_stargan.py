"""StarGAN: G(x, c) and its two-headed D, the masked classification loss, the n_critic step,
the mask vector, and the two-input path exported with its declarations."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.trainer.methods.conditional_testing import (
    assert_every_player_moves,
    assert_fp32_parity,
    export_declared,
    make_config,
)
from trainer.methods.stargan import StarGAN, random_targets
from trainer.networks.stargan_nets import (
    ConditionalAffine,
    GroupMask,
    ResidualOutput,
    TileCondition,
    disc_layers_for,
    patch_receptive_field,
    stargan_discriminator,
)

TINY = dict(filters=4, gen_blocks=1, n_down=2, disc_layers=6, n_critic=2)
DOMAINS = ("mnist", "mnist_m", "digits")
GROUPS = "dataset=mnist,mnist_m,digits;style=mnist_inverted,mnist_colored"


def config(domains=DOMAINS, **hparams):
    values = {**TINY, **hparams}
    return make_config(StarGAN, "stargan", data={"domains": tuple(domains)}, **values)


def batch(model, seed=0):
    """n_critic batches of 2, concatenated, as the multi_domain pipeline hands them over."""
    rng = np.random.default_rng(seed)
    n = 2 * model.hp.n_critic
    return {
        "x": tf.constant(rng.uniform(-1, 1, (n, 16, 16, 3)), tf.float32),
        "domain": tf.constant(rng.integers(0, len(model.labels), n), tf.int64),
        "y": tf.constant(rng.integers(0, 10, n), tf.int64),
    }


def test_paper_choices_are_the_defaults():
    hp = StarGAN.hparam_specs()
    assert hp["gan_loss"].default == "wgan" and hp["gradient_penalty"].default == 10
    assert (hp["lambda_cls"].default, hp["lambda_rec"].default, hp["n_critic"].default) == (
        1,
        10,
        5,
    )
    assert (hp["lr"].default, hp["beta_1"].default, hp["beta_2"].default) == (1e-4, 0.5, 0.999)
    assert hp["decay_start_step"].default == -1  # linear decay over the second half
    assert StarGAN.DATA == "multi_domain"
    assert {k for k, s in hp.items() if s.shape} >= {"filters", "domain_groups", "disc_layers"}


def test_random_targets_stay_in_the_example_group():
    groups, offsets, sizes = tf.constant([0, 0, 0, 1, 1]), (0, 3), (3, 2)
    labels = tf.constant([0, 1, 2, 3, 4] * 200)
    t = random_targets(labels, groups, offsets, sizes, seed=(1, 2)).numpy()
    src = labels.numpy()
    assert np.all((t < 3) == (src < 3))
    assert set(t[src < 3]) == {0, 1, 2} and set(t[src >= 3]) == {3, 4}


def test_condition_layers_compute_and_round_trip():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 3)).astype("float32")
    c = np.eye(5, dtype="float32")[[1, 3]]
    tiled = np.asarray(TileCondition()([x, c]))
    assert tiled.shape == (2, 4, 4, 8)
    np.testing.assert_array_equal(tiled[..., :3], x)
    np.testing.assert_array_equal(tiled[1, 2, 3, 3:], c[1])
    mask = np.asarray(GroupMask((3, 2))(c))
    np.testing.assert_array_equal(mask[:, 5:], [[1, 0], [0, 1]])
    for layer in (TileCondition(name="t"), GroupMask((3, 2), name="m")):
        again = keras.layers.deserialize(keras.layers.serialize(layer))
        assert type(again) is type(layer) and again.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="expects 5 labels"):
        GroupMask((3, 2))(np.zeros((1, 4), "float32"))


def test_conditional_affine_scales_and_shifts_per_condition_and_round_trips(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 3, 4)).astype("float32")
    c = np.eye(3, dtype="float32")[[2, 0]]
    layer = ConditionalAffine(name="cond")
    np.testing.assert_array_equal(np.asarray(layer([x, c])), x)  # starts as the identity
    scale = np.arange(12, dtype="float32").reshape(3, 4) / 10
    shift = -np.arange(12, dtype="float32").reshape(3, 4)
    layer.set_weights([scale, shift])
    out = np.asarray(layer([x, c]))
    np.testing.assert_allclose(out[0], x[0] * (1 + scale[2]) + shift[2], rtol=1e-6)
    np.testing.assert_allclose(out[1], x[1] * (1 + scale[0]) + shift[0], rtol=1e-6)
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(again) is ConditionalAffine and again.get_config() == layer.get_config()
    # Inside a saved generator: the .keras file restores the layer and its weights.
    model = StarGAN(config(gen_condition="norm"))
    path = str(tmp_path / "gen.keras")
    model.gen.save(path)
    restored = keras.models.load_model(path)
    x16 = np.asarray(batch(model)["x"][:2])
    onehot = np.eye(3, dtype="float32")[[1, 2]]
    np.testing.assert_allclose(
        np.asarray(restored([x16, onehot])), np.asarray(model.gen([x16, onehot])), atol=1e-6
    )


def test_norm_condition_puts_the_target_after_every_stage_norm():
    plain, cond = StarGAN(config()), StarGAN(config(gen_condition="norm"))
    names = [layer.name for layer in cond.gen.layers if isinstance(layer, ConditionalAffine)]
    assert names == ["stem_cond", "down0_cond", "down1_cond", "up0_cond", "up1_cond"]
    assert not [layer for layer in plain.gen.layers if isinstance(layer, ConditionalAffine)]
    assert StarGAN.HPARAMS["gen_condition"].shape and StarGAN.HPARAMS["gen_condition"].default == (
        "input"
    )
    with pytest.raises(ValueError, match="input, norm"):
        StarGAN.validate_config(config(gen_condition="adain"))
    # Once the affines move away from the identity, the target reaches every pixel, not only
    # the border the zero padding leaves the tiled one-hot.
    layer = cond.gen.get_layer("up1_cond")
    scale, shift = layer.get_weights()
    layer.set_weights([scale, np.random.default_rng(0).normal(size=shift.shape).astype("float32")])
    x = batch(cond)["x"][:1]
    a, b = (np.asarray(cond.translate(x, name)) for name in ("mnist", "digits"))
    assert np.all(np.abs(a - b)[0, 4:-4, 4:-4].max(-1) > 0)
    model = StarGAN(config(domains=(), domain_groups=GROUPS, gen_condition="norm"))
    model.make_optimizers(total_steps=10)
    assert_every_player_moves(model, batch(model))
    moved = model.gen.get_layer("stem_cond").get_weights()
    assert any(np.abs(w).max() > 0 for w in moved), "the conditional affines do not train"


def test_residual_output_changes_the_input_clips_and_passes_gradients_through():
    x = np.array([[[[-1.0, 0.0, 1.0]]]], "float32")
    layer = ResidualOutput()
    np.testing.assert_allclose(np.asarray(layer([x, np.zeros_like(x)])), x)
    h = np.full_like(x, 5.0)  # 2 tanh(5) ~ 2: -1 -> ~1, 0 and 1 clipped to 1
    np.testing.assert_allclose(np.asarray(layer([x, h])), [[[[0.9998, 1.0, 1.0]]]], atol=1e-3)
    np.testing.assert_allclose(np.asarray(layer([x, -h])), [[[[-1.0, -1.0, -0.9998]]]], atol=1e-3)
    # Past the range the clip still passes the gradient of x + 2 tanh(h).
    h = tf.constant(np.full_like(x, 0.5))
    with tf.GradientTape() as tape:
        tape.watch(h)
        out = layer([x, h])
    grad = tape.gradient(out, h).numpy()
    np.testing.assert_allclose(grad, np.full_like(x, 2.0 / np.cosh(0.5) ** 2), rtol=1e-5)
    again = keras.layers.deserialize(keras.layers.serialize(ResidualOutput(name="r")))
    assert (
        type(again) is ResidualOutput
        and again.get_config() == ResidualOutput(name="r").get_config()
    )


def test_residual_generator_starts_near_the_identity_and_trains_with_the_identity_loss():
    tf.random.set_seed(0)
    model = StarGAN(config(residual_output=True, lambda_identity=0.5))
    assert isinstance(model.gen.get_layer("translated"), ResidualOutput)
    x = batch(model)["x"][:2]
    out = np.asarray(model.translate(x, "mnist_m"))
    # Untrained, the change is near 0: the output is its input (a tanh generator's is not).
    np.testing.assert_allclose(out, np.asarray(x), atol=0.1)
    plain = StarGAN(config())
    assert not isinstance(plain.gen.get_layer("translated"), ResidualOutput)
    assert np.abs(np.asarray(plain.translate(x, "mnist_m")) - np.asarray(x)).mean() > 0.1
    model.make_optimizers(total_steps=10)
    out = assert_every_player_moves(model, batch(model))
    hp = model.hp
    expected = (
        out["g_adv"]
        + hp.lambda_cls * out["g_cls"]
        + hp.lambda_rec * out["rec"]
        + hp.lambda_rec * hp.lambda_identity * out["identity"]
    )
    np.testing.assert_allclose(float(out["gen_loss"]), float(expected), rtol=1e-5)
    assert "identity" not in StarGAN(config()).generator_terms(
        x, tf.constant([0, 1]), tf.constant([1, 2])
    )


def test_disc_noise_reaches_what_d_sees_and_nothing_else():
    tf.random.set_seed(0)
    x = tf.zeros((4, 16, 16, 3))
    model = StarGAN(config(disc_noise=0.5))
    seen = np.asarray(model.disc_input(x))
    assert abs(seen.std() - 0.5) < 0.05 and not np.allclose(seen, np.asarray(model.disc_input(x)))
    assert StarGAN(config()).disc_input(x) is x
    # G's output (the exported path) carries no noise; training still moves every player.
    np.testing.assert_array_equal(model.translate(x, "mnist"), model.translate(x, "mnist"))
    model.make_optimizers(total_steps=10)
    assert_every_player_moves(model, batch(model))


def test_cycle_noise_reaches_the_reconstruction_pass_and_nothing_else():
    tf.random.set_seed(0)
    model = StarGAN(config(cycle_noise=0.3))
    fake = tf.zeros((4, 16, 16, 3))
    carried = np.asarray(model.cycle_input(fake))
    assert abs(carried.std() - 0.3) < 0.03
    assert StarGAN(config()).cycle_input(fake) is fake
    # The second pass sees G(x, c) + noise; the first pass (what D and the path see) does not.
    seen = []
    gen = model.gen

    def recording(inputs, training=False):
        seen.append(np.asarray(inputs[0]))
        return gen(inputs, training=training)

    model.gen = recording
    x = batch(model)["x"][:2]
    model.generator_terms(x, tf.constant([0, 1]), tf.constant([1, 2]))
    model.gen = gen
    np.testing.assert_array_equal(seen[0], np.asarray(x))
    first = np.asarray(gen([x, model.one_hot(tf.constant([1, 2]))], training=True))
    assert 0.2 < np.abs(seen[1] - first).mean() < 0.3  # E|N(0, 0.3)| = 0.24
    model.make_optimizers(total_steps=10)
    assert_every_player_moves(model, batch(model))


def test_skips_join_each_decoder_stage_to_the_encoder_map_of_its_resolution():
    plain, skips = StarGAN(config()), StarGAN(config(gen_skips=True))
    joins = [layer for layer in skips.gen.layers if layer.name.endswith("_skip")]
    assert [j.name for j in joins] == ["up0_skip", "up1_skip"]
    assert not [layer for layer in plain.gen.layers if layer.name.endswith("_skip")]
    # 16 px, 4 filters: up0 (8 px, 8 + down0's 8 channels), up1 (16 px, 4 + the stem's 4).
    assert [tuple(j.output.shape[1:]) for j in joins] == [(8, 8, 16), (16, 16, 8)]
    assert skips.gen.count_params() > plain.gen.count_params()
    # A resume across --gen_skips is refused (it changes the variables' shapes).
    assert StarGAN.HPARAMS["gen_skips"].shape


def test_discriminator_layers_are_capped_by_the_image_size():
    assert disc_layers_for(128, 6) == 6 and disc_layers_for(32, 6) == 4
    assert disc_layers_for(16, 6) == 3
    assert patch_receptive_field(1) == 8 and patch_receptive_field(4) == 78
    disc = stargan_discriminator(16, 3, filters=4, n_layers=6)
    src, cls = disc(np.zeros((2, 16, 16, 3), "float32"))
    assert src.shape == (2, 2, 2, 1) and cls.shape == (2, 3)


def test_a_step_is_n_critic_critic_updates_and_one_generator_update():
    tf.random.set_seed(0)
    model = StarGAN(config())
    model.make_optimizers(total_steps=10)
    out = assert_every_player_moves(model, batch(model))
    assert int(model.optimizers["disc"].iterations) == 2
    assert int(model.optimizers["gen"].iterations) == 1
    hp = model.hp
    expected = out["g_adv"] + hp.lambda_cls * out["g_cls"] + hp.lambda_rec * out["rec"]
    np.testing.assert_allclose(float(out["gen_loss"]), float(expected), rtol=1e-5)
    expected = out["disc_d"] + hp.lambda_cls * out["d_cls"] + hp.gradient_penalty * out["gp_d"]
    np.testing.assert_allclose(float(out["disc_loss"]), float(expected), rtol=1e-5)


def test_both_learning_rates_decay_over_the_same_training_steps():
    # D takes n_critic updates per step: its schedule counts its own updates, so at every
    # training step both players have the same rate (a schedule in steps would hold D's at 0
    # from train_steps / n_critic on).
    model = StarGAN(config(n_critic=5))
    model.make_optimizers(total_steps=100)
    gen, disc = model.optimizers["gen"], model.optimizers["disc"]

    def rate(opt, iterations):
        opt.iterations.assign(iterations)
        return float(opt.learning_rate)

    for step in (0, 20, 50, 60, 80, 99):
        gen_lr = rate(gen, step)
        np.testing.assert_allclose(rate(disc, 5 * step), gen_lr, rtol=1e-6)
        assert gen_lr == pytest.approx(1e-4 * min(1.0, (100 - step) / 50), rel=1e-5)


def test_the_target_domain_changes_the_translation():
    model = StarGAN(config())
    x = batch(model)["x"][:2]
    outs = [np.asarray(model.translate(x, name)) for name in DOMAINS]
    assert outs[0].shape == (2, 16, 16, 3) and np.abs(outs[0]).max() <= 1
    assert not np.allclose(outs[0], outs[1])
    with pytest.raises(ValueError, match="mnist, mnist_m, digits"):
        model.translate(x, "svhn")


def test_mask_vector_variant_declares_groups_and_appends_the_mask():
    model = StarGAN(config(domains=(), domain_groups=GROUPS))
    assert model.labels == ("mnist", "mnist_m", "digits", "mnist_inverted", "mnist_colored")
    assert model.gen.get_layer("mask_vector").group_sizes == (3, 2)
    (onehot,) = [s for s in model.translation_paths()["translate"].inputs if s.kind == "onehot"]
    meta = onehot.to_metadata([None, 5])
    assert meta["labels"] == list(model.labels)
    assert meta["groups"] == [
        {"name": "dataset", "labels": ["mnist", "mnist_m", "digits"]},
        {"name": "style", "labels": ["mnist_inverted", "mnist_colored"]},
    ]
    model.make_optimizers(total_steps=10)
    out = assert_every_player_moves(model, batch(model))
    assert set(out) >= {"g_cls", "d_cls", "rec", "gp_d"}


def test_wgan_without_a_penalty_and_bad_groups_are_refused():
    with pytest.raises(ValueError, match="--gradient_penalty"):
        StarGAN.validate_config(config(gradient_penalty=0.0))
    with pytest.raises(ValueError, match="--domains"):
        StarGAN.validate_config(config(domains=("mnist", "mnist")))
    # Without --domains, the --domain_a/--domain_b pair.
    assert StarGAN(config(domains=())).labels == ("mnist", "mnist_m")
    with pytest.raises(ValueError, match="cannot read"):
        StarGAN.validate_config(config(domains=(), domain_groups="dataset"))
    with pytest.raises(ValueError, match="listed twice"):
        StarGAN.validate_config(config(domains=(), domain_groups="a=mnist,digits;b=mnist"))
    StarGAN.validate_config(config(gan_loss="lsgan", gradient_penalty=0.0))


@pytest.mark.parametrize(
    "options",
    [{}, {"residual_output": True}, {"gen_skips": True}, {"gen_condition": "norm"}],
    ids=["plain", "res", "skips", "norm"],
)
def test_translate_path_exports_with_its_two_named_inputs(tmp_path, options):
    model = StarGAN(config(domains=(), domain_groups=GROUPS, **options))
    paths = model.translation_paths()
    assert list(paths) == ["translate"]
    path = paths["translate"]
    assert [t.name for t in path.model.inputs] == path.input_names() == ["image", "target_domain"]
    result = export_declared(paths, str(tmp_path))
    assert_fp32_parity(result)
    onnx = next(a for a in result["artifacts"] if a["file"] == "translate.onnx")
    kinds = {s["name"]: s["kind"] for s in onnx["inputs"]}
    assert kinds == {"image": "image", "target_domain": "onehot"}
    assert {a["file"] for a in result["artifacts"]} >= {
        "translate.tflite",
        "translate_fp16.tflite",
        "translate_int8.tflite",
        "translate.onnx",
    }


def test_resume_with_other_domains_or_output_formula_is_refused_naming_them(tmp_path):
    import dataclasses
    import json

    from trainer.train_lib import check_model_dir

    def at(cfg):
        return cfg.replace(train=dataclasses.replace(cfg.train, model_dir=str(tmp_path)))

    old = at(config())
    (tmp_path / "config.json").write_text(json.dumps(old.to_dict()))
    check_model_dir(old)  # the same domains resume
    with pytest.raises(ValueError, match="domains mnist,mnist_m,digits"):
        check_model_dir(at(config(domains=("mnist", "digits"))))
    with pytest.raises(ValueError, match="residual_output False"):
        check_model_dir(at(config(residual_output=True)))


def test_diff_augment_reaches_what_d_sees_and_nothing_else():
    tf.random.set_seed(0)
    x = tf.constant(np.random.default_rng(3).uniform(0.5, 1.0, (8, 16, 16, 3)), tf.float32)
    model = StarGAN(config(diff_augment="translation,cutout"))
    seen = np.asarray(model.disc_input(x))
    assert (seen == 0).any() and not np.array_equal(seen, np.asarray(model.disc_input(x)))
    # G's output (the exported path) is not augmented; training still moves every player.
    np.testing.assert_array_equal(model.translate(x, "mnist"), model.translate(x, "mnist"))
    model.make_optimizers(total_steps=10)
    assert_every_player_moves(model, batch(model))
    with pytest.raises(ValueError, match="Unknown DiffAugment policy flip"):
        StarGAN.validate_config(config(diff_augment="flip"))
