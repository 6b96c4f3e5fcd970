"""The method contract: every registered method, on tiny shapes, held to what the stages need.

A method is registered by one line in ``trainer/methods/registry.py``; this module then checks
it, clause by clause (each failure message starts with the clause's name):

- declarations: DATA is a data kind, CAPABILITIES are known names and match what the method
  has (a ``classify`` head for "uda", a noise input for "noise_prior", a one-hot input for
  "conditional"), every hyperparameter has help, and ``shape=True`` marks exactly the
  hyperparameters that change variable shapes (found by building with each one changed);
- paths: ``translation_paths()`` gives ``{name: Path}`` whose declared inputs and outputs are
  the names of the path's Keras model;
- training step: one ``train_step`` (the method's update cycle) moves every variable of every
  player it trains (``active_players()``: all of them unless the method trains in phases) and
  leaves everything else (frozen parts, other phases' players) bit-identical; the GAN vocabulary holds
  (wgan refused without a constraint; the gradient penalty in the discriminator step; clipped
  critic weights stay in range);
- samples: the sample grid's rows are images in [-1, 1], and a two-way method's a2b and b2a
  rows show the input, its translation and the translation back;
- checkpoint: a checkpoint restores into a fresh build, bit-identical, and training continues;
- export: every exported path writes every format; fp32 TFLite and ONNX pass 1e-3, quantized
  variants run and report their figure; ``export.runtime.Translator`` runs each artifact from
  its metadata alone (noise drawn from the declared prior) and agrees with Keras; the exported
  graph's inputs are the declared ones;
- resume: a run resumed with any changed ``shape=True`` hyperparameter is refused up front,
  naming it.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer.methods import base, registry
from trainer.methods.paths import Path

METHODS = sorted(registry.METHODS)
SIZE = 16  # image size of every contract build
KNOWN_CAPABILITIES = base.KNOWN_CAPABILITIES


def with_capabilities(cls):
    """Hyperparameters that switch on what the method can do (e.g. --uda), so the checks
    see every network it can build."""
    return dict(cls.UDA_HPARAMS) if "uda" in cls.CAPABILITIES else {}


def variables_of(networks):
    out, seen = [], set()
    for net in networks:
        for v in net.variables:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out


def state_variables(model):
    """Every variable a checkpoint of the method holds (networks and checkpoint_items)."""
    items = [v for item in model.checkpoint_items().values() for v in item.variables]
    return list(model.variables) + items


def snapshot(variables):
    return {id(v): np.array(v.numpy(), copy=True) for v in variables}


def variable_shapes(model):
    return sorted(tuple(v.shape) for v in state_variables(model))


def perturbed(value, spec):
    """Other valid-looking values of a hyperparameter, nearest first."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value * 2 + 1]
    if isinstance(value, str) and spec.choices:
        return [c for c in spec.choices if c != value]
    return []


def unit_batch(cls, random_batch, n=2, config=None):
    """A random training batch of the method's data kind (``n`` examples per update; kinds
    that feed several critic updates per step get ``n * n_critic``)."""
    if cls.DATA in ("unpaired", "paired"):
        return random_batch(n=n, size=SIZE)
    if cls.DATA == "unpaired_labeled":  # both domains labelled; with i -> i every image pairs
        batch = random_batch(n=n, size=SIZE)
        return {**batch, "y_b": batch["y_a"]}
    hp = config.hparams if config is not None else {}
    k = int(dict(hp).get("n_critic", 1) or 1)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (n * k, SIZE, SIZE, 3)), tf.float32)
    if cls.DATA == "images":
        return {"x": x}
    if cls.DATA == "labeled":
        return {"x": x, "y": tf.constant(rng.integers(0, 10, n * k), tf.int64)}
    if cls.DATA == "multi_domain":
        from trainer.data.multi_domain import domain_labels

        labels = len(domain_labels(config))
        return {
            "x": x,
            "domain": tf.constant(np.arange(n * k) % labels, tf.int64),
            "y": tf.constant(rng.integers(0, 10, n * k), tf.int64),
        }
    pytest.fail(f"[contract: data] no test batch for DATA={cls.DATA!r}: add one here.")


def check_model_dir_fn():
    try:
        from trainer.checkpoints import check_model_dir
    except ImportError:
        from trainer.train_lib import check_model_dir
    return check_model_dir


def export_formats():
    from export import api
    from export import metadata as metadata_lib

    return tuple(getattr(metadata_lib, "FORMATS", None) or api.FORMATS)


# -- fixtures: one trained build per method, one export per method ----------------------------


@pytest.fixture(scope="module", params=METHODS)
def trained(request, method_config, random_batch):
    """A tiny build of the method, its variables before and after one train_step."""
    method = request.param
    cls = registry.get(method)
    keras.utils.set_random_seed(0)
    config = method_config(method, image_size=SIZE, **with_capabilities(cls))
    model = registry.build(config)
    model.make_optimizers(total_steps=10)
    batch = unit_batch(cls, random_batch, config=config)
    before = snapshot(state_variables(model))
    active = sorted(model.active_players())
    logs = model.train_step(batch)  # eager: tracing costs more than a tiny step
    return dict(
        method=method,
        cls=cls,
        config=config,
        model=model,
        batch=batch,
        before=before,
        active=active,
        logs=logs,
    )


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    from export import api
    from export import metadata as metadata_lib

    model, config = trained["model"], trained["config"]
    paths = {n: p for n, p in model.translation_paths().items() if p.exported}
    export_dir = str(tmp_path_factory.mktemp(f"export_{trained['method']}"))
    d = config.data
    run = metadata_lib.run_fields(config.method, 1, None, SIZE, [d.domain_a, d.domain_b])
    formats = export_formats()
    result = api.export_paths(
        paths,
        export_dir,
        formats=formats,
        run=run,
        allow_parity_failure=True,
        print_table=False,
    )
    with open(os.path.join(export_dir, metadata_lib.METADATA_FILE), encoding="utf-8") as f:
        meta = json.load(f)
    return dict(paths=paths, dir=export_dir, result=result, meta=meta, formats=formats)


# -- declarations ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_declarations(method):
    cls = registry.get(method)
    try:
        from trainer.data import KINDS
    except ImportError:
        KINDS = ("unpaired",)
    assert cls.DATA in KINDS, (
        f"[contract: DATA] {method} declares DATA={cls.DATA!r}; trainer.data has "
        f"{', '.join(sorted(KINDS))}."
    )
    assert isinstance(cls.CAPABILITIES, frozenset), "[contract: CAPABILITIES] not a frozenset"
    unknown = cls.CAPABILITIES - KNOWN_CAPABILITIES
    assert not unknown, f"[contract: CAPABILITIES] {method} declares unknown {sorted(unknown)}"
    assert ("uda" in cls.CAPABILITIES) == callable(getattr(cls, "classify", None)), (
        f"[contract: CAPABILITIES] {method}: 'uda' is declared iff the method has classify()."
    )
    for key, spec in cls.hparam_specs().items():
        assert isinstance(spec, base.HParam) and spec.help, f"[contract: HPARAMS] --{key}"
        if spec.choices:
            assert spec.default in spec.choices, f"[contract: HPARAMS] --{key} default"
    assert getattr(cls, "SMOKE_HPARAMS", None), (
        f"[contract: SMOKE_HPARAMS] {method} declares no tiny settings for the test runs."
    )


@pytest.mark.parametrize("method", METHODS)
def test_shape_marks_are_exactly_the_hparams_that_change_variable_shapes(method, method_config):
    cls = registry.get(method)
    start = method_config(method, image_size=SIZE, **with_capabilities(cls))
    reference = variable_shapes(registry.build(start))
    unmarked, idle = [], []
    for key, spec in sorted(cls.hparam_specs().items()):
        changed = tested = False
        for value in perturbed(start.hparams[key], spec):
            try:
                model = registry.build(
                    method_config(method, image_size=SIZE, **{**start.hparams, key: value})
                )
            except ValueError:
                continue  # not a valid setting at these shapes: try the next value
            tested = True
            if variable_shapes(model) != reference:
                changed = True
                break
        if changed and not spec.shape:
            unmarked.append(key)
        if tested and spec.shape and not changed:
            idle.append(key)
    assert not unmarked, (
        f"[contract: shape hparams] {method}: {', '.join(unmarked)} change variable shapes "
        "but are not declared HParam(..., shape=True): a resume with another value would "
        "fail at restore instead of being refused up front."
    )
    assert not idle, (
        f"[contract: shape hparams] {method}: {', '.join(idle)} are marked shape=True but "
        "changing them changes no variable shape."
    )


@pytest.mark.parametrize("method", METHODS)
def test_paths_declare_their_models_inputs_and_outputs(method, method_config):
    cls = registry.get(method)
    model = registry.build(method_config(method, image_size=SIZE, **with_capabilities(cls)))
    paths = model.translation_paths()
    assert paths and all(isinstance(p, Path) for p in paths.values()), (
        f"[contract: paths] {method}.translation_paths() must return {{name: Path}}."
    )
    assert any(p.exported for p in paths.values()), f"[contract: paths] {method} exports none"
    kinds = set()
    for name, path in paths.items():
        kinds |= {s.kind for s in path.inputs}
        if not path.exported:
            continue
        keras_in = [t.name.split(":")[0] for t in path.model.inputs]
        assert keras_in == path.input_names(), (
            f"[contract: paths] {method} path {name!r}: model inputs {keras_in} are not the "
            f"declared {path.input_names()} (name each keras.Input as declared)."
        )
        assert len(path.model.outputs) == len(path.outputs), (
            f"[contract: paths] {method} path {name!r}: {len(path.model.outputs)} outputs, "
            f"{len(path.outputs)} declared."
        )
        assert list(path.model.output_names) == path.output_names(), (
            f"[contract: paths] {method} path {name!r}: outputs {path.model.output_names} "
            f"are not the declared {path.output_names()}."
        )
    assert ("noise" in kinds) == ("noise_prior" in cls.CAPABILITIES), (
        f"[contract: CAPABILITIES] {method}: 'noise_prior' is declared iff a path has a "
        "noise input."
    )
    assert ("onehot" in kinds) == ("conditional" in cls.CAPABILITIES), (
        f"[contract: CAPABILITIES] {method}: 'conditional' is declared iff a path has a "
        "one-hot input."
    )


# -- training ----------------------------------------------------------------------------------


def test_one_step_moves_every_player_and_nothing_else(trained):
    model, before, method = trained["model"], trained["before"], trained["method"]
    logs = trained["logs"]
    bad = [k for k, v in logs.items() if not np.isfinite(float(v))]
    assert not bad, f"[contract: training step] {method}: {bad} not finite"
    owned = set()
    for player in trained["active"]:
        networks = model.players()[player]
        trainable = base.unique_variables(networks)
        stuck = [v.path for v in trainable if np.array_equal(v.numpy(), before[id(v)])]
        assert not stuck, (
            f"[contract: training step] {method}: one step left {len(stuck)} variable(s) of "
            f"player {player!r} unchanged: {stuck[:5]}"
        )
        owned |= {id(v) for v in variables_of(networks)}
    items = {id(v) for i in model.checkpoint_items().values() for v in i.variables}
    frozen = [v for v in model.variables if id(v) not in owned | items]
    moved = [v.path for v in frozen if not np.array_equal(v.numpy(), before[id(v)])]
    assert not moved, (
        f"[contract: training step] {method}: variables outside every player changed: {moved}"
    )


def test_sample_rows_are_images_and_two_way_rows_cycle(trained):
    """The sample grid's rows are finite image batches in [-1, 1]; a method with exported a2b
    and b2a paths shows x, its translation and the translation back for each direction."""
    model, method = trained["model"], trained["method"]
    groups = model.sample_images(trained["batch"])
    assert groups, f"[contract: samples] {method}: no sample rows"
    for name, row in groups.items():
        for image in row:
            image = np.asarray(image)
            assert image.ndim == 4 and image.shape[-1] == 3, (
                f"[contract: samples] {method}: row {name!r} holds a {image.shape} tensor"
            )
            assert np.all(np.isfinite(image)) and np.abs(image).max() <= 1.0 + 1e-5, (
                f"[contract: samples] {method}: row {name!r} leaves [-1, 1]"
            )
    paths = model.translation_paths()
    if all(n in paths and paths[n].exported for n in ("a2b", "b2a")):
        for name in ("a2b", "b2a"):
            assert len(groups.get(name, [])) == 3, (
                f"[contract: samples] {method}: row {name!r} should be x, x translated, and back"
            )


@pytest.mark.parametrize("method", METHODS)
def test_gan_vocabulary_gradient_penalty_and_clipping(method, method_config, random_batch):
    cls = registry.get(method)
    unconstrained = dict(gan_loss="wgan", gradient_penalty=0.0, clip_weights=0.0)
    with pytest.raises(ValueError, match="gradient_penalty"):
        registry.build(method_config(method, image_size=SIZE, **unconstrained))

    config = method_config(method, image_size=SIZE, gan_loss="wgan", gradient_penalty=10.0)
    model = registry.build(config)
    model.make_optimizers(total_steps=10)
    logs = model.train_step(unit_batch(cls, random_batch, config=config))  # eager: no tracing
    gp = {k: float(v) for k, v in logs.items() if k.startswith("gp_")}
    assert gp and all(np.isfinite(v) and v >= 0 for v in gp.values()), (
        f"[contract: gradient penalty] {method}: its discriminator step logs no gp_* term "
        f"with --gradient_penalty=10 (logs: {sorted(logs)}); use adversarial_terms()."
    )

    bound = 0.01
    config = method_config(
        method, image_size=SIZE, gan_loss="wgan", gradient_penalty=0.0, clip_weights=bound
    )
    model = registry.build(config)
    model.make_optimizers(total_steps=10)
    active = set(model.active_players())
    model.train_step(unit_batch(cls, random_batch, config=config))  # eager: no tracing
    for player in model.CRITICS & active:
        variables = base.unique_variables(model.players()[player])
        worst = max(float(np.abs(v.numpy()).max()) for v in variables)
        assert worst <= bound, (
            f"[contract: weight clipping] {method}: critic {player!r} has a weight of "
            f"{worst} after its update with --clip_weights={bound}."
        )
    others = [p for p in active if p not in model.CRITICS]
    gen_worst = max(
        float(np.abs(v.numpy()).max())
        for p in others
        for v in base.unique_variables(model.players()[p])
    )
    assert gen_worst > bound, f"[contract: weight clipping] {method} clipped a non-critic"


def test_checkpoint_restores_into_a_fresh_build_and_training_continues(trained, tmp_path):
    model, config, method = trained["model"], trained["config"], trained["method"]

    def checkpoint(m):
        items = {"model": m, **m.checkpoint_items()}
        items.update({f"optimizer_{n}": o for n, o in m.optimizers.items()})
        return tf.train.Checkpoint(**items)

    saved = checkpoint(model).save(str(tmp_path / "ckpt"))
    fresh = registry.build(config)
    fresh.make_optimizers(total_steps=10)
    try:
        checkpoint(fresh).restore(saved).assert_existing_objects_matched()
    except AssertionError as e:
        pytest.fail(f"[contract: checkpoint] {method}: a fresh build does not restore: {e}")
    pairs = list(zip(state_variables(model), state_variables(fresh)))
    for name, opt in model.optimizers.items():
        pairs += list(zip(opt.variables, fresh.optimizers[name].variables))
    differ = [a.path for a, b in pairs if not np.array_equal(a.numpy(), b.numpy())]
    assert not differ, f"[contract: checkpoint] {method}: restored values differ: {differ[:5]}"
    active = set(fresh.active_players())
    logs = fresh.train_step(trained["batch"])  # eager: no tracing
    assert all(np.isfinite(float(v)) for v in logs.values())
    for name, opt in fresh.optimizers.items():
        restored = int(model.optimizers[name].iterations.numpy())
        assert int(opt.iterations.numpy()) == restored + (name in active), (
            f"[contract: checkpoint] {method}: optimizer {name!r} did not continue from its "
            f"restored count {restored}"
        )


def test_the_model_alone_restores_every_variable_as_export_loads_it(trained, tmp_path):
    """Export and evaluation rebuild the model without optimizers (checkpoints.load_trained):
    every variable must be reachable from the model itself, not only through an optimizer."""
    model, config, method = trained["model"], trained["config"], trained["method"]
    items = {"model": model, **model.checkpoint_items()}
    items.update({f"optimizer_{n}": o for n, o in model.optimizers.items()})
    saved = tf.train.Checkpoint(**items).save(str(tmp_path / "ckpt"))
    keras.utils.set_random_seed(123)  # a fresh build whose initial values differ
    fresh = registry.build(config)
    tf.train.Checkpoint(model=fresh).restore(saved).expect_partial()
    pairs = list(zip(model.variables, fresh.variables))
    differ = [a.path for a, b in pairs if not np.array_equal(a.numpy(), b.numpy())]
    assert not differ, (
        f"[contract: checkpoint] {method}: the model alone does not restore {len(differ)} "
        f"variable(s), e.g. {differ[:3]}: hold networks in attributes the checkpoint tracks"
    )


# -- resume --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_resume_with_a_changed_shape_hparam_is_refused_naming_it(method, method_config, tmp_path):
    cls = registry.get(method)
    check_model_dir = check_model_dir_fn()
    old = method_config(method, image_size=SIZE, model_dir=tmp_path, **with_capabilities(cls))
    (tmp_path / "config.json").write_text(json.dumps(old.to_dict()))
    check_model_dir(old)  # the same settings resume
    lr = method_config(
        method, image_size=SIZE, model_dir=tmp_path, **{**old.hparams, "lr": old.hparams.lr * 2}
    )
    check_model_dir(lr)  # so does a new learning rate
    specs = cls.hparam_specs()
    accepted = []
    for key in cls.shape_hparams():
        values = perturbed(old.hparams[key], specs[key])
        if not values:
            continue  # a free-form string (e.g. a list of domains): no generic other value
        value = values[0]
        new = method_config(
            method, image_size=SIZE, model_dir=tmp_path, **{**old.hparams, key: value}
        )
        try:
            check_model_dir(new)
        except ValueError as e:
            assert key in str(e), f"[contract: resume] the refusal does not name {key}: {e}"
        else:
            accepted.append(key)
    assert not accepted, (
        f"[contract: resume] {method}: a resume with another {', '.join(accepted)} was not "
        "refused up front (check_model_dir must read HParam(shape=True))."
    )


# -- export --------------------------------------------------------------------------------------


def _status_names():
    from export import metadata as m

    return m.OK, m.BELOW_BOUND, getattr(m, "SKIPPED", "skipped"), m.FAILED


@pytest.mark.slow  # every path to every format: about a minute per method
def test_every_path_exports_to_every_format_within_parity(trained, exported, capsys):
    ok, below, skipped, failed = _status_names()
    method = trained["method"]
    artifacts = exported["result"]["artifacts"]
    # The static int8 ONNX is format "onnx", precision "int8": export format onnx_int8.
    made = {
        (
            a["path"],
            "onnx_int8" if (a["format"], a.get("precision")) == ("onnx", "int8") else a["format"],
        )
        for a in artifacts
    }
    wanted = {(p, f) for p in exported["paths"] for f in exported["formats"]}
    assert wanted <= made, f"[contract: export] {method}: missing {sorted(wanted - made)}"
    report, problems = [], []
    for a in artifacts:
        parity = a.get("parity") or {}
        figure = {k: v for k, v in parity.items() if k not in ("bound", "passed")}
        report.append(f"{a['file']}: {a.get('status')} {figure}")
        if a["format"] in ("tflite", "onnx") and a["precision"] == "fp32":
            if a.get("status") != ok:
                problems.append(f"{a['file']} is {a.get('status')} (fp32 must pass 1e-3)")
        elif a.get("status") not in (ok, below, skipped):
            problems.append(
                f"{a['file']} is {a.get('status')}: {a.get('error') or a.get('reason')}"
            )
    with capsys.disabled():
        print(f"\n[{method}] " + "\n  ".join(report))
    assert not problems, f"[contract: export] {method}: " + "; ".join(problems)


def _runnable(exported):
    ok, below, skipped, failed = _status_names()
    for a in exported["result"]["artifacts"]:
        if a["format"] in ("tflite", "onnx") and a.get("status") == ok:
            yield a


@pytest.mark.slow
def test_translator_runs_every_artifact_from_its_metadata(trained, exported):
    from export import metadata as metadata_lib
    from export.runtime import Translator

    method = trained["method"]
    paths = exported["paths"]
    rng = np.random.default_rng(0)
    for a in _runnable(exported):
        path = paths[a["path"]]
        translator = Translator(os.path.join(exported["dir"], a["file"]))
        # The graph's own inputs (as the runtime sees them) are the declared ones.
        assert sorted(translator.input_names) == sorted(path.input_names()), (
            f"[contract: exported inputs] {method} {a['file']}: graph inputs "
            f"{translator.input_names}, declared {path.input_names()}"
        )
        entries = {e["name"]: e for e in a["inputs"]}
        for decl in path.inputs:
            entry = entries.get(decl.name, {})
            assert entry.get("kind") == decl.kind, (
                f"[contract: exported inputs] {method} {a['file']}: metadata says "
                f"{entry.get('kind')} for {decl.name}, the method declares {decl.kind}"
            )
            if decl.kind == "noise":
                assert entry.get("prior") == dict(decl.prior), (
                    f"[contract: noise prior] {method} {a['file']}: metadata prior "
                    f"{entry.get('prior')}, declared {decl.prior}"
                )

        # Noise the runtime draws by itself stays inside the declared prior's support.
        fed = []
        original = translator.run

        def spy(feeds, original=original, fed=fed):
            fed.append(feeds)
            return original(feeds)

        translator.run = spy
        n = 3
        # A one-hot condition is picked by name, as a user would: the last declared label.
        onehots = [d for d in path.inputs if d.kind == "onehot"]
        pick = {"target_domain": onehots[0].labels[-1]} if onehots else {}
        if any(d.kind == "image" for d in path.inputs):
            images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
            out = translator.translate(images, **pick)
        else:
            out = translator.generate(n, seed=0, **pick)
        outs = out if isinstance(out, dict) else {path.output_names()[0]: out}
        for name, y in outs.items():
            assert y.dtype == np.uint8 and y.shape[0] == n, f"{method} {a['file']} {name}"
        for decl in path.inputs:
            if decl.kind == "noise" and decl.prior["distribution"] == "uniform":
                z = fed[-1][decl.name]
                lo, hi = decl.prior["low"], decl.prior["high"]
                assert lo <= z.min() and z.max() <= hi, (
                    f"[contract: noise prior] {method} {a['file']}: the runtime fed "
                    f"{decl.name} in [{z.min():.2f}, {z.max():.2f}], outside its declared "
                    f"U({lo:g}, {hi:g})"
                )

        # fp32 artifacts compute what the Keras path computes on inputs made from metadata.
        if a["precision"] != "fp32":
            continue
        feeds = {}
        for decl in path.inputs:
            shape = [n, *entries[decl.name]["shape"][1:]]
            if decl.kind == "noise":
                feeds[decl.name] = metadata_lib.sample_prior(decl.prior, shape, rng).astype(
                    np.float32
                )
            else:
                feeds[decl.name] = rng.uniform(-1, 1, shape).astype(np.float32)
        got = translator.run(feeds)
        args = [tf.constant(feeds[name]) for name in path.input_names()]
        want = path.model(args[0] if len(args) == 1 else args, training=False)
        want = want if isinstance(want, (list, tuple)) else [want]
        for name, w in zip(path.output_names(), want):
            err = float(np.abs(np.asarray(got[name]) - np.asarray(w)).max())
            assert err <= 1e-4, (
                f"[contract: runtime parity] {method} {a['file']} output {name}: max abs "
                f"error {err:.3g} vs Keras"
            )
