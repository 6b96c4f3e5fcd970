import keras
import numpy as np
import pytest

from trainer.layers import InstanceNormalization, MinibatchStdDev, ReflectionPad2D, ResidualBlock


def _numpy_instance_norm(x, eps=1e-5):
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 16, 16, 8), (3, 4, 4, 1)])
def test_instance_norm_matches_numpy_reference(shape):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 2).astype("float32")
    y = keras.ops.convert_to_numpy(InstanceNormalization()(x))
    np.testing.assert_allclose(y, _numpy_instance_norm(x), atol=2e-5)
    # Zero mean and unit variance per sample and channel.
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)


def test_instance_norm_equals_group_norm_with_one_channel_per_group():
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 4)).astype("float32")
    ours = InstanceNormalization(center=True, scale=True)
    ref = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(ref(x)), atol=1e-5
    )
    assert len(ours.trainable_weights) == 2
    plain = InstanceNormalization()
    plain.build((None, 6, 6, 4))
    assert plain.count_params() == 0


def test_instance_norm_under_mixed_precision_computes_moments_in_float32():
    # Values whose variance underflows float16 arithmetic still normalise correctly.
    x = (np.random.default_rng(2).normal(size=(1, 4, 4, 2)) * 300).astype("float16")
    y = keras.ops.convert_to_numpy(InstanceNormalization(dtype="mixed_float16")(x))
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, _numpy_instance_norm(x.astype("float64")), atol=5e-3)


def test_instance_norm_rejects_non_image_rank():
    with pytest.raises(ValueError, match="NHWC"):
        InstanceNormalization()(np.zeros((2, 3), "float32"))


def test_reflection_pad_matches_numpy():
    x = np.arange(2 * 4 * 5 * 3, dtype="float32").reshape(2, 4, 5, 3)
    y = keras.ops.convert_to_numpy(ReflectionPad2D(((1, 2), (3, 1)))(x))
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (1, 2), (3, 1), (0, 0)), mode="reflect"))


def test_reflection_pad_on_unknown_spatial_size_matches_numpy():
    # Slices index from the end, so one graph pads any size (and is what exports fast).
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, ReflectionPad2D(((3, 1), (0, 2)))(inputs))
    for h, w in ((4, 5), (7, 3)):
        x = np.random.default_rng(h).normal(size=(1, h, w, 2)).astype("float32")
        want = np.pad(x, ((0, 0), (3, 1), (0, 2), (0, 0)), mode="reflect")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), want)


def test_reflection_pad_larger_than_input_is_a_clear_error():
    layer = ReflectionPad2D(4)
    with pytest.raises(ValueError, match="larger than the padding"):
        layer(np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match=">= 0"):
        ReflectionPad2D(-1)


def test_residual_block_shape_and_channel_check():
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 6)).astype("float32")
    block = ResidualBlock(6)
    assert block(x).shape == x.shape
    # 2 convs of 3x3x6x6 + bias, no norm parameters.
    assert block.count_params() == 2 * (9 * 6 * 6 + 6)
    with pytest.raises(ValueError, match="skip connection"):
        ResidualBlock(4)(x)


def _numpy_minibatch_stddev(x, group, eps=1e-8):
    n = len(x)
    group = min(group, n) if n % min(group, n) == 0 else n
    out = np.empty(x.shape[:-1] + (1,), x.dtype)
    for j in range(n // group):
        members = x[j :: n // group]  # image j of every group, as ProGAN's reshape takes them
        stat = np.sqrt(members.var(axis=0) + eps).mean()
        out[j :: n // group] = stat
    return np.concatenate([x, out], axis=-1)


@pytest.mark.parametrize("n, group", [(8, 4), (6, 4), (3, 4), (4, 1), (1, 4)])
def test_minibatch_stddev_matches_numpy_reference(n, group):
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(n, 3, 3, 2)) * rng.uniform(0.5, 2, size=(n, 1, 1, 1))).astype("float32")
    y = keras.ops.convert_to_numpy(MinibatchStdDev(group_size=group)(x))
    np.testing.assert_allclose(y, _numpy_minibatch_stddev(x, group), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_tells_copies_from_distinct_images():
    # The point of the feature: a batch of one image repeated has (almost) no spread.
    x = np.random.default_rng(6).normal(size=(4, 4, 4, 3)).astype("float32")
    copies = np.repeat(x[:1], 4, axis=0)
    spread = keras.ops.convert_to_numpy(MinibatchStdDev(4)(x))[..., -1]
    same = keras.ops.convert_to_numpy(MinibatchStdDev(4)(copies))[..., -1]
    assert same.max() < 1e-3 < 0.5 < spread.min()


def test_minibatch_stddev_rejects_bad_group_and_rank():
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(group_size=0)
    with pytest.raises(ValueError, match="NHWC"):
        MinibatchStdDev()(np.zeros((2, 3), "float32"))


@pytest.mark.parametrize(
    "layer",
    [
        ReflectionPad2D(((1, 2), (2, 1))),
        InstanceNormalization(center=True, scale=True, epsilon=1e-3),
        ResidualBlock(4, norm="instance", dropout=0.5),
        ResidualBlock(4, norm="none"),
        MinibatchStdDev(group_size=2, epsilon=1e-6),
    ],
    ids=["pad", "norm", "res", "res_nonorm", "mbstd"],
)
def test_layers_round_trip_through_keras_files(layer, tmp_path):
    inputs = keras.Input((8, 8, 4), name="image")
    model = keras.Model(inputs, layer(inputs))
    # Make the weights non-trivial so a load that drops them would show.
    model.set_weights([w + 0.1 * (i + 1) for i, w in enumerate(model.get_weights())])
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 4)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6
    )
    restored = type(layer).from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
