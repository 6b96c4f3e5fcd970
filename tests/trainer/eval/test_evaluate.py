"""evaluate(): transfer accuracy against its baselines, metrics.json schema, reports, no labels."""

import json
import os

import numpy as np
import pytest

from trainer import config as config_lib
from trainer.eval import classifiers, grids
from trainer.eval import evaluate as evaluate_lib
from trainer.methods import paths


class IdentityModel:
    """A "translation" that returns its input: every figure must equal the identity baseline."""

    CAPABILITIES = frozenset()

    def __init__(self, config):
        self.config = config
        self.calls = []

    def translation_paths(self):
        a, b = self.config.data.domain_a, self.config.data.domain_b
        return {
            "a2b": paths.image_path(None, a, b, "identity"),
            "b2a": paths.image_path(None, b, a, "identity"),
        }

    def translate(self, x, direction):
        self.calls.append((direction, len(x)))
        return np.asarray(x)


class UDAModel(IdentityModel):
    """Classifies target images with the target domain's own classifier (the oracle)."""

    CAPABILITIES = frozenset({"uda"})

    def __init__(self, config, judge):
        super().__init__(config)
        self.judge = judge

    def classify(self, x, domain="b"):
        assert domain == "b"
        return classifiers.predict_logits(self.judge.model, x)


def make_config(model_dir, data_dir, *, dataset="digits", a="mnist", b="mnist_m", n=64, **hp):
    return config_lib.Config(
        method="identity",
        data=config_lib.DataConfig(dataset=dataset, domain_a=a, domain_b=b, data_dir=data_dir),
        train=config_lib.TrainConfig(model_dir=str(model_dir)),
        eval=config_lib.EvalConfig(eval_examples=n),
        hparams=config_lib.HParams(hp),
    )


@pytest.fixture
def identity_result(digit_judges, digits_data_dir, tmp_path):
    config = make_config(tmp_path / "run", digits_data_dir)
    model = IdentityModel(config)
    return evaluate_lib.evaluate(model, config, 7), model, config


def test_identity_translation_scores_the_identity_baseline(identity_result):
    result, model, _ = identity_result
    assert set(result["directions"]) == {"a2b", "b2a"}
    for role in ("a2b", "b2a"):
        e, base = result["directions"][role], result["baselines"][role]
        assert e["examples"] == 64
        assert e["transfer_accuracy"] == base["identity_accuracy"]
        assert e["domain_score"] == base["identity_domain_score"]
        assert e["fid"] == pytest.approx(base["identity_fid"], rel=1e-6)
        assert 0.0 <= e["transfer_accuracy"] <= 1.0 and e["fid"] > 0
    # eval_examples caps the images per domain; grids translate back along the other path.
    assert ("a2b", 64) in model.calls and ("b2a", 8) in model.calls


def test_metrics_json_schema_and_markdown(identity_result):
    result, _, config = identity_result
    model_dir = config.train.model_dir
    with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(result))
    expected_keys = {
        "schema_version", "step", "method", "dataset", "domains", "measured_domains",
        "eval_examples", "has_labels",
        "feature_space", "metric_groups", "directions", "baselines", "pairs", "generated",
        "conditional", "uda", "steganography", "classifiers", "notes", "headline", "seconds",
        "files",
    }  # fmt: skip
    assert set(saved) == expected_keys
    assert saved["pairs"] == {}  # two domains: a2b and b2a measure every path
    assert saved["schema_version"] == 2 and saved["step"] == 7 and saved["method"] == "identity"
    assert saved["domains"] == {"a": "mnist", "b": "mnist_m"} and saved["has_labels"]
    assert saved["feature_space"] == "digit" and saved["uda"] is None
    direction_keys = {
        "path", "source", "target", "examples", "label_offset", "transfer_accuracy",
        "domain_score", "fid", "kid", "kid_std", "inception_fid", "inception_kid",
        "inception_kid_std", "l1", "psnr",
    }  # fmt: skip
    assert set(saved["directions"]["a2b"]) == direction_keys
    baseline_keys = {
        "identity_accuracy", "identity_domain_score", "identity_fid", "identity_kid",
        "source_only_accuracy", "oracle_accuracy", "identity_l1", "identity_psnr",
    }  # fmt: skip
    assert set(saved["baselines"]["b2a"]) == baseline_keys
    assert set(saved["classifiers"]) == {"domain", "mnist", "mnist_m"}
    assert all(0 <= c["test_accuracy"] <= 1 for c in saved["classifiers"].values())
    assert saved["directions"]["a2b"]["source"] == "mnist"
    assert saved["headline"][0].startswith("transfer a2b ")
    assert any(line.startswith("digit FID a2b") for line in saved["headline"])

    text = open(os.path.join(model_dir, "metrics.md"), encoding="utf-8").read()
    assert "digit FID" in text and "| a2b (mnist → mnist_m) |" in text
    assert "source-only accuracy" in text and "oracle accuracy" in text

    from PIL import Image

    grid = np.asarray(Image.open(saved["files"]["samples"]))
    # Two directions x rows (x_a, x_ab, x_aba), 8 images of 32 px with 2 px gaps, after a
    # margin holding each row's label.
    margin = grid.shape[1] - (8 * 34 + 2)
    assert grid.shape[0] == 6 * 34 + 2 and 10 < margin < 80
    expected = grids.image_grid(
        [np.zeros((8, 32, 32, 3))] * 6,
        labels=["x_a", "x_ab", "x_aba", "x_b", "x_ba", "x_bab"],
    )
    np.testing.assert_array_equal(grid[:, :margin], expected[:, :margin])
    for r in range(6):
        band = grid[2 + r * 34 : 2 + r * 34 + 32, :margin]
        assert band.min() < 100, f"row {r} has no label"


def test_weak_judges_are_named_in_every_report(identity_result):
    result, _, _ = identity_result
    weak = [n for n, c in result["classifiers"].items() if c["below_bar"]]
    for name in ("mnist", "mnist_m"):
        below = result["classifiers"][name]["test_accuracy"] < classifiers.accuracy_bar(name)
        assert result["classifiers"][name]["below_bar"] == below
    assert weak, "the suite's one-epoch judges should be below their bars"
    text = open(result["files"]["markdown"], encoding="utf-8").read()
    for name in weak:
        assert any(name in note and "bar" in note for note in result["notes"])
        assert any(name in line and "bar" in line for line in result["headline"])
        assert "(below its bar)" in text


def test_reports_go_to_a_remote_model_dir(digit_judges, digits_data_dir, tmp_path, monkeypatch):
    """A model dir on a TensorFlow file system (ram://) gets metrics and samples; the local
    working directory gets nothing."""
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    model_dir = "ram://eval_run"
    config = make_config(model_dir, digits_data_dir, n=8)
    result = evaluate_lib.evaluate(IdentityModel(config), config, 5)
    for key in ("json", "markdown", "samples"):
        assert result["files"][key].startswith(model_dir)
        assert tf.io.gfile.exists(result["files"][key]), key
    saved = json.loads(tf.io.gfile.GFile(result["files"]["json"]).read())
    assert saved["step"] == 5
    assert os.listdir(tmp_path) == []


def test_tensorboard_scalars(digit_judges, digits_data_dir, tmp_path):
    import tensorflow as tf

    config = make_config(tmp_path / "run", digits_data_dir, n=16)
    writer = tf.summary.create_file_writer(str(tmp_path / "logs"))
    result = evaluate_lib.evaluate(IdentityModel(config), config, 3, writer=writer)
    tags = {}
    for name in os.listdir(tmp_path / "logs"):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "logs" / name)):
            for value in event.summary.value:
                tags[value.tag] = (event.step, value)
    assert tags["eval/a2b/transfer_accuracy"][0] == 3
    value = float(tf.make_ndarray(tags["eval/b2a/domain_score"][1].tensor))
    assert value == pytest.approx(result["directions"]["b2a"]["domain_score"])
    assert {"eval/a2b/fid", "eval/a2b/kid", "eval/samples"} <= set(tags)


def test_uda_accuracy_and_gap_closed(digit_judges, digits_data_dir, tmp_path):
    config = make_config(tmp_path / "run", digits_data_dir, n=32, uda=True)
    result = evaluate_lib.evaluate(UDAModel(config, digit_judges["mnist_m"]), config, 1)
    uda = result["uda"]
    assert uda["accuracy"] == uda["oracle_accuracy"]
    assert uda["source_only_accuracy"] == result["baselines"]["a2b"]["source_only_accuracy"]
    if uda["gap_closed"] is not None:
        assert uda["gap_closed"] == pytest.approx(1.0)
    assert any(line.startswith("UDA accuracy") for line in result["headline"])


def test_uda_needs_a_uda_model(digit_judges, digits_data_dir, tmp_path):
    config = make_config(tmp_path / "run", digits_data_dir, n=8)
    with pytest.raises(ValueError, match="--uda"):
        evaluate_lib.evaluate(IdentityModel(config), config, 1, metrics=["uda"])


def test_label_offsets_of_the_class_split_pair():
    assert evaluate_lib.label_offset("mnist_0_4", "mnist_5_9") == 5
    assert evaluate_lib.label_offset("mnist_5_9", "mnist_0_4") == -5
    assert evaluate_lib.label_offset("mnist", "mnist_m") == 0


@pytest.fixture
def folder_root(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "folders"
    for split, n in (("train", 24), ("test", 10)):
        for domain, base in (("A", 40), ("B", 200)):
            folder = root / f"{split}{domain}"
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(base + rng.normal(0, 20, (24, 24, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return str(root)


def test_dataset_without_labels_skips_label_metrics(folder_root, tmp_path):
    config = make_config(tmp_path / "run", folder_root, dataset="folder", a="A", b="B", n=8)
    result = evaluate_lib.evaluate(IdentityModel(config), config, 2)
    assert not result["has_labels"] and result["feature_space"] == "domain-classifier"
    assert any("no class labels" in note for note in result["notes"])
    e = result["directions"]["a2b"]
    assert e["transfer_accuracy"] is None and e["fid"] is not None and e["examples"] == 8
    assert set(result["classifiers"]) == {"domain"}
    assert result["headline"][0].startswith("domain a2b")
    text = open(result["files"]["markdown"], encoding="utf-8").read()
    assert "domain-classifier FID" in text and "no class labels" in text

    with pytest.raises(ValueError, match="no class labels"):
        evaluate_lib.evaluate(IdentityModel(config), config, 2, metrics=["transfer"])


def test_unknown_metric_group_is_an_error(digits_data_dir, tmp_path):
    config = make_config(tmp_path / "run", digits_data_dir)
    with pytest.raises(ValueError, match="Unknown metrics"):
        evaluate_lib.evaluate(IdentityModel(config), config, 1, metrics=["bleu"])


# -- sample grids -------------------------------------------------------------------------------


def test_sample_grid_rows_are_labelled_from_either_shape():
    x = np.zeros((2, 8, 8, 3), np.float32)
    plain = {"a2b": [x, x, x], "pairs": [x, x]}
    named = {
        "a2b": [("x_a", x), ("x_ab", x), ("x_aba", x)],
        "pairs": [("pairs 1", x), ("pairs 2", x)],
    }
    assert [n for n, _ in grids.named_rows(plain)] == ["x_a", "x_ab", "x_aba", "pairs 1", "pairs 2"]
    np.testing.assert_array_equal(grids.labelled_grid(plain), grids.labelled_grid(named))
    other = {"a2b": [("source", x), ("x_ab", x), ("x_aba", x)], "pairs": [x, x]}
    assert not np.array_equal(grids.labelled_grid(plain), grids.labelled_grid(other))
    unlabelled = grids.image_grid([x] * 5)
    assert grids.labelled_grid(plain).shape[1] > unlabelled.shape[1]
    with pytest.raises(ValueError, match="2 labels for 5 rows"):
        grids.image_grid([x] * 5, labels=["a", "b"])


def test_write_samples_through_the_file_layer(tmp_path):
    import tensorflow as tf

    class Model:
        def sample_images(self, batch):
            return {"b2a": [batch, -batch]}

    batch = np.linspace(-1, 1, 2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3)
    for model_dir in (str(tmp_path / "run"), "ram://samples_run"):
        path = grids.write_samples(Model(), batch, model_dir, 12)
        assert path == os.path.join(model_dir, "samples", "step_000012.png")
        data = tf.io.gfile.GFile(path, "rb").read()
        import io

        from PIL import Image

        grid = np.asarray(Image.open(io.BytesIO(data)))
        np.testing.assert_array_equal(grid, grids.labelled_grid(Model().sample_images(batch)))
