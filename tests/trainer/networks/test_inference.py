"""Graph-mode inference: the same outputs as an eager call, live weights, no leaked models."""

import gc
import weakref

import keras
import numpy as np

from trainer.networks import inference, resnet_generator


def test_run_matches_the_eager_call_in_inference_mode():
    model = resnet_generator(32, n_blocks=1, filters=8)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(inference.run(model, x)), np.asarray(model(x, training=False)), atol=1e-5
    )


def test_run_traces_twice_at_most_and_reads_the_current_weights():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dropout(0.5)(inputs)))
    x = np.ones((3, 4), np.float32)
    first = np.asarray(inference.run(model, x))
    # Dropout is off: inference is deterministic.
    np.testing.assert_array_equal(first, np.asarray(inference.run(model, x)))
    for n in (5, 7, 1):
        assert inference.run(model, np.ones((n, 4), np.float32)).shape == (n, 2)
    assert inference._FUNCTIONS[model].experimental_get_tracing_count() == 2
    model.layers[-1].kernel.assign(np.zeros((4, 2)))
    model.layers[-1].bias.assign(np.full((2,), 3.0))
    np.testing.assert_array_equal(np.asarray(inference.run(model, x)), np.full((3, 2), 3.0))


def test_the_cache_does_not_keep_a_discarded_model_alive():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    inference.run(model, np.ones((2, 4), np.float32))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_run_takes_a_two_input_model_and_passes_plain_callables_through():
    # StarGAN's G(x, c) and cGAN's (z, class): a list of inputs, as the evaluation feeds them.
    image, code = keras.Input((4,)), keras.Input((3,))
    joined = keras.layers.Concatenate()([image, code])
    model = keras.Model([image, code], keras.layers.Dense(2)(joined))
    args = [np.ones((5, 4), np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]]]
    np.testing.assert_allclose(
        np.asarray(inference.run(model, args)), np.asarray(model(args, training=False)), atol=1e-6
    )

    calls = []

    def wrapped(x, training=None):
        calls.append((type(x), training))
        return x

    assert inference.run(wrapped, args[0]) is args[0]
    assert calls == [(np.ndarray, False)]
    assert wrapped not in inference._FUNCTIONS
