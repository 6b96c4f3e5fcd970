"""The steganography probe: a pair that hides its source in a faint signal is caught, an
honest pair is not; evaluation runs it by default for two-way methods only."""

import json
import os

import numpy as np
import pytest

from trainer import config as config_lib
from trainer.eval import evaluate as evaluate_lib
from trainer.eval import steganography
from trainer.methods import paths


class PairModel:
    """Two single-image paths given as numpy functions of [-1, 1] batches."""

    CAPABILITIES = frozenset()

    def __init__(self, config, a2b, b2a=None):
        self.config, self.fns = config, {"a2b": a2b, "b2a": b2a}

    def translation_paths(self):
        a, b = self.config.data.domain_a, self.config.data.domain_b
        out = {"a2b": paths.image_path(None, a, b, "a2b")}
        if self.fns["b2a"] is not None:
            out["b2a"] = paths.image_path(None, b, a, "b2a")
        return out

    def translate(self, x, direction):
        return self.fns[direction](np.asarray(x, np.float32))


# The hiding pair: a2b writes the source at 1/1000 of its amplitude on a constant grey image;
# b2a amplifies it back. Its cycle is perfect and its translations show nothing.
HIDE = 1e-3


def hide(x):
    return 0.2 + HIDE * x


def reveal(y):
    return (y - 0.2) / HIDE


def identity(x):
    return x


def make_config(model_dir, data_dir, n=32):
    return config_lib.Config(
        method="pair",
        data=config_lib.DataConfig(
            dataset="digits", domain_a="mnist", domain_b="mnist_m", data_dir=data_dir
        ),
        train=config_lib.TrainConfig(model_dir=str(model_dir)),
        eval=config_lib.EvalConfig(eval_examples=n),
        hparams=config_lib.HParams({}),
    )


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), np.uint8)


def test_a_hiding_pair_degrades_under_noise_and_an_honest_one_does_not(images):
    honest = PairModel(None, identity, identity)
    hiding = PairModel(None, hide, reveal)
    h = steganography.cycle_degradation(honest, images, "a2b", "b2a")
    s = steganography.cycle_degradation(hiding, images, "a2b", "b2a")
    # Both cycles reconstruct exactly without noise.
    assert h["clean"]["l1"] < 1e-6 and s["clean"]["l1"] < 1e-3 and s["clean"]["psnr"] > 60
    assert [n["stddev"] for n in h["noisy"]] == list(steganography.NOISE_STDDEVS)
    for hn, sn in zip(h["noisy"], s["noisy"]):
        # Identity passes the noise through: mean |N(0, s)| = s * sqrt(2 / pi), gain 1.
        assert hn["l1"] == pytest.approx(hn["stddev"] * np.sqrt(2 / np.pi), rel=0.05)
        assert hn["gain"] == pytest.approx(1.0, rel=1e-3)
        assert hn["psnr"] > 30
        # The hiding pair amplifies it 1000-fold.
        assert sn["gain"] == pytest.approx(1 / HIDE, rel=0.01)
        assert sn["psnr"] < hn["psnr"] - 50 and sn["psnr_drop"] > 60
    assert h["noisy"][0]["psnr"] > h["noisy"][-1]["psnr"]


def test_the_probe_reads_at_most_its_share_of_the_test_images():
    seen = []

    def counting(x):
        seen.append(len(x))
        return x

    many = np.zeros((steganography.PROBE_EXAMPLES + 40, 4, 4, 3), np.uint8)
    directions = [("a2b", "a2b", "mnist", "mnist_m"), ("b2a", "b2a", "mnist_m", "mnist")]
    x_test = {"mnist": (many, None), "mnist_m": (many[:8], None)}
    out = steganography.probe(PairModel(None, counting, counting), directions, x_test)
    assert out["a2b"]["examples"] == steganography.PROBE_EXAMPLES
    assert out["b2a"]["examples"] == 8
    # Five translations of every image read: forward, back clean, back at each noise.
    assert sum(seen) == (2 + len(steganography.NOISE_STDDEVS)) * (steganography.PROBE_EXAMPLES + 8)


def test_evaluation_reports_the_probe_by_default_for_two_way_methods(
    digit_judges, digits_data_dir, tmp_path
):
    import tensorflow as tf

    config = make_config(tmp_path / "hiding", digits_data_dir)
    writer = tf.summary.create_file_writer(str(tmp_path / "logs"))
    result = evaluate_lib.evaluate(PairModel(config, hide, reveal), config, 3, writer=writer)
    assert "steganography" in result["metric_groups"]
    stego = result["steganography"]
    assert set(stego) == {"a2b", "b2a"} and stego["a2b"]["examples"] == 32
    assert (stego["b2a"]["forward"], stego["b2a"]["back"]) == ("b2a", "a2b")
    with open(os.path.join(config.train.model_dir, "metrics.json"), encoding="utf-8") as f:
        assert json.load(f)["steganography"] == json.loads(json.dumps(stego))
    text = open(os.path.join(config.train.model_dir, "metrics.md"), encoding="utf-8").read()
    assert "Steganography probe" in text and "| a2b (a2b → b2a) | 0.05 |" in text
    assert any(line.startswith("steganography a2b") for line in result["headline"])
    tags = {}
    for name in os.listdir(tmp_path / "logs"):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "logs" / name)):
            for value in event.summary.value:
                if "steganography" in value.tag:
                    tags[value.tag] = float(tf.make_ndarray(value.tensor))
    assert tags["eval/b2a/steganography_gain_0.05"] == pytest.approx(
        stego["b2a"]["noisy"][-1]["gain"]
    )
    assert "eval/a2b/steganography_psnr_0.01" in tags


def test_one_way_methods_skip_the_probe_and_refuse_it_by_name(
    digit_judges, digits_data_dir, tmp_path
):
    config = make_config(tmp_path / "one_way", digits_data_dir)
    model = PairModel(config, identity)
    result = evaluate_lib.evaluate(model, config, 1, metrics=["transfer"])
    assert result["steganography"] is None
    result = evaluate_lib.evaluate(model, config, 1)
    assert result["steganography"] is None and "steganography" not in result["metric_groups"]
    with pytest.raises(ValueError, match="steganography.*a2b and a b2a path"):
        evaluate_lib.evaluate(model, config, 1, metrics=["steganography"])
