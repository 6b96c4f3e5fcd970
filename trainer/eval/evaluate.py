"""Evaluation of a translation model: transfer accuracy, domain score, UDA, digit FID/KID, grids.

``evaluate(model, config, step, writer=None)`` runs during training (every ``--eval_every``
steps and at the end) and from ``python -m trainer.evaluate``. It writes

- ``model_dir/metrics.json`` (schema below; written atomically),
- ``model_dir/metrics.md`` (the same figures as tables a person reads),
- ``model_dir/eval_samples/step_NNNNNN.png`` (per direction rows x_a, x_ab, x_aba, each
  labelled in the picture),
- TensorBoard scalars ``eval/...`` and the image ``eval/samples`` when ``writer`` is given,

and returns the metrics dict, whose ``headline`` lines are printed at the end of training.
Every file goes through ``trainer.io_utils``, so ``gs://`` and ``ram://`` model dirs work.

What the figures mean (arXiv 1805.10130, UNIT, CoGAN):

- transfer accuracy: the test images of the source domain, translated, classified by the
  target domain's classifier against the source labels (class-split pair mnist_0_4 -> mnist_5_9:
  the expected label is i + 5, and i - 5 back).
- domain score: the fraction of translated images the A-vs-B domain classifier assigns to the
  target domain. Doing nothing ("identity") can score a high transfer accuracy when the target
  classifier also reads source images; it scores a domain score near 0. A translation is good
  only where both are high.
- baselines: identity (the untranslated source images), source-only (the source classifier on
  the target test images: the UDA lower bound), oracle (the target classifier on them: the
  upper bound).
- UDA accuracy (methods declaring the ``uda`` capability, trained with ``--uda``): target
  test accuracy and the fraction of the source-only -> oracle gap it closes.
- FID/KID between translated images and real target test images, on the penultimate features
  of the target domain's classifier ("digit FID"; without labels, of the domain classifier), and
  on InceptionV3 pool features with ``--inception_weights``. At most ``--eval_examples`` images
  per domain: small sets bias FID upwards, so compare FIDs at the same ``eval_examples``; KID is
  unbiased and comes with its standard deviation over subsets.

metrics.json schema (``schema_version`` 1; missing figures are null)::

    {
      "schema_version": 1, "step": int, "method": str, "dataset": str,
      "domains": {"a": str, "b": str}, "eval_examples": int, "has_labels": bool,
      "feature_space": "digit" | "class-classifier" | "domain-classifier",
      "directions": {"a2b": {"path": str, "source": str, "target": str, "examples": int,
                             "label_offset": int, "transfer_accuracy": float|null,
                             "domain_score": float, "fid": float, "kid": float,
                             "kid_std": float, "inception_fid": float|null,
                             "inception_kid": float|null, "inception_kid_std": float|null},
                     "b2a": {...}},
      "baselines": {"a2b": {"identity_accuracy": float|null, "identity_domain_score": float,
                            "identity_fid": float, "identity_kid": float,
                            "source_only_accuracy": float|null, "oracle_accuracy": float|null},
                    "b2a": {...}},
      "uda": null | {"domain": "b", "accuracy": float, "source_only_accuracy": float,
                     "oracle_accuracy": float, "gap_closed": float|null},
      "classifiers": {"<domain>": {"test_accuracy": float, "train_examples": int, "path": str},
                      "domain": {"test_accuracy": float, ..., "path": str}},
      "notes": [str], "headline": [str], "seconds": float,
      "files": {"json": str, "markdown": str, "samples": str|null}
    }
"""

import time

import keras
import numpy as np

from trainer import io_utils
from trainer.eval import classifiers, grids
from trainer.eval import metrics as estimators

SCHEMA_VERSION = 1
METRIC_GROUPS = ("transfer", "uda", "fid", "samples")
LABEL_METRICS = ("transfer", "uda")
# Class-split pairs: a source label i is expected to come out as i + offset (arXiv 1805.10130).
LABEL_OFFSETS = {("mnist_0_4", "mnist_5_9"): 5, ("mnist_5_9", "mnist_0_4"): -5}
GRID_IMAGES = 8
BATCH = 64
BACK = {"a2b": "b2a", "b2a": "a2b"}

_judges = {}
_arrays = {}
_inception = {}


def label_offset(source, target):
    return LABEL_OFFSETS.get((source, target), 0)


# -- inputs -------------------------------------------------------------------------------------


def _test_arrays(config, domain):
    """(uint8 images, labels or None) of ``domain``'s test split, at most eval_examples."""
    from trainer import data as data_lib

    d = config.data
    key = (d.dataset, domain, d.data_dir, d.image_size, config.eval.eval_examples)
    if key not in _arrays:
        _arrays[key] = data_lib.load_arrays(
            d.dataset,
            domain,
            "test",
            data_dir=d.data_dir,
            image_size=d.image_size,
            limit=config.eval.eval_examples,
        )
    return _arrays[key]


def _judge(kind, config, *domains, cache_root=None, **train_kwargs):
    """A cached classifier, also kept in memory across evaluations of one process."""
    d = config.data
    key = (kind, d.dataset, domains, d.data_dir, cache_root)
    judge = _judges.get(key)
    if judge is not None and io_utils.exists(judge.path):
        return judge
    make = classifiers.class_classifier if kind == "class" else classifiers.domain_classifier
    judge = make(d.dataset, *domains, data_dir=d.data_dir, cache_root=cache_root, **train_kwargs)
    _judges[key] = judge
    return judge


def _inception_features(path):
    if path not in _inception:
        _inception[path] = classifiers.InceptionFeatures(path)
    return _inception[path]


def _single_image(path):
    """Whether ``path`` takes one image and nothing else (what these figures measure)."""
    return [s.kind for s in path.inputs] == ["image"]


def _path_domains(model):
    """{path name: (source domain, target domain)} of the model's single-image paths."""
    return {
        name: (path.source_domain, path.target_domain)
        for name, path in model.translation_paths().items()
        if _single_image(path)
    }


def unmeasured_paths(model):
    """Notes naming the paths these figures cannot measure yet (noise or condition inputs)."""
    notes = []
    for name, path in sorted(model.translation_paths().items()):
        if not _single_image(path):
            takes = ", ".join(f"{s.name} ({s.kind})" for s in path.inputs)
            notes.append(
                f"Path {name!r} takes {takes}: its outputs are not measured here yet "
                "(the translation figures measure single-image paths only)."
            )
    return notes


def translation_directions(model, config):
    """[(role, path name, source domain, target domain)] for a -> b and b -> a, where present."""
    a, b = config.data.domain_a, config.data.domain_b
    found = {}
    domains = _path_domains(model)
    for name in sorted(domains, key=lambda n: n not in ("a2b", "b2a")):
        pair = domains[name]
        if pair == (a, b):
            found.setdefault("a2b", name)
        elif pair == (b, a):
            found.setdefault("b2a", name)
    out = []
    for role in ("a2b", "b2a"):
        if role in found:
            src, dst = (a, b) if role == "a2b" else (b, a)
            out.append((role, found[role], src, dst))
    return out


def translate(model, images, path):
    """Translates uint8 images with ``model.translate`` in batches; float32 [-1, 1] out."""
    x = classifiers.to_float(images)
    out = []
    for i in range(0, len(x), BATCH):
        y = keras.ops.convert_to_numpy(model.translate(x[i : i + BATCH], path))
        out.append(np.clip(np.asarray(y, np.float32), -1.0, 1.0))
    return np.concatenate(out)


def _accuracy(predicted, expected):
    return float(np.mean(np.asarray(predicted) == np.asarray(expected)))


def _kid(fx, fy):
    mean, std = estimators.kid(fx, fy)
    return mean, std


def _capabilities(model):
    return type(model).CAPABILITIES


# -- steps --------------------------------------------------------------------------------------


def _metric_groups(metrics):
    """The groups asked for (all by default); unknown names are an error."""
    asked = set(METRIC_GROUPS if metrics is None else metrics)
    unknown = asked - set(METRIC_GROUPS)
    if unknown:
        raise ValueError(
            f"Unknown metrics {', '.join(sorted(unknown))}: choose from {', '.join(METRIC_GROUPS)}."
        )
    return asked


def _drop_label_metrics(asked, metrics, config, notes):
    """Without class labels only the label-free groups remain (asking for the others fails)."""
    d = config.data
    explicit = sorted(asked & set(LABEL_METRICS)) if metrics is not None else []
    if explicit:
        raise ValueError(
            f"--dataset={d.dataset} (domains {d.domain_a}, {d.domain_b}) has no class labels, "
            f"so {', '.join(explicit)} accuracy cannot be measured: drop it from --metrics "
            "(FID/KID and the domain score need no labels), or evaluate on a labelled "
            "dataset such as --dataset=digits."
        )
    notes.append(
        f"{d.dataset} has no class labels: transfer and UDA accuracy skipped; domain score "
        "and FID/KID (on domain-classifier features) computed."
    )
    return asked - set(LABEL_METRICS)


def _check_uda(asked, metrics, model, config):
    """UDA accuracy applies to a method declaring the ``uda`` capability trained with --uda."""
    capable = "uda" in _capabilities(model)
    if "uda" not in asked or (capable and config.hparams.get("uda", False)):
        return asked
    if metrics is not None and "uda" in metrics:
        raise ValueError(
            f"--metrics=uda needs a method trained with --uda that has a classifier head; "
            f"{config.method} {'was not trained with --uda' if capable else 'has none'}."
        )
    return asked - {"uda"}


def _load_judges(config, has_labels, cache_root, train_kwargs):
    """{"domain": A-vs-B judge, <domain>: class judge ...} and the FID feature space name."""
    a, b = config.data.domain_a, config.data.domain_b
    judges = {"domain": _judge("domain", config, a, b, cache_root=cache_root, **train_kwargs)}
    if not has_labels:
        return judges, "domain-classifier"
    for dom in (a, b):
        judges[dom] = _judge("class", config, dom, cache_root=cache_root, **train_kwargs)
    return judges, ("digit" if config.data.dataset == "digits" else "class-classifier")


def _score_direction(x_tr, src, dst, x_test, judges, config, asked, inception, has_labels):
    """(figures of one translated direction, its baselines)."""
    (x_src, y_src), (x_dst, y_dst) = x_test[src], x_test[dst]
    domain_judge = judges["domain"]
    target_class = 1 if dst == config.data.domain_b else 0
    offset = label_offset(src, dst)
    entry = {
        "source": src,
        "target": dst,
        "examples": int(len(x_src)),
        "label_offset": offset,
        "transfer_accuracy": None,
        "domain_score": _accuracy(domain_judge.predict(x_tr), target_class),
    }
    base = {
        "identity_accuracy": None,
        "identity_domain_score": _accuracy(domain_judge.predict(x_src), target_class),
        "source_only_accuracy": None,
        "oracle_accuracy": None,
    }
    if has_labels:
        judge_dst, judge_src = judges[dst], judges[src]
        expected = y_src + offset
        entry["transfer_accuracy"] = _accuracy(judge_dst.predict(x_tr), expected)
        base["identity_accuracy"] = _accuracy(judge_dst.predict(x_src), expected)
        base["source_only_accuracy"] = _accuracy(judge_src.predict(x_dst) + offset, y_dst)
        base["oracle_accuracy"] = _accuracy(judge_dst.predict(x_dst), y_dst)
    if "fid" in asked:
        _score_fid(entry, base, x_tr, x_src, x_dst, judges[dst if has_labels else "domain"])
        _score_inception(entry, x_tr, x_dst, inception)
    return entry, base


def _score_fid(entry, base, x_tr, x_src, x_dst, judge):
    f_real, f_tr, f_src = (judge.features(x) for x in (x_dst, x_tr, x_src))
    entry["fid"] = estimators.fid(f_tr, f_real)
    entry["kid"], entry["kid_std"] = _kid(f_tr, f_real)
    base["identity_fid"] = estimators.fid(f_src, f_real)
    base["identity_kid"], _ = _kid(f_src, f_real)


def _score_inception(entry, x_tr, x_dst, inception):
    for key in ("inception_fid", "inception_kid", "inception_kid_std"):
        entry[key] = None
    if inception is not None:
        i_real, i_tr = inception(x_dst), inception(x_tr)
        entry["inception_fid"] = estimators.fid(i_tr, i_real)
        entry["inception_kid"], entry["inception_kid_std"] = _kid(i_tr, i_real)


def _sample_rows(model, directions, x_test, translated):
    """[(label, images)]: per direction x_a, x_ab and, where the way back exists, x_aba."""
    paths = {role: path for role, path, _, _ in directions}
    rows = []
    for role, _path, src, _dst in directions:
        s, t = role[0], role[-1]
        x_src = classifiers.to_float(x_test[src][0][:GRID_IMAGES])
        x_tr = translated[role][:GRID_IMAGES]
        rows += [(f"x_{s}", x_src), (f"x_{s}{t}", x_tr)]
        if BACK[role] in paths:
            back = translate(model, grids.to_uint8(x_tr), paths[BACK[role]])
            rows.append((f"x_{s}{t}{s}", back))
    return rows


def _uda_scores(model, x_test, judges, config):
    """Target-domain accuracy of the method's classifier head against source-only and oracle."""
    a, b = config.data.domain_a, config.data.domain_b
    x_b, y_b = x_test[b]
    logits = np.concatenate(
        [
            keras.ops.convert_to_numpy(
                model.classify(classifiers.to_float(x_b[i : i + BATCH]), domain="b")
            )
            for i in range(0, len(x_b), BATCH)
        ]
    )
    acc = _accuracy(np.argmax(logits, -1), y_b)
    lower = _accuracy(judges[a].predict(x_b), y_b)
    upper = _accuracy(judges[b].predict(x_b), y_b)
    return {
        "domain": "b",
        "accuracy": acc,
        "source_only_accuracy": lower,
        "oracle_accuracy": upper,
        "gap_closed": (acc - lower) / (upper - lower) if upper - lower > 1e-9 else None,
    }


def _judge_notes(judges):
    """A note naming every class judge below its accuracy bar (every report repeats it)."""
    notes = []
    for name, j in judges.items():
        bar = classifiers.accuracy_bar(name)
        if name != "domain" and j.info["test_accuracy"] < bar:
            notes.append(
                f"The {name} judge reaches only {j.info['test_accuracy']:.3f} test accuracy "
                f"(bar {bar:.2f}; {j.info.get('train_examples')} training images): accuracies "
                f"measured by it are judged by a weak classifier."
            )
    return notes


def _classifier_entries(judges):
    return {
        name: {
            "test_accuracy": j.info["test_accuracy"],
            "train_examples": j.info.get("train_examples"),
            "test_examples": j.info.get("test_examples"),
            "below_bar": name != "domain"
            and j.info["test_accuracy"] < classifiers.accuracy_bar(name),
            "path": j.path,
        }
        for name, j in judges.items()
    }


def _write_reports(result, grid, model_dir, step, writer):
    """metrics.json, metrics.md, the labelled sample grid and TensorBoard, via io_utils."""
    samples_path = None
    if grid is not None:
        samples_path = grids.save_png(
            grid, io_utils.join(model_dir, "eval_samples", f"step_{int(step):06d}.png")
        )
    result["files"] = {
        "json": io_utils.join(model_dir, "metrics.json"),
        "markdown": io_utils.join(model_dir, "metrics.md"),
        "samples": samples_path,
    }
    io_utils.atomic_write_json(result["files"]["json"], result)
    io_utils.atomic_write_text(result["files"]["markdown"], markdown(result))
    if writer is not None:
        write_summaries(writer, result, grid)


# -- evaluation ---------------------------------------------------------------------------------


def evaluate(
    model, config, step, writer=None, *, metrics=None, cache_root=None, classifier_kwargs=None
):
    """Evaluates ``model`` (trained with ``config``) at ``step``; writes and returns the metrics.

    ``metrics``: the groups to compute, a subset of ``METRIC_GROUPS``; None = every group that
    applies (label metrics are then skipped with a note on datasets without labels; asking for
    them explicitly there raises ValueError). ``cache_root`` overrides where classifiers are
    cached; ``classifier_kwargs`` (epochs, train_limit ...) how missing ones are trained.
    """
    started = time.perf_counter()
    d = config.data
    a, b = d.domain_a, d.domain_b
    notes = []
    asked = _metric_groups(metrics)
    x_test = {dom: _test_arrays(config, dom) for dom in (a, b)}
    has_labels = all(y is not None for _, y in x_test.values())
    if not has_labels:
        asked = _drop_label_metrics(asked, metrics, config, notes)
    asked = _check_uda(asked, metrics, model, config)
    judges, feature_space = _load_judges(config, has_labels, cache_root, classifier_kwargs or {})
    inception = None
    if "fid" in asked and config.eval.inception_weights:
        inception = _inception_features(config.eval.inception_weights)

    directions = translation_directions(model, config)
    notes += unmeasured_paths(model)
    if not directions:
        notes.append(
            f"{config.method} has no translation path between {a} and {b}: only classifier "
            "figures are reported."
        )
    per_direction, baselines, translated = {}, {}, {}
    for role, path, src, dst in directions:
        translated[role] = translate(model, x_test[src][0], path)
        entry, baselines[role] = _score_direction(
            translated[role], src, dst, x_test, judges, config, asked, inception, has_labels
        )
        per_direction[role] = {"path": path, **entry}
    grid = None
    if "samples" in asked and directions:
        rows = _sample_rows(model, directions, x_test, translated)
        grid = grids.image_grid(
            [r for _, r in rows], max_cols=GRID_IMAGES, labels=[n for n, _ in rows]
        )

    result = {
        "schema_version": SCHEMA_VERSION,
        "step": int(step),
        "method": config.method,
        "dataset": d.dataset,
        "domains": {"a": a, "b": b},
        "eval_examples": int(config.eval.eval_examples),
        "has_labels": has_labels,
        "feature_space": feature_space,
        "directions": per_direction,
        "baselines": baselines,
        "uda": _uda_scores(model, x_test, judges, config) if "uda" in asked else None,
        "classifiers": _classifier_entries(judges),
        "notes": notes + _judge_notes(judges),
    }
    result["headline"] = headline(result)
    result["seconds"] = round(time.perf_counter() - started, 2)
    _write_reports(result, grid, config.train.model_dir, step, writer)
    return result


# -- reports ------------------------------------------------------------------------------------


def _f(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _fid_name(result):
    return {"digit": "digit FID", "class-classifier": "classifier FID"}.get(
        result["feature_space"], "domain-classifier FID"
    )


def headline(result):
    """Short lines a person reads at the end of training."""
    lines = []
    fid_name = _fid_name(result)
    for role, e in result["directions"].items():
        base = result["baselines"][role]
        if e["transfer_accuracy"] is not None:
            lines.append(
                f"transfer {role} {_f(e['transfer_accuracy'], 2)} (domain {_f(e['domain_score'], 2)}, "
                f"identity {_f(base['identity_accuracy'], 2)})"
            )
        else:
            lines.append(f"domain {role} {_f(e['domain_score'], 2)}")
        if e.get("fid") is not None:
            lines.append(
                f"{fid_name} {role} {e['fid']:.2f} (identity {base['identity_fid']:.2f}), "
                f"KID {e['kid']:.4f} ± {e['kid_std']:.4f}"
            )
    weak = [n for n, c in result["classifiers"].items() if c.get("below_bar")]
    if weak:
        lines.append(
            f"judged by {', '.join(weak)} classifier(s) below their accuracy bar: see metrics.md"
        )
    uda = result.get("uda")
    if uda:
        lines.append(
            f"UDA accuracy {_f(uda['accuracy'], 3)} (source-only {_f(uda['source_only_accuracy'], 3)}, "
            f"oracle {_f(uda['oracle_accuracy'], 3)}, gap closed {_f(uda['gap_closed'], 2)})"
        )
    return lines


def markdown(result):
    """metrics.md: the figures as tables."""
    a, b = result["domains"]["a"], result["domains"]["b"]
    fid_name = _fid_name(result)
    out = [
        f"# Evaluation: {result['method']} at step {result['step']}",
        "",
        f"Dataset `{result['dataset']}`, domains A = `{a}`, B = `{b}`; at most "
        f"{result['eval_examples']} test images per domain. {fid_name} is measured on the "
        f"penultimate features of the target domain's "
        f"{'classifier' if result['has_labels'] else 'A-vs-B domain classifier'}, not "
        "InceptionV3; lower is better.",
        "",
    ]
    if result["directions"]:
        out += [
            f"| direction | transfer accuracy | domain score | {fid_name} | KID (± std) | "
            f"identity accuracy | identity domain score | identity {fid_name} |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for role, e in result["directions"].items():
            base = result["baselines"][role]
            kid = "n/a" if e.get("kid") is None else f"{e['kid']:.4f} ± {e['kid_std']:.4f}"
            fid = "n/a" if e.get("fid") is None else f"{e['fid']:.2f}"
            ifid = "n/a" if base.get("identity_fid") is None else f"{base['identity_fid']:.2f}"
            out.append(
                f"| {role} ({e['source']} → {e['target']}) | {_f(e['transfer_accuracy'])} | "
                f"{_f(e['domain_score'])} | {fid} | {kid} | {_f(base['identity_accuracy'])} | "
                f"{_f(base['identity_domain_score'])} | {ifid} |"
            )
        out.append("")
        if any(e.get("inception_fid") is not None for e in result["directions"].values()):
            out += ["| direction | Inception FID | Inception KID (± std) |", "|---|---|---|"]
            for role, e in result["directions"].items():
                out.append(
                    f"| {role} | {_f(e['inception_fid'], 2)} | {_f(e['inception_kid'], 4)} ± "
                    f"{_f(e['inception_kid_std'], 4)} |"
                )
            out.append("")
    if result["has_labels"] and result["baselines"]:
        out += [
            "Baselines on the target test images: source-only = the source domain's classifier "
            "(UDA lower bound), oracle = the target domain's classifier (upper bound).",
            "",
            "| direction | source-only accuracy | oracle accuracy |",
            "|---|---|---|",
        ]
        for role, base in result["baselines"].items():
            out.append(
                f"| {role} | {_f(base['source_only_accuracy'])} | {_f(base['oracle_accuracy'])} |"
            )
        out.append("")
    uda = result.get("uda")
    if uda:
        out += [
            "| UDA accuracy on B | source-only | oracle | gap closed |",
            "|---|---|---|---|",
            f"| {_f(uda['accuracy'])} | {_f(uda['source_only_accuracy'])} | "
            f"{_f(uda['oracle_accuracy'])} | {_f(uda['gap_closed'], 2)} |",
            "",
        ]
    out += ["| classifier | test accuracy | train images |", "|---|---|---|"]
    for name, c in result["classifiers"].items():
        label = f"{a} vs {b} (domain)" if name == "domain" else f"{name} (digit class)"
        weak = " (below its bar)" if c.get("below_bar") else ""
        out.append(f"| {label} | {_f(c['test_accuracy'])}{weak} | {c.get('train_examples')} |")
    out.append("")
    if result["notes"]:
        out += ["Notes:", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(out)


def write_summaries(writer, result, grid=None):
    import tensorflow as tf

    step = result["step"]
    with writer.as_default(step=step):
        for role, e in result["directions"].items():
            for key in ("transfer_accuracy", "domain_score", "fid", "kid", "inception_fid"):
                if e.get(key) is not None:
                    tf.summary.scalar(f"eval/{role}/{key}", e[key])
            for key, value in result["baselines"][role].items():
                if value is not None:
                    tf.summary.scalar(f"eval/{role}/baseline_{key}", value)
        if result.get("uda"):
            for key in ("accuracy", "gap_closed"):
                if result["uda"][key] is not None:
                    tf.summary.scalar(f"eval/uda/{key}", result["uda"][key])
        if grid is not None:
            tf.summary.image("eval/samples", grid[None], max_outputs=1)
    writer.flush()
