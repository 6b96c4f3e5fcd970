"""Evaluation of every path a method declares: transfer, UDA, samples, conditions, pairs, grids.

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

Every ordered pair path (``pair_paths``: a method with single-image paths between domains
other than --domain_a and --domain_b, e.g. ComboGAN's ``<d1>2<d2>``) gets a row of "pairs":
transfer accuracy under the target domain's class judge and the domain score of the judge of
all the pairs' domains (so every row is judged alike), with their identity baselines.

Paths that take noise or a one-hot (GAN's and cGAN's ``generate``, StarGAN's ``translate``)
and paired translation (pix2pix) are measured by ``trainer.eval.conditional``: class accuracy
of a class-conditional generator, digit FID/KID of generated samples, per-target domain
accuracy and class preservation of a conditional translation, L1/PSNR to the paired target.

Metric groups (``--metrics=``; by default every one that applies to the method):
``transfer`` (transfer accuracy and domain score; per target of a conditional translation),
``uda``, ``fid`` (FID/KID everywhere), ``class`` (class accuracy of generated samples),
``paired`` (L1/PSNR), ``samples`` (the grid), ``steganography`` (the cycle's reconstruction
under noise on the translation, for methods with both an a -> b and a b -> a path; see
``trainer.eval.steganography``). Naming one that does not apply is an error.

metrics.json schema (``schema_version`` 2; missing figures are null)::

    {
      "schema_version": 2, "step": int, "method": str, "dataset": str,
      "domains": {"a": str, "b": str}, "measured_domains": [str], "eval_examples": int,
      "has_labels": bool, "feature_space": "digit" | "class-classifier" | "domain-classifier",
      "metric_groups": [str],
      "directions": {"a2b": {"path": str, "source": str, "target": str, "examples": int,
                             "label_offset": int, "transfer_accuracy": float|null,
                             "domain_score": float, "fid": float, "kid": float,
                             "kid_std": float, "inception_fid": float|null,
                             "inception_kid": float|null, "inception_kid_std": float|null,
                             "l1": float|null, "psnr": float|null},
                     "b2a": {...}},
      "baselines": {"a2b": {"identity_accuracy": float|null, "identity_domain_score": float,
                            "identity_fid": float, "identity_kid": float,
                            "source_only_accuracy": float|null, "oracle_accuracy": float|null,
                            "identity_l1": float|null, "identity_psnr": float|null},
                    "b2a": {...}},
      "pairs": {"<d1>2<d2>": {"path": str, "source": str, "target": str, "examples": int,
                              "label_offset": int, "transfer_accuracy": float|null,
                              "domain_score": float, "identity_accuracy": float|null,
                              "identity_domain_score": float,
                              "source_only_accuracy": float|null,
                              "oracle_accuracy": float|null}} (empty unless pair_paths),
      "generated": {"<path>": {"path": str, "kind": str, "target": str, "examples": int,
                               "class_judge": str, "class_accuracy": float|null,
                               "per_class_accuracy": {"<label>": float}|null,
                               "real_class_accuracy": float|null, "fid": float|null,
                               "kid": float|null, "kid_std": float|null,
                               "real_fid": float|null},
                    "<pair path>": {"path": str, "kind": "joint_generate", "domains": [str],
                                    "class_judges": [str], "examples": int,
                                    "correspondence": float,
                                    "per_domain": {"<domain>": {"class_histogram": [float],
                                                   "uniform_gap": float,
                                                   "diversity": float}}}},
      "conditional": {"<path>": {"path": str, "kind": str, "domains": [str],
                                 "targets": {"<domain>": {"sources": [str], "examples": int,
                                             "domain_accuracy": float,
                                             "class_preservation": float|null,
                                             "class_judge": str|null, "fid": float|null,
                                             "kid": float|null, "kid_std": float|null}},
                                 "average": {"domain_accuracy", "class_preservation", "fid",
                                             "kid"}}},
      "steganography": null | {"a2b": {...}, "b2a": {...}} (see trainer.eval.steganography),
      "uda": null | {"domain": "b", "accuracy": float, "source_only_accuracy": float,
                     "oracle_accuracy": float, "gap_closed": float|null},
      "classifiers": {"<domain>": {"test_accuracy": float, "train_examples": int, "path": str,
                                   the cross-writer judge also "per_domain_test_accuracy" and
                                   "cross_test_accuracy": {"<domain>": float}},
                      "domain": {"test_accuracy": float, ..., "path": str}},
      "notes": [str], "headline": [str], "seconds": float,
      "files": {"json": str, "markdown": str, "samples": str|null}
    }
"""

import contextlib
import dataclasses
import time

import keras
import numpy as np

from trainer import console, io_utils
from trainer.eval import classifiers, conditional, grids, steganography
from trainer.eval import metrics as estimators

SCHEMA_VERSION = 2
METRIC_GROUPS = ("transfer", "uda", "fid", "class", "paired", "samples", "steganography")
LABEL_METRICS = ("transfer", "uda", "class")
GENERATE_KINDS = (conditional.GENERATE, conditional.CONDITIONAL_GENERATE)
# Judges telling domains apart (A vs B; all of a multi-domain run's), not digit classes.
DOMAIN_JUDGES = ("domain", "domains")
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

    d = config.data
    key = (d.dataset, domain, d.data_dir, d.image_size, config.eval.eval_examples)
    if key not in _arrays:
        _arrays[key] = classifiers.domain_arrays(
            d.dataset,
            domain,
            "test",
            data_dir=d.data_dir,
            image_size=d.image_size,
            limit=config.eval.eval_examples,
        )
    return _arrays[key]


def _train_arrays(config, domain, limit):
    """Train images of ``domain`` (the real-data reference of generated samples)."""
    d = config.data
    key = (d.dataset, domain, d.data_dir, d.image_size, limit, "train")
    if key not in _arrays:
        _arrays[key] = classifiers.domain_arrays(
            d.dataset, domain, "train", data_dir=d.data_dir, image_size=d.image_size, limit=limit
        )
    return _arrays[key]


def _judge(kind, config, *domains, cache_root=None, **train_kwargs):
    """A cached classifier, also kept in memory across evaluations of one process."""
    d = config.data
    key = (kind, d.dataset, domains, d.data_dir, cache_root)
    judge = _judges.get(key)
    if judge is not None and io_utils.exists(judge.path):
        return judge
    if kind == "domains":
        judge = classifiers.domains_classifier(
            d.dataset, domains, data_dir=d.data_dir, cache_root=cache_root, **train_kwargs
        )
    elif kind == classifiers.CROSS_WRITER:
        judge = classifiers.cross_writer_classifier(
            domains, data_dir=d.data_dir, cache_root=cache_root, **train_kwargs
        )
    else:
        make = classifiers.class_classifier if kind == "class" else classifiers.domain_classifier
        judge = make(
            d.dataset, *domains, data_dir=d.data_dir, cache_root=cache_root, **train_kwargs
        )
    _judges[key] = judge
    return judge


def _inception_features(path):
    if path not in _inception:
        _inception[path] = classifiers.InceptionFeatures(path)
    return _inception[path]


def _single_image(path):
    """Whether ``path`` takes one image and nothing else but noise (what these figures
    measure; ``model.translate`` draws the noise from its declared prior)."""
    return [s.kind for s in path.inputs if s.kind != "noise"] == ["image"]


def _expected_labels(labels, path_info, offset):
    """Labels the translations should carry: the path's declared ``class_map`` ([[source,
    target] ...], -1 for a label it does not map) or, without one, ``labels + offset``."""
    pairs = path_info.get("class_map") if path_info else None
    if not pairs:
        return np.asarray(labels) + offset
    table = dict((int(s), int(t)) for s, t in pairs)
    return np.asarray([table.get(int(y), -1) for y in np.asarray(labels)])


def _path_domains(model):
    """{path name: (source domain, target domain)} of the model's single-image paths."""
    return {
        name: (path.source_domain, path.target_domain)
        for name, path in model.translation_paths().items()
        if _single_image(path)
    }


def _paths_of_kind(model, *kinds):
    return {
        name: path
        for name, path in sorted(model.translation_paths().items())
        if conditional.path_kind(path) in kinds
    }


def unmeasured_paths(model):
    """Notes naming the paths no figure here measures (inputs of no known combination)."""
    notes = []
    for name, path in sorted(model.translation_paths().items()):
        if not _single_image(path) and conditional.path_kind(path) is None:
            takes = ", ".join(f"{s.name} ({s.kind})" for s in path.inputs)
            notes.append(
                f"Path {name!r} takes {takes}: its outputs are not measured (evaluation "
                "measures an image, image + noise, noise, noise + one-hot, or image + one-hot)."
            )
    return notes


def pair_paths(model, config):
    """[(path name, source, target)] of every single-image path between two named domains, in
    the model's order, when some of them translate between domains other than --domain_a and
    --domain_b (a multi-domain method such as ComboGAN has one per ordered pair, ``<d1>2<d2>``);
    [] when the a2b / b2a directions already measure every one."""
    measured = {path for _, path, _, _ in translation_directions(model, config)}
    pairs = [(n, s, t) for n, (s, t) in _path_domains(model).items() if s and t and s != t]
    return pairs if any(n not in measured for n, _, _ in pairs) else []


def _pair_domains(pairs):
    """The domains of ``pairs`` in order of first appearance (sources first: ComboGAN's
    --domains order, which names its all-domain judge)."""
    ordered = [s for _, s, _ in pairs] + [t for _, _, t in pairs]
    return list(dict.fromkeys(ordered))


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


@contextlib.contextmanager
def _stage(text):
    """Shows a stage of a long evaluation when it ends, with its time (inversion-based paths
    and the steganography probe take minutes on a CPU)."""
    started = time.perf_counter()
    yield
    console.note(f"  evaluated {text} ({time.perf_counter() - started:.0f} s)")


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


def _drop_label_metrics(asked, metrics, config, notes, domains):
    """Without class labels only the label-free groups remain (asking for the others fails)."""
    d = config.data
    explicit = sorted(asked & set(LABEL_METRICS)) if metrics is not None else []
    if explicit:
        raise ValueError(
            f"--dataset={d.dataset} (domains {', '.join(sorted(domains))}) has no class labels, "
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


def _joint_paths(model):
    """Names of the paths that generate one image per domain from one noise (CoGAN's sample)."""
    return [
        name
        for name, path in _paths_of_kind(model, *GENERATE_KINDS).items()
        if isinstance(path.target_domain, (list, tuple))
    ]


def _check_applicable(asked, metrics, model, config, kinds, directions):
    """``transfer`` needs a translation path, ``class`` a class-conditional generator,
    ``paired`` a method on paired data: asked for by name where they do not apply, they are an
    error; by default they are left out."""
    data_kind = getattr(type(model), "DATA", None)
    rules = {
        "transfer": (
            bool(directions) or conditional.CONDITIONAL_TRANSLATION in kinds or not kinds,
            "transfer accuracy measures a translation path (an image in, or an image and a "
            "target-domain one-hot)",
        ),
        "class": (
            conditional.CONDITIONAL_GENERATE in kinds or _joint_paths(model),
            "class accuracy measures a class-conditional generator (a path taking noise and a "
            "one-hot class, e.g. --method=cgan) or the class histogram and correspondence of "
            "a path generating several domains at once (--method=cogan)",
        ),
        "paired": (
            data_kind == "paired",
            "L1/PSNR to the paired target needs a method trained on paired data (e.g. "
            "--method=pix2pix)",
        ),
        "steganography": (
            steganography.applies(directions),
            "the steganography probe cycles a -> b -> a and b -> a -> b (a method with both an "
            "a2b and a b2a path, e.g. --method=cyclegan)",
        ),
    }
    for group, (applies, what) in rules.items():
        if group in asked and not applies:
            if metrics is not None and group in metrics:
                raise ValueError(
                    f"--metrics={group}: {what}; {config.method} has none. Drop {group} from "
                    f"--metrics (choose from {', '.join(METRIC_GROUPS)})."
                )
            asked = asked - {group}
    return asked


def _class_judge_name(config, domain, labels):
    """The digit classifier judging ``domain``'s classes: its own, or for a derived style
    domain (mnist_thick ...) that of the domain it is rendered from; None without labels."""
    if labels is None:
        return None
    return classifiers.derived_base(config.data.dataset, domain) or domain


def _load_judges(config, has_labels, cache_root, train_kwargs):
    """{"domain": A-vs-B judge, <domain>: class judge ...} and the FID feature space name."""
    a, b = config.data.domain_a, config.data.domain_b
    judges = {"domain": _judge("domain", config, a, b, cache_root=cache_root, **train_kwargs)}
    if not has_labels:
        return judges, "domain-classifier"
    for dom in (a, b):
        judges[dom] = _judge("class", config, dom, cache_root=cache_root, **train_kwargs)
    return judges, ("digit" if config.data.dataset == "digits" else "class-classifier")


def _score_direction(
    x_tr, src, dst, x_test, judges, config, asked, inception, has_labels, path_info=None,
    domain=None,
):  # fmt: skip
    """(figures of one translated direction, its baselines). ``path_info`` (the path's
    ``extra``) may declare the ``class_map`` its translations follow; ``domain``: (judge,
    target class) of the domain score, by default the A-vs-B judge."""
    (x_src, y_src), (x_dst, y_dst) = x_test[src], x_test[dst]
    paired, paired_base = {"l1": None, "psnr": None}, {"identity_l1": None, "identity_psnr": None}
    if "paired" in asked:
        # The embedded aligned digit domains are written in the same order: example i of the
        # target is the paired target of example i of the source.
        paired, paired_base = conditional.paired_scores(x_tr, x_src, x_dst)
    domain_judge, target_class = domain or (judges["domain"], int(dst == config.data.domain_b))
    offset = label_offset(src, dst)
    entry = {
        "source": src,
        "target": dst,
        "examples": int(len(x_src)),
        "label_offset": offset,
        "transfer_accuracy": None,
        "domain_score": _accuracy(domain_judge.predict(x_tr), target_class),
        **paired,
    }
    base = {
        "identity_accuracy": None,
        "identity_domain_score": _accuracy(domain_judge.predict(x_src), target_class),
        "source_only_accuracy": None,
        "oracle_accuracy": None,
        **paired_base,
    }
    if has_labels:
        judge_dst, judge_src = judges[dst], judges[src]
        expected = _expected_labels(y_src, path_info, offset)
        entry["transfer_accuracy"] = _accuracy(judge_dst.predict(x_tr), expected)
        base["identity_accuracy"] = _accuracy(judge_dst.predict(x_src), expected)
        source_only = _expected_labels(judge_src.predict(x_dst), path_info, offset)
        base["source_only_accuracy"] = _accuracy(source_only, y_dst)
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
        if name not in DOMAIN_JUDGES and j.info["test_accuracy"] < bar:
            notes.append(
                f"The {name} judge reaches only {j.info['test_accuracy']:.3f} test accuracy "
                f"(bar {bar:.2f}; {j.info.get('train_examples')} training images): accuracies "
                f"measured by it are judged by a weak classifier."
            )
        for domain, acc in _weak_domains(j).items():
            notes.append(
                f"The {name} judge reads {domain}'s test images only {acc:.3f} right (bar "
                f"{classifiers.accuracy_bar(domain):.2f}): its figures into {domain} are judged "
                "by a weak classifier."
            )
    return notes


def _weak_domains(judge):
    """{domain: accuracy} of a judge of several domains (the cross-writer one) where it reads
    a domain's real test images below that domain's bar."""
    per_domain = judge.info.get("per_domain_test_accuracy") or {}
    return {d: a for d, a in per_domain.items() if a < classifiers.accuracy_bar(d)}


def _classifier_entries(judges):
    return {
        name: {
            "test_accuracy": j.info["test_accuracy"],
            "train_examples": j.info.get("train_examples"),
            "test_examples": j.info.get("test_examples"),
            "below_bar": name not in DOMAIN_JUDGES
            and (
                j.info["test_accuracy"] < classifiers.accuracy_bar(name) or bool(_weak_domains(j))
            ),
            "path": j.path,
            **{
                k: j.info[k]
                for k in ("per_domain_test_accuracy", "cross_test_accuracy")
                if k in j.info
            },
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


def _measured_domains(model, config, directions, kinds):
    """Every domain whose test images a figure reads."""
    domains = set()
    if directions or not kinds:
        domains |= {config.data.domain_a, config.data.domain_b}
    for path in kinds.values():
        if conditional.path_kind(path) in GENERATE_KINDS and path.target_domain is not None:
            # A path may generate several domains at once (CoGAN's pair): a list of them.
            target = path.target_domain
            domains |= set(target) if isinstance(target, (list, tuple)) else {target}
    for path in _paths_of_kind(model, conditional.CONDITIONAL_TRANSLATION).values():
        domains |= set(next(s for s in path.inputs if s.kind == "onehot").labels)
    return sorted(domains)


def _score_generate_paths(paths, config, x_test, judges, asked, notes, load):
    """{path: figures} of the (conditional) generate paths and their grid rows."""
    out, rows = {}, []
    n = config.eval.eval_examples
    for name, path in paths.items():
        target = path.target_domain
        if isinstance(target, (list, tuple)):
            entry = _score_joint_path(name, path, target, config, x_test, judges, asked, load)
            if entry is None:
                notes.append(
                    f"Path {name!r} generates {', '.join(map(str, target))} at once; without "
                    "a class-labelled test split for each (or --metrics=class) its pairs are "
                    "not measured."
                )
                continue
            out[name], fakes = entry
            if "samples" in asked:
                rows += [
                    (f"{name} {d}", x[: conditional.GRID_SOURCES]) for d, x in zip(target, fakes)
                ]
            continue
        if target not in x_test:
            notes.append(f"Path {name!r} names no target domain: its samples are not measured.")
            continue
        judge_name = _class_judge_name(config, target, x_test[target][1])
        if judge_name is None:
            notes.append(
                f"{target} has no class labels, so path {name!r} has no digit classifier to "
                "judge its samples: class accuracy and FID skipped."
            )
            continue
        judges[judge_name] = load("class", judge_name)
        x_train = None
        if "fid" in asked:
            x_train = _train_arrays(config, target, len(x_test[target][0]))[0]
        entry, fake, classes = conditional.score_generate(
            path, n, x_test[target], judges[judge_name], asked, x_train
        )
        out[name] = {"path": name, "class_judge": judge_name, **entry}
        if "samples" in asked:
            rows += [(f"{name} {label}", x) for label, x in
                     conditional.generate_grid_rows(path, fake, classes)]  # fmt: skip
    return out, rows


def _score_joint_path(name, path, domains, config, x_test, judges, asked, load):
    """(entry, samples) of a path generating one image per domain (``score_joint_generate``),
    or None when a domain has no class judge or class figures are not asked for."""
    if "class" not in asked or not all(d in x_test for d in domains):
        return None
    judge_names = [_class_judge_name(config, d, x_test[d][1]) for d in domains]
    if None in judge_names:
        return None
    for judge_name in judge_names:
        judges[judge_name] = load("class", judge_name)
    entry, fakes = conditional.score_joint_generate(
        path,
        config.eval.eval_examples,
        domains,
        [judges[j] for j in judge_names],
        [x_test[d] for d in domains],
    )
    return {"path": name, "class_judges": judge_names, **entry}, fakes


PAIR_KEYS = ("path", "source", "target", "examples", "label_offset", "transfer_accuracy",
             "domain_score", "identity_accuracy", "identity_domain_score",
             "source_only_accuracy", "oracle_accuracy")  # fmt: skip


def _score_pair_paths(model, pairs, x_test, judges, config, has_labels, load, translated):
    """{path: figures} of every ordered pair path: transfer accuracy under the target domain's
    class judge and the domain score of the judge of all the pairs' domains, each with its
    identity baseline (what the a2b / b2a directions get, without FID). ``translated``: the
    translations already made, by path name."""
    domains = _pair_domains(pairs)
    judges["domains"] = load("domains", *domains)
    by_domain = {}
    for dom in domains if has_labels else ():
        name = _class_judge_name(config, dom, x_test[dom][1])
        judges[name] = by_domain[dom] = load("class", name)
    out, paths = {}, model.translation_paths()
    for name, src, dst in pairs:
        x_tr = translated.get(name)
        x_tr = translate(model, x_test[src][0], name) if x_tr is None else x_tr
        entry, base = _score_direction(
            x_tr, src, dst, x_test, by_domain, config, {"transfer"}, None, has_labels,
            paths[name].extra, (judges["domains"], domains.index(dst)),
        )  # fmt: skip
        row = {"path": name, **entry, **base}
        out[name] = {k: row[k] for k in PAIR_KEYS}
    return out


def _conditional_class_judges(config, domains, x_test, judges, load):
    """{domain: (judge name, Judge)} reading the digit of translations into each domain: the
    domain's own digit classifier, or with digit domains of both sets of writers among
    ``domains``, the cross-writer judge for all (a judge trained on one set reads the other's
    shapes 0.57-0.67 right, so a translation keeping every stroke would score well under 0.90;
    ``bench/judge_ceiling.py``). Loaded judges are added to ``judges``."""
    labelled = all(x_test[d][1] is not None for d in domains)
    if labelled and classifiers.needs_cross_writer_judge(config.data.dataset, domains):
        name = classifiers.CROSS_WRITER
        judges[name] = load(name, *domains)
        return {domain: (name, judges[name]) for domain in domains}
    out = {}
    for domain in domains:
        name = _class_judge_name(config, domain, x_test[domain][1])
        if name is not None:
            judges[name] = load("class", name)
            out[domain] = (name, judges[name])
    return out


def _score_translation_paths(paths, config, x_test, judges, asked, notes, load):
    """{path: figures} of the image + one-hot paths and their grid rows."""
    out, rows = {}, []
    for name, path in paths.items():
        domains = tuple(next(s for s in path.inputs if s.kind == "onehot").labels)
        judges["domains"] = load("domains", *domains)
        class_judges = {}
        if asked & {"transfer", "fid"}:
            class_judges = _conditional_class_judges(config, domains, x_test, judges, load)
        missing = [d for d in domains if d not in class_judges]
        if missing and "transfer" in asked:
            notes.append(
                f"{', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} no class labels: "
                f"class preservation into {'it' if len(missing) == 1 else 'them'} is not measured."
            )
        out[name] = {"path": name, **conditional.score_conditional_translation(
            path, domains, x_test, judges["domains"], class_judges, asked,
            config.eval.eval_examples,
        )}  # fmt: skip
        if "samples" in asked:
            rows += conditional.translation_grid_rows(path, domains, x_test)
    return out, rows


def evaluate(
    model, config, step, writer=None, *, metrics=None, cache_root=None, classifier_kwargs=None
):
    """Evaluates ``model`` (trained with ``config``) at ``step``; writes and returns the metrics.

    ``metrics``: the groups to compute, a subset of ``METRIC_GROUPS``; None = every group that
    applies (label metrics are then skipped with a note on datasets without labels; asking for
    them explicitly there raises ValueError, as does asking for ``class`` or ``paired`` where
    the method has no such path). ``cache_root`` overrides where classifiers are cached;
    ``classifier_kwargs`` (epochs, train_limit ...) how missing ones are trained.
    """
    started = time.perf_counter()
    d = config.data
    a, b = d.domain_a, d.domain_b
    notes = []
    asked = _metric_groups(metrics)
    directions = translation_directions(model, config)
    pairs = pair_paths(model, config)
    generate_paths = _paths_of_kind(model, *GENERATE_KINDS)
    translation_paths = _paths_of_kind(model, conditional.CONDITIONAL_TRANSLATION)
    kinds = {n: p for n, p in model.translation_paths().items() if conditional.path_kind(p)}
    path_kinds = {conditional.path_kind(p) for p in kinds.values()}
    domains = sorted({*_measured_domains(model, config, directions, kinds), *_pair_domains(pairs)})
    x_test = {dom: _test_arrays(config, dom) for dom in domains}
    has_labels = all(y is not None for _, y in x_test.values())
    asked = _check_applicable(asked, metrics, model, config, path_kinds, directions)
    if not has_labels:
        asked = _drop_label_metrics(asked, metrics, config, notes, domains)
    asked = _check_uda(asked, metrics, model, config)
    train_kwargs = classifier_kwargs or {}

    def load(kind, *names):
        return _judge(kind, config, *names, cache_root=cache_root, **train_kwargs)

    judges, feature_space = {}, "digit" if d.dataset == "digits" else "class-classifier"
    if directions or not kinds:
        judges, feature_space = _load_judges(config, has_labels, cache_root, train_kwargs)
    elif not has_labels:
        feature_space = "domain-classifier"
    inception = None
    if "fid" in asked and config.eval.inception_weights and directions:
        inception = _inception_features(config.eval.inception_weights)

    notes += unmeasured_paths(model)
    if not directions and not kinds:
        notes.append(
            f"{config.method} has no translation path between {a} and {b}: only classifier "
            "figures are reported."
        )
    per_direction, baselines, translated = {}, {}, {}
    for role, path, src, dst in directions:
        with _stage(f"{role} ({src} -> {dst}) on {len(x_test[src][0])} test images"):
            translated[role] = translate(model, x_test[src][0], path)
            entry, baselines[role] = _score_direction(
                translated[role],
                src,
                dst,
                x_test,
                judges,
                config,
                asked,
                inception,
                has_labels,
                model.translation_paths()[path].extra,
            )
        per_direction[role] = {"path": path, **entry}
    by_path = {per_direction[role]["path"]: x for role, x in translated.items()}
    pair_figures = {}
    if pairs and "transfer" in asked:
        with _stage(f"{len(pairs)} paths between the domains"):
            pair_figures = _score_pair_paths(
                model, pairs, x_test, judges, config, has_labels, load, by_path
            )
    generated, generate_rows = _score_generate_paths(
        generate_paths, config, x_test, judges, asked, notes, load
    )
    conditioned, translation_rows = _score_translation_paths(
        translation_paths, config, x_test, judges, asked, notes, load
    )
    probe = None
    if "steganography" in asked:
        with _stage("the steganography probe (both cycles, clean and with noise)"):
            probe = steganography.probe(model, directions, x_test)
    grid = None
    rows = []
    if "samples" in asked:
        if directions:
            rows += _sample_rows(model, directions, x_test, translated)
        rows += generate_rows + translation_rows
    if rows:
        cols = max(GRID_IMAGES, *(len(r) for _, r in rows))
        grid = grids.image_grid([r for _, r in rows], max_cols=cols, labels=[n for n, _ in rows])

    result = {
        "schema_version": SCHEMA_VERSION,
        "step": int(step),
        "method": config.method,
        "dataset": d.dataset,
        "domains": {"a": a, "b": b},
        "measured_domains": domains,
        "eval_examples": int(config.eval.eval_examples),
        "has_labels": has_labels,
        "feature_space": feature_space,
        "metric_groups": [g for g in METRIC_GROUPS if g in asked],
        "directions": per_direction,
        "baselines": baselines,
        "pairs": pair_figures,
        "generated": generated,
        "conditional": conditioned,
        "uda": _uda_scores(model, x_test, judges, config) if "uda" in asked else None,
        "steganography": probe,
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
    lines += _pairs_headline(result.get("pairs"))
    for name, e in result.get("generated", {}).items():
        if e.get("kind") == conditional.JOINT_GENERATE:
            per = e["per_domain"]
            lines.append(
                f"{name}: correspondence {_f(e['correspondence'], 3)} (one digit in every "
                "domain); class histogram's largest gap from uniform "
                + ", ".join(f"{d} {_f(v['uniform_gap'], 3)}" for d, v in per.items())
                + "; diversity vs real "
                + ", ".join(f"{d} {_f(v['diversity'], 2)}" for d, v in per.items())
            )
        if e.get("class_accuracy") is not None:
            lines.append(
                f"class accuracy {name} {_f(e['class_accuracy'], 3)} (real test images "
                f"{_f(e['real_class_accuracy'], 3)}, judged by the {e['class_judge']} classifier)"
            )
        if e.get("fid") is not None:
            lines.append(
                f"{fid_name} {name} {e['fid']:.2f} (real train images {_f(e['real_fid'], 2)}), "
                f"KID {e['kid']:.4f} ± {e['kid_std']:.4f}"
            )
    for name, e in result.get("conditional", {}).items():
        avg = e["average"]
        lines.append(
            f"{name} averaged over {len(e['targets'])} target domains: domain accuracy "
            f"{_f(avg['domain_accuracy'], 2)}, class preservation "
            f"{_f(avg['class_preservation'], 2)}, {fid_name} {_f(avg['fid'], 2)}"
        )
    for role, e in result["directions"].items():
        if e.get("l1") is not None:
            base = result["baselines"][role]
            lines.append(
                f"paired {role} L1 {e['l1']:.4f}, PSNR {e['psnr']:.2f} dB (identity L1 "
                f"{base['identity_l1']:.4f}, PSNR {base['identity_psnr']:.2f} dB)"
            )
    lines += steganography.headline(result.get("steganography"))
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


def _pairs_headline(pairs):
    """One line over every pair path: the mean and lowest of each figure."""
    if not pairs:
        return []
    parts = []
    for key, label in (("transfer_accuracy", "transfer"), ("domain_score", "domain score")):
        values = {n: e[key] for n, e in pairs.items() if e[key] is not None}
        if values:
            low = min(values, key=values.get)
            parts.append(
                f"{label} mean {np.mean(list(values.values())):.2f}, lowest "
                f"{values[low]:.2f} ({low})"
            )
    return [f"every pair ({len(pairs)} paths): " + "; ".join(parts)]


def markdown(result):
    """metrics.md: the figures as tables."""
    a, b = result["domains"]["a"], result["domains"]["b"]
    fid_name = _fid_name(result)
    if result["directions"] or not result.get("measured_domains"):
        named = f"domains A = `{a}`, B = `{b}`"
    else:
        named = "domains " + ", ".join(f"`{m}`" for m in result["measured_domains"])
    out = [
        f"# Evaluation: {result['method']} at step {result['step']}",
        "",
        f"Dataset `{result['dataset']}`, {named}; at most "
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
    out += _pairs_table(result.get("pairs"))
    out += _paired_table(result) + _generated_tables(result, fid_name)
    out += _conditional_tables(result, fid_name)
    out += steganography.markdown(result.get("steganography"))
    out += ["| classifier | test accuracy | train images |", "|---|---|---|"]
    for name, c in result["classifiers"].items():
        label = {
            "domain": f"{a} vs {b} (domain)",
            "domains": "every domain of the run (domain)",
            classifiers.CROSS_WRITER: "cross-writer (digit class, both writer sets, every style)",
        }.get(name, f"{name} (digit class)")
        weak = " (below its bar)" if c.get("below_bar") else ""
        out.append(f"| {label} | {_f(c['test_accuracy'])}{weak} | {c.get('train_examples')} |")
    out.append("")
    if result["notes"]:
        out += ["Notes:", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(out)


def _pairs_table(pairs):
    if not pairs:
        return []
    domains = _pair_domains([(n, e["source"], e["target"]) for n, e in pairs.items()])
    out = [
        "Every ordered pair path, on the test images of its source domain. Transfer accuracy: "
        "the target domain's digit classifier reads the source label; domain score: the "
        f"classifier of {', '.join(f'`{d}`' for d in domains)} assigns the target domain. "
        "Identity: the untranslated source images.",
        "",
        "| path | source → target | transfer accuracy | domain score | identity accuracy | "
        "identity domain score |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in pairs.items():
        out.append(
            f"| {name} | {e['source']} → {e['target']} | {_f(e['transfer_accuracy'])} | "
            f"{_f(e['domain_score'])} | {_f(e['identity_accuracy'])} | "
            f"{_f(e['identity_domain_score'])} |"
        )
    return [*out, ""]


def _paired_table(result):
    rows = [(r, e) for r, e in result["directions"].items() if e.get("l1") is not None]
    if not rows:
        return []
    out = [
        "Paired test images: the translation against its aligned target; identity = the "
        "source image itself against the target. L1 on [-1, 1] images (lower is better), "
        "PSNR in dB (higher is better).",
        "",
        "| direction | L1 | PSNR (dB) | identity L1 | identity PSNR (dB) |",
        "|---|---|---|---|---|",
    ]
    for role, e in rows:
        base = result["baselines"][role]
        out.append(
            f"| {role} ({e['source']} → {e['target']}) | {e['l1']:.4f} | {e['psnr']:.2f} | "
            f"{base['identity_l1']:.4f} | {base['identity_psnr']:.2f} |"
        )
    return out + [""]


def _generated_tables(result, fid_name):
    everything = result.get("generated") or {}
    generated = {n: e for n, e in everything.items() if e.get("kind") != conditional.JOINT_GENERATE}
    joint = {n: e for n, e in everything.items() if n not in generated}
    return _single_generated_tables(generated, fid_name) + _joint_tables(joint)


def _joint_tables(joint):
    if not joint:
        return []
    out = [
        "Pairs generated from one noise (one image per domain): each domain's digit classifier "
        "reads the samples. Correspondence: the fraction of noises read as the same digit in "
        "every domain. Largest gap: the class histogram's largest distance from uniform. "
        "Diversity: the samples' mean pairwise distance over that of the real test images.",
        "",
        "| path | samples | correspondence | domain | largest gap from uniform | diversity | "
        "class histogram (0, 1, ...) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in joint.items():
        for d, v in e["per_domain"].items():
            hist = " ".join(f"{p:.2f}" for p in v["class_histogram"])
            out.append(
                f"| {name} | {e['examples']} | {_f(e['correspondence'])} | {d} | "
                f"{_f(v['uniform_gap'])} | {_f(v['diversity'], 2)} | {hist} |"
            )
    return [*out, ""]


def _single_generated_tables(generated, fid_name):
    if not generated:
        return []
    out = [
        f"Generated samples against the real test images of their domain. Real train images "
        f"= the {fid_name} of as many real train images: the floor at this sample size. Class "
        "accuracy: every class asked for equally often, read by the domain's digit "
        "classifier; real = that classifier on the real test images (the ceiling).",
        "",
        f"| path | domain | samples | class accuracy | real class accuracy | {fid_name} | "
        f"KID (± std) | real train images {fid_name} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in generated.items():
        kid = "n/a" if e.get("kid") is None else f"{e['kid']:.4f} ± {e['kid_std']:.4f}"
        out.append(
            f"| {name} | {e['target']} | {e['examples']} | {_f(e['class_accuracy'])} | "
            f"{_f(e['real_class_accuracy'])} | {_f(e['fid'], 2)} | {kid} | "
            f"{_f(e['real_fid'], 2)} |"
        )
    out.append("")
    for name, e in generated.items():
        per_class = e.get("per_class_accuracy")
        if per_class:
            out += [
                f"Class accuracy of `{name}` per class asked for:",
                "",
                "| " + " | ".join(["class", *per_class]) + " |",
                "|" + "---|" * (len(per_class) + 1),
                "| " + " | ".join(["accuracy", *(_f(v, 2) for v in per_class.values())]) + " |",
                "",
            ]
    return out


def _conditional_tables(result, fid_name):
    out = []
    for name, e in (result.get("conditional") or {}).items():
        out += [
            f"`{name}`: the test images of every other domain translated into each target "
            "domain. Domain accuracy: the run's all-domain classifier assigns the target; "
            "class preservation: the target's digit classifier (of mnist for a domain without "
            "one) reads the source image's class; among digit domains of both sets of writers "
            "(digits and an MNIST-based one), the cross-writer judge does, one digit classifier "
            "trained on both sets drawn in every style.",
            "",
            f"| target domain | images | domain accuracy | class preservation (judge) | "
            f"{fid_name} | KID (± std) |",
            "|---|---|---|---|---|---|",
        ]
        for target, t in e["targets"].items():
            kid = "n/a" if t.get("kid") is None else f"{t['kid']:.4f} ± {t['kid_std']:.4f}"
            judge = f" ({t['class_judge']})" if t.get("class_judge") else ""
            out.append(
                f"| {target} | {t['examples']} | {_f(t['domain_accuracy'])} | "
                f"{_f(t['class_preservation'])}{judge} | {_f(t['fid'], 2)} | {kid} |"
            )
        avg = e["average"]
        out += [
            f"| **average** | | {_f(avg['domain_accuracy'])} | {_f(avg['class_preservation'])} "
            f"| {_f(avg['fid'], 2)} | {_f(avg['kid'], 4)} |",
            "",
            f"Sample grid of `{name}`: one row per source image; columns: the source, then its "
            f"translation into {', '.join(e['domains'])}.",
            "",
        ]
    return out


def write_summaries(writer, result, grid=None):
    import tensorflow as tf

    step = result["step"]
    with writer.as_default(step=step):
        for role, e in result["directions"].items():
            for key in (
                "transfer_accuracy",
                "domain_score",
                "fid",
                "kid",
                "inception_fid",
                "l1",
                "psnr",
            ):
                if e.get(key) is not None:
                    tf.summary.scalar(f"eval/{role}/{key}", e[key])
            for key, value in result["baselines"][role].items():
                if value is not None:
                    tf.summary.scalar(f"eval/{role}/baseline_{key}", value)
        for name, e in (result.get("pairs") or {}).items():
            for key in ("transfer_accuracy", "domain_score"):
                if e[key] is not None:
                    tf.summary.scalar(f"eval/pairs/{name}/{key}", e[key])
        for name, e in (result.get("generated") or {}).items():
            for key in ("class_accuracy", "fid", "kid", "correspondence"):
                if e.get(key) is not None:
                    tf.summary.scalar(f"eval/{name}/{key}", e[key])
            for d, v in (e.get("per_domain") or {}).items():
                tf.summary.scalar(f"eval/{name}/{d}/uniform_gap", v["uniform_gap"])
                tf.summary.scalar(f"eval/{name}/{d}/diversity", v["diversity"])
        for name, e in (result.get("conditional") or {}).items():
            for target, t in [*e["targets"].items(), ("average", e["average"])]:
                for key in ("domain_accuracy", "class_preservation", "fid"):
                    if t.get(key) is not None:
                        tf.summary.scalar(f"eval/{name}/{target}/{key}", t[key])
        for role, e in (result.get("steganography") or {}).items():
            tf.summary.scalar(f"eval/{role}/steganography_clean_psnr", e["clean"]["psnr"])
            for n in e["noisy"]:
                tf.summary.scalar(f"eval/{role}/steganography_psnr_{n['stddev']:g}", n["psnr"])
                tf.summary.scalar(f"eval/{role}/steganography_gain_{n['stddev']:g}", n["gain"])
        if result.get("uda"):
            for key in ("accuracy", "gap_closed"):
                if result["uda"][key] is not None:
                    tf.summary.scalar(f"eval/uda/{key}", result["uda"][key])
        if grid is not None:
            tf.summary.image("eval/samples", grid[None], max_outputs=1)
    writer.flush()


def evaluate_model_dir(
    model_dir,
    step=None,
    eval_examples=None,
    data_dir=None,
    inception_weights=None,
    metrics=None,
    output_dir=None,
):
    """Restores ``model_dir`` (latest or ``step``) and evaluates it; returns the metrics dict.
    The reports go to ``output_dir`` (default ``model_dir``)."""
    import tensorflow as tf

    from trainer import checkpoints

    trained = checkpoints.load_trained(model_dir, step)
    config = trained.config
    data = config.data if data_dir is None else dataclasses.replace(config.data, data_dir=data_dir)
    ev = config.eval
    if eval_examples is not None:
        if eval_examples < 2:
            raise ValueError(f"--eval_examples must be >= 2, got {eval_examples}.")
        ev = dataclasses.replace(ev, eval_examples=eval_examples)
    if inception_weights is not None:
        ev = dataclasses.replace(ev, inception_weights=inception_weights)
    out = output_dir or model_dir
    train = dataclasses.replace(config.train, model_dir=out)
    config = config.replace(data=data, eval=ev, train=train)
    writer = tf.summary.create_file_writer(io_utils.join(out, "logs", "eval"))
    return evaluate(trained.model, config, trained.step, writer=writer, metrics=metrics or None)
