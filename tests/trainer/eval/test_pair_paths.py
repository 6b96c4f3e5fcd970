"""Evaluation measures every ordered pair path ``<d1>2<d2>`` of a multi-domain method: transfer
accuracy and domain score per path, in metrics.json, metrics.md and the headline.

Stand-ins keep it fast: images carry their digit in channel 0 and their domain in channel 1,
the stand-in judges read those channels, and the stand-in model writes its target domain into
channel 1 (keeping channel 0), except for one path that returns its input."""

import json

import numpy as np
import pytest

from trainer import config as config_lib
from trainer.eval import evaluate
from trainer.methods import paths

DOMAINS = ("mnist", "mnist_m", "digits")
IDLE = "digits2mnist"  # returns its input: keeps the class, not the domain
N = 20


def _float(images):
    x = np.asarray(images)
    return x / 127.5 - 1.0 if x.dtype == np.uint8 else x.astype(np.float32)


def _channel(images, c, step):
    return np.rint((_float(images)[..., c].mean(axis=(1, 2)) + 1.0) / step).astype(int)


class StandInJudge:
    """A class judge (channel 0) or a judge of ``domains`` (channel 1)."""

    info = {"test_accuracy": 1.0, "train_examples": 0, "test_examples": 0}
    path = "stand-in"

    def __init__(self, domains=None):
        self.domains = domains

    def predict(self, images):
        if self.domains is None:
            return _channel(images, 0, 0.2)
        codes = _channel(images, 1, 0.5)
        index = {DOMAINS.index(d): i for i, d in enumerate(self.domains)}
        return np.asarray([index.get(int(c), -1) for c in codes])


def domain_images(domain, labels):
    x = np.zeros((len(labels), 8, 8, 3), np.float32) - 1.0
    x[..., 0] += 0.2 * labels[:, None, None]
    x[..., 1] += 0.5 * DOMAINS.index(domain)
    return np.rint((x + 1.0) * 127.5).astype(np.uint8)


class PairModel:
    CAPABILITIES = frozenset()

    def __init__(self, config, domains=DOMAINS):
        self.config = config
        self.names = {f"{s}2{t}": (s, t) for s in domains for t in domains if s != t}

    def translation_paths(self):
        return {n: paths.image_path(None, s, t, "stand-in") for n, (s, t) in self.names.items()}

    def translate(self, x, direction):
        out = np.array(x, np.float32, copy=True)
        if direction != IDLE:
            out[..., 1] = -1.0 + 0.5 * DOMAINS.index(self.names[direction][1])
        return out


@pytest.fixture
def stand_ins(monkeypatch):
    """Evaluation reading the stand-in test images and judges; returns the judges it loads."""
    labels = np.arange(N) % 10
    monkeypatch.setattr(
        evaluate, "_test_arrays", lambda config, d: (domain_images(d, labels), labels)
    )
    loaded = []

    def judge(kind, config, *domains, **kwargs):
        loaded.append((kind, domains))
        return StandInJudge(None if kind == "class" else domains)

    monkeypatch.setattr(evaluate, "_judge", judge)
    return loaded


def make_config(model_dir):
    return config_lib.Config(
        method="stand-in",
        data=config_lib.DataConfig(dataset="digits", domain_a="mnist", domain_b="mnist_m"),
        train=config_lib.TrainConfig(model_dir=str(model_dir)),
        eval=config_lib.EvalConfig(eval_examples=N),
        hparams=config_lib.HParams({}),
    )


def test_every_ordered_pair_path_is_measured(stand_ins, tmp_path):
    config = make_config(tmp_path)
    result = evaluate.evaluate(PairModel(config), config, 3, metrics=["transfer"])
    pairs = result["pairs"]
    assert list(pairs) == [f"{s}2{t}" for s in DOMAINS for t in DOMAINS if s != t]
    assert ("domains", DOMAINS) in stand_ins  # one judge of every domain, in --domains order
    for name, e in pairs.items():
        assert (e["source"], e["target"]) == tuple(name.split("2")) and e["examples"] == N
        assert e["transfer_accuracy"] == 1.0 and e["identity_accuracy"] == 1.0
        assert e["domain_score"] == (0.0 if name == IDLE else 1.0), name
        assert e["identity_domain_score"] == 0.0
    assert result["directions"]["a2b"]["path"] == "mnist2mnist_m"
    assert not any("not measured" in n for n in result["notes"])
    assert any(
        line.startswith("every pair (6 paths): transfer mean 1.00")
        and f"lowest 0.00 ({IDLE})" in line
        for line in result["headline"]
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["pairs"] == pairs
    md = (tmp_path / "metrics.md").read_text()
    assert f"| {IDLE} | digits → mnist | 1.000 | 0.000 | 1.000 | 0.000 |" in md
    assert "| mnist2digits | mnist → digits | 1.000 | 1.000 |" in md


def test_a_two_domain_method_has_no_pair_rows(stand_ins, tmp_path):
    config = make_config(tmp_path)
    model = PairModel(config, domains=("mnist", "mnist_m"))
    assert evaluate.pair_paths(model, config) == []
    result = evaluate.evaluate(model, config, 3, metrics=["transfer"])
    assert result["pairs"] == {} and set(result["directions"]) == {"a2b", "b2a"}
    assert not any(kind == "domains" for kind, _ in stand_ins)


def test_pair_figures_reach_tensorboard(stand_ins, tmp_path):
    import tensorflow as tf

    config = make_config(tmp_path / "run")
    writer = tf.summary.create_file_writer(str(tmp_path / "tb"))
    evaluate.evaluate(PairModel(config), config, 3, writer, metrics=["transfer"])
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(next((tmp_path / "tb").iterdir()))):
        tags |= {v.tag for v in event.summary.value}
    assert {f"eval/pairs/{IDLE}/transfer_accuracy", f"eval/pairs/{IDLE}/domain_score"} <= tags
