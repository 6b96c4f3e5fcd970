"""Evaluation of noise, conditional and paired paths: perfect and constant stand-ins, real nets.

A perfect stand-in returns real test images of what it is asked for (chosen among the ones the
suite's tiny judges read correctly, so its figures are exactly 1); a constant one returns one
image whatever it is asked, and scores chance.
"""

import json
import types

import numpy as np
import pytest

from trainer import config as config_lib
from trainer.eval import classifiers, conditional, grids
from trainer.eval import evaluate as evaluate_lib
from trainer.methods import paths, registry

TINY = {"epochs": 1, "train_limit": 256}
# Judges that read every class (the suite's one-epoch ones need not), in about 20 s.
SMALL = {"epochs": 3, "train_limit": 1000, "batch_size": 16, "dropout": 0.0}
# Renderings of the same digits: one class judge (mnist's) serves every target.
STAR_DOMAINS = ("mnist", "mnist_thick", "mnist_thin")


def make_config(model_dir, data_dir, *, method="stand-in", n=60, size=32, domains=(), **hp):
    return config_lib.Config(
        method=method,
        data=config_lib.DataConfig(
            dataset="digits", domain_a="mnist", domain_b="mnist_m", domains=tuple(domains),
            data_dir=data_dir, image_size=size,
        ),
        train=config_lib.TrainConfig(model_dir=str(model_dir)),
        eval=config_lib.EvalConfig(eval_examples=n),
        hparams=config_lib.HParams(hp),
    )  # fmt: skip


def _arrays(data_dir, domain, size=32):
    return classifiers.domain_arrays("digits", domain, "test", data_dir=data_dir, image_size=size)


def _readable(judge, images, labels):
    """The test images ``judge`` reads as their label, and those labels."""
    keep = judge.predict(images) == labels
    return images[keep], labels[keep]


# -- (conditional) generate -------------------------------------------------------------------


class Generator:
    """A generate path's model: returns, for the k-th request of class c, the k-th real image
    of class c from ``bank`` (or ``constant`` for every request); records the codes it got."""

    def __init__(self, bank, bank_labels, latent=8, constant=None, conditional_=True):
        self.bank, self.bank_labels, self.constant = bank, bank_labels, constant
        self.inputs = [types.SimpleNamespace(name="z", shape=(None, latent))]
        if conditional_:
            self.inputs.append(types.SimpleNamespace(name="label", shape=(None, 10)))
        self.codes = []

    def __call__(self, args, training=False):
        z, c = args if isinstance(args, list) else (args, None)
        self.codes.append(np.asarray(z))
        if self.constant is not None:
            return np.repeat(self.constant[None], len(z), axis=0)
        asked = np.argmax(c, -1) if c is not None else np.arange(len(z)) % 10
        offset = sum(len(x) for x in self.codes[:-1])
        out = []
        for i, k in enumerate(asked):
            of_class = self.bank[self.bank_labels == k]
            out.append(of_class[(offset + i) // 10 % len(of_class)])
        return classifiers.to_float(np.stack(out))


class GenerateModel:
    CAPABILITIES = frozenset({"noise_prior", "conditional"})
    DATA = "labeled"

    def __init__(self, config, generator, prior=None, conditional_=True):
        self.config, self.generator = config, generator
        self.prior = prior or paths.normal()
        self.conditional = conditional_

    def translation_paths(self):
        inputs = (paths.Noise("z", self.prior),)
        if self.conditional:
            inputs += (paths.OneHot("label", labels=tuple(str(i) for i in range(10))),)
        return {
            "generate": paths.Path(
                model=self.generator, inputs=inputs, outputs=(paths.Image("image"),),
                target_domain="mnist", description="stand-in",
            )
        }  # fmt: skip


@pytest.fixture(scope="module")
def judges(digits_data_dir, tmp_path_factory):
    """{"root": their cache, "mnist": class judge, "domains": STAR_DOMAINS judge}."""
    root = str(tmp_path_factory.mktemp("judges"))
    kw = dict(data_dir=digits_data_dir, cache_root=root, **SMALL)
    return {
        "root": root,
        # Thin and thick strokes are read by the mnist judge, as in evaluation: trained longer
        # than the others so that it reads every class of them.
        "mnist": classifiers.class_classifier(
            "digits", "mnist", **{**kw, "epochs": 6, "train_limit": 4000}
        ),
        "domains": classifiers.domains_classifier("digits", STAR_DOMAINS, **kw),
    }


def run(model, config, step, judges, **kwargs):
    return evaluate_lib.evaluate(model, config, step, cache_root=judges["root"], **kwargs)


@pytest.fixture(scope="module")
def mnist_bank(judges, digits_data_dir):
    x, y = _arrays(digits_data_dir, "mnist")
    x, y = _readable(judges["mnist"], x, y)
    assert set(y) == set(range(10)), "the tiny mnist judge reads no example of some class"
    return x, y


def test_perfect_conditional_generator_scores_one_and_a_constant_one_chance(
    mnist_bank, judges, digits_data_dir, tmp_path
):
    config = make_config(tmp_path / "perfect", digits_data_dir)
    result = run(GenerateModel(config, Generator(*mnist_bank)), config, 3, judges)
    e = result["generated"]["generate"]
    assert e["kind"] == conditional.CONDITIONAL_GENERATE and e["examples"] == 60
    assert e["class_accuracy"] == 1.0
    assert e["per_class_accuracy"] == {str(k): 1.0 for k in range(10)}
    assert e["class_judge"] == "mnist" and 0 < e["real_class_accuracy"] <= 1
    assert e["fid"] is not None and e["real_fid"] is not None

    constant = Generator(*mnist_bank, constant=mnist_bank[0][0])
    config_c = make_config(tmp_path / "constant", digits_data_dir)
    c = run(GenerateModel(config_c, constant), config_c, 3, judges)["generated"]
    c = c["generate"]
    # One image, one class, every class asked for equally: exactly a tenth are right.
    assert c["class_accuracy"] == pytest.approx(0.1)
    assert c["fid"] > 3 * e["fid"] and c["kid"] > e["kid"]
    assert result["directions"] == {} and result["conditional"] == {}
    assert evaluate_lib.unmeasured_paths(GenerateModel(config, constant)) == []


def test_generate_reports_and_grid(mnist_bank, judges, digits_data_dir, tmp_path):
    config = make_config(tmp_path / "run", digits_data_dir, n=80)
    result = run(GenerateModel(config, Generator(*mnist_bank)), config, 5, judges)
    saved = json.load(open(result["files"]["json"], encoding="utf-8"))
    assert saved["schema_version"] == 2 and saved["generated"]["generate"]["target"] == "mnist"
    assert saved["metric_groups"] == ["fid", "class", "samples"]
    assert set(saved["classifiers"]) == {"mnist"}
    assert any(line.startswith("class accuracy generate 1.000") for line in saved["headline"])
    text = open(result["files"]["markdown"], encoding="utf-8").read()
    assert "| generate | mnist | 80 | 1.000 |" in text
    assert "Dataset `digits`, domains `mnist`;" in text
    assert "| class | 0 | 1 | 2 |" in text
    from PIL import Image

    grid = np.asarray(Image.open(result["files"]["samples"]))
    # One row per class, eight samples each.
    assert grid.shape[0] == 10 * 34 + 2
    # Class 3's first sample is the first readable 3 of the bank.
    x, y = mnist_bank
    margin = grid.shape[1] - (8 * 34 + 2)
    cell = grid[2 + 3 * 34 : 2 + 3 * 34 + 32, margin + 2 : margin + 34]
    np.testing.assert_array_equal(cell, x[y == 3][0])


def test_unconditional_generator_draws_from_the_declared_prior(
    mnist_bank, judges, digits_data_dir, tmp_path
):
    config = make_config(tmp_path / "run", digits_data_dir, n=64)
    generator = Generator(*mnist_bank, latent=5, conditional_=False)
    model = GenerateModel(config, generator, prior=paths.uniform(-2, 2), conditional_=False)
    result = run(model, config, 1, judges, metrics=["fid"])
    z = np.concatenate(generator.codes)
    assert z.shape == (64, 5) and z.min() >= -2 and z.max() <= 2 and z.min() < -1.5
    e = result["generated"]["generate"]
    assert e["kind"] == conditional.GENERATE and e["class_accuracy"] is None
    assert e["fid"] is not None and result["metric_groups"] == ["fid"]
    assert result["files"]["samples"] is None
    with pytest.raises(ValueError, match="--metrics=class: class accuracy measures"):
        run(model, config, 1, judges, metrics=["class"])
    with pytest.raises(ValueError, match="--metrics=transfer: transfer accuracy measures"):
        run(model, config, 1, judges, metrics=["transfer"])


# -- conditional translation ------------------------------------------------------------------


class Translator:
    """An (image, target one-hot) path's model: returns a real test image of the target domain
    with the source image's class (``perfect``), or one constant image."""

    def __init__(self, sources, targets, constant=None):
        self.label_of = {img.tobytes(): int(y) for x, ys in sources for img, y in zip(x, ys)}
        self.targets, self.constant = targets, constant

    def __call__(self, args, training=False):
        x, c = args
        if self.constant is not None:
            return np.repeat(self.constant[None], len(x), axis=0)
        out = []
        for image, t in zip(grids.to_uint8(x), np.argmax(c, -1)):
            bank, labels = self.targets[t]
            out.append(bank[labels == self.label_of[image.tobytes()]][0])
        return classifiers.to_float(np.stack(out))


class StarModel:
    CAPABILITIES = frozenset({"conditional"})
    DATA = "multi_domain"

    def __init__(self, config, translator):
        self.config, self.translator = config, translator

    def translation_paths(self):
        return {
            "translate": paths.Path(
                model=self.translator,
                inputs=(paths.Image("image"), paths.OneHot("target_domain", STAR_DOMAINS)),
                outputs=(paths.Image("translated"),), description="stand-in",
            )
        }  # fmt: skip


@pytest.fixture(scope="module")
def star_setup(judges, digits_data_dir):
    sources, targets = [], []
    for t, domain in enumerate(STAR_DOMAINS):
        x, y = _arrays(digits_data_dir, domain)
        sources.append((x, y))
        keep = (judges["mnist"].predict(x) == y) & (judges["domains"].predict(x) == t)
        assert set(y[keep]) == set(range(10)), f"no readable example of some class in {domain}"
        targets.append((x[keep], y[keep]))
    return sources, targets


def test_perfect_translator_scores_one_and_a_constant_one_low(
    star_setup, judges, digits_data_dir, tmp_path
):
    sources, targets = star_setup
    config = make_config(tmp_path / "perfect", digits_data_dir, n=30, domains=STAR_DOMAINS)
    model = StarModel(config, Translator(sources, targets))
    result = run(model, config, 2, judges)
    e = result["conditional"]["translate"]
    assert e["domains"] == list(STAR_DOMAINS)
    for target, t in e["targets"].items():
        assert t["sources"] == [d for d in STAR_DOMAINS if d != target]
        assert t["examples"] == 30 and t["domain_accuracy"] == 1.0
        assert t["class_preservation"] == 1.0 and t["fid"] is not None
    # Derived style domains have no digit classifier of their own: mnist's judges them.
    assert {t["class_judge"] for t in e["targets"].values()} == {"mnist"}
    assert e["average"]["domain_accuracy"] == 1.0 and e["average"]["class_preservation"] == 1.0
    assert set(result["classifiers"]) == {"domains", "mnist"}
    assert evaluate_lib.unmeasured_paths(model) == []

    constant = StarModel(config, Translator(sources, targets, constant=targets[0][0][0]))
    config_c = make_config(tmp_path / "constant", digits_data_dir, n=30, domains=STAR_DOMAINS)
    c = run(constant, config_c, 2, judges)
    avg = c["conditional"]["translate"]["average"]
    # One image lands in one domain: right for one target of three, wrong for the others.
    assert avg["domain_accuracy"] == pytest.approx(1 / 3)
    assert avg["class_preservation"] < 0.35 and avg["fid"] > e["average"]["fid"]


def test_translation_grid_and_tables(star_setup, judges, digits_data_dir, tmp_path):
    sources, targets = star_setup
    config = make_config(tmp_path / "run", digits_data_dir, n=12, domains=STAR_DOMAINS)
    translator = Translator(sources, targets)
    result = run(StarModel(config, translator), config, 4, judges)
    from PIL import Image

    grid = np.asarray(Image.open(result["files"]["samples"]))
    # One row per source image (8), one column for the source and one per target domain.
    assert grid.shape[0] == 8 * 34 + 2
    margin = grid.shape[1] - (4 * 34 + 2)
    assert 10 < margin < 120
    row = 4  # the second image of mnist_thick
    source = sources[1][0][1]
    for col in range(4):
        cell = grid[
            2 + row * 34 : 2 + row * 34 + 32, margin + 2 + col * 34 : margin + col * 34 + 34
        ]
        if col == 0:
            expected = source
        else:
            bank, labels = targets[col - 1]
            expected = bank[labels == sources[1][1][1]][0]
        np.testing.assert_array_equal(cell, expected)
    text = open(result["files"]["markdown"], encoding="utf-8").read()
    assert "| mnist_thin | 12 | 1.000 | 1.000 (mnist) |" in text
    assert "| **average** | | 1.000 | 1.000 |" in text
    assert "every domain of the run (domain)" in text
    assert "columns: the source, then its translation into mnist, mnist_thick, mnist_thin" in text
    assert any(line.startswith("translate averaged over 3 target domains") for line in
               result["headline"])  # fmt: skip


# -- paired -----------------------------------------------------------------------------------


class PairedModel:
    CAPABILITIES = frozenset()
    DATA = "paired"

    def __init__(self, config, lookup=None):
        self.config, self.lookup = config, lookup

    def translation_paths(self):
        return {"a2b": paths.image_path(None, "mnist", "mnist_m", "stand-in")}

    def translate(self, x, direction):
        if self.lookup is None:
            return np.asarray(x)
        return classifiers.to_float(
            np.stack([self.lookup[img.tobytes()] for img in grids.to_uint8(x)])
        )


def test_paired_l1_and_psnr(digit_judges, digits_data_dir, tmp_path):
    config = make_config(tmp_path / "identity", digits_data_dir, n=16)
    result = evaluate_lib.evaluate(PairedModel(config), config, 1, metrics=["paired"])
    e, base = result["directions"]["a2b"], result["baselines"]["a2b"]
    assert e["l1"] == pytest.approx(base["identity_l1"]) and e["l1"] > 0.05
    assert e["psnr"] == pytest.approx(base["identity_psnr"]) and e["psnr"] < 30

    xa, _ = _arrays(digits_data_dir, "mnist")
    xb, _ = _arrays(digits_data_dir, "mnist_m")
    lookup = {a.tobytes(): b for a, b in zip(xa, xb)}
    config = make_config(tmp_path / "perfect", digits_data_dir, n=16)
    result = evaluate_lib.evaluate(PairedModel(config, lookup), config, 1)
    e = result["directions"]["a2b"]
    assert e["l1"] == 0.0 and e["psnr"] == 100.0
    assert result["metric_groups"] == ["transfer", "fid", "paired", "samples"]
    text = open(result["files"]["markdown"], encoding="utf-8").read()
    assert "| a2b (mnist → mnist_m) | 0.0000 | 100.00 |" in text
    assert any(line.startswith("paired a2b L1 0.0000") for line in result["headline"])


class UnpairedModel(PairedModel):
    DATA = "unpaired"


def test_paired_metrics_need_paired_data(digit_judges, digits_data_dir, tmp_path):
    config = make_config(tmp_path / "run", digits_data_dir, n=8)
    model = UnpairedModel(config)
    with pytest.raises(ValueError, match="--metrics=paired: L1/PSNR .* needs a method"):
        evaluate_lib.evaluate(model, config, 1, metrics=["paired"])
    result = evaluate_lib.evaluate(model, config, 1)
    assert result["directions"]["a2b"]["l1"] is None


def test_psnr_and_l1_formulas():
    x = np.zeros((2, 4, 4, 3), np.float32)
    y = np.full_like(x, 0.5)
    assert conditional.l1(x, y) == pytest.approx(0.5)
    # MSE 0.25 on a peak-to-peak range of 2: 10 log10(4 / 0.25).
    assert conditional.psnr(x, y) == pytest.approx(10 * np.log10(16))
    assert conditional.psnr(x, x) == 100.0


# -- the real methods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, kind",
    [
        ("gan", conditional.GENERATE),
        ("cgan", conditional.CONDITIONAL_GENERATE),
        ("stargan", conditional.CONDITIONAL_TRANSLATION),
    ],
)
def test_the_family_paths_are_measured(method, kind, method_config):
    model = registry.build(method_config(method))
    assert [conditional.path_kind(p) for p in model.translation_paths().values()] == [kind]
    assert evaluate_lib.unmeasured_paths(model) == []


@pytest.mark.parametrize("method", ["cgan", "stargan"])
def test_untrained_networks_evaluate(
    method, method_config, digit_judges, digits_data_dir, tmp_path
):
    """The real networks run through their exported models: inputs fed by declared name."""
    config = method_config(method, model_dir=tmp_path / method)
    config = config.replace(
        data=config_lib.DataConfig(image_size=16, data_dir=digits_data_dir),
        eval=config_lib.EvalConfig(eval_examples=20),
    )
    model = registry.build(config)
    result = evaluate_lib.evaluate(model, config, 0, classifier_kwargs=TINY)
    if method == "cgan":
        e = result["generated"]["generate"]
        assert 0 <= e["class_accuracy"] <= 1 and e["fid"] > 0 and e["examples"] == 20
    else:
        e = result["conditional"]["translate"]
        assert list(e["targets"]) == ["mnist", "mnist_m"]
        assert all(0 <= t["domain_accuracy"] <= 1 for t in e["targets"].values())
        assert set(result["classifiers"]) == {"domains", "mnist", "mnist_m"}
    assert not any("not measured" in n for n in result["notes"])


@pytest.mark.parametrize("run", [conditional.run_path, conditional.run_outputs])
def test_a_path_without_a_model_is_refused_by_name(run):
    path = paths.Path(
        model=None, inputs=(paths.Noise("z", {"distribution": "normal"}),),
        outputs=(paths.Image("image"),), exported=False, description="python-only",
    )  # fmt: skip
    with pytest.raises(ValueError, match="'python-only' has no model"):
        run(path, {"z": np.zeros((2, 4), np.float32)})


def test_digit_kept_among_both_writer_sets_is_read_by_the_cross_writer_judge(
    digits_data_dir, tmp_path
):
    loaded = []

    def load(kind, *names):
        loaded.append((kind, names))
        return types.SimpleNamespace(kind=kind, names=names)

    def pick(domains, labelled=True):
        loaded.clear()
        config = make_config(tmp_path, digits_data_dir, domains=domains)
        x_test = {d: (None, np.zeros(1) if labelled else None) for d in domains}
        judges = {}
        out = evaluate_lib._conditional_class_judges(config, domains, x_test, judges, load)
        return {d: name for d, (name, _) in out.items()}, judges

    both = ("mnist", "digits", "mnist_thick")
    names, judges = pick(both)
    assert loaded == [("cross_writer", both)] and set(judges) == {"cross_writer"}
    assert names == dict.fromkeys(both, "cross_writer")
    # MNIST's writers only: each target's own judge, mnist's for a derived style.
    names, _ = pick(("mnist", "mnist_m", "mnist_thick"))
    assert names == {"mnist": "mnist", "mnist_m": "mnist_m", "mnist_thick": "mnist"}
    assert ("class", ("mnist",)) in loaded and all(k == "class" for k, _ in loaded)
    # Without labels there is nothing to read the digit with.
    assert pick(both, labelled=False)[0] == {} and loaded == []


def test_a_cross_writer_judge_weak_on_one_domain_is_named():
    info = {"test_accuracy": 0.97, "train_examples": 10, "test_examples": 10,
            "per_domain_test_accuracy": {"mnist": 0.98, "digits": 0.99, "mnist_m": 0.93}}  # fmt: skip
    judge = types.SimpleNamespace(info=info, path="judge.keras")
    notes = evaluate_lib._judge_notes({"cross_writer": judge})
    assert len(notes) == 1 and "mnist_m's test images only 0.930" in notes[0]
    entry = evaluate_lib._classifier_entries({"cross_writer": judge})["cross_writer"]
    assert entry["below_bar"] and entry["per_domain_test_accuracy"]["mnist_m"] == 0.93
    info["per_domain_test_accuracy"]["mnist_m"] = 0.96
    assert evaluate_lib._judge_notes({"cross_writer": judge}) == []
    assert not evaluate_lib._classifier_entries({"cross_writer": judge})["cross_writer"][
        "below_bar"
    ]
