"""Scores a faithful translation would get from the judges, the translation drawn by hand.

The embedded digit domains are renderings of two sets of grey digits (MNIST, and the UCI digits
for ``digits``), so a translation that keeps every stroke can be drawn without a network: the
source's test digits rendered the way the target domain was built (``analytic``).
``bench/judge_ceiling.py`` prints the tables.
"""

import numpy as np


def grey_digits(domain, split):
    """(grey uint8 [N, 32, 32], labels): the digits ``domain``'s ``split`` is rendered from."""
    from trainer.data import digit_domains

    if domain == "digits":
        images, labels = digit_domains.domain_arrays("digits", split)
        return images[..., 0], labels
    return digit_domains.source_digits(domain, split)  # MNIST's, its class splits' own


def analytic(target, grey, seed):
    """uint8 RGB [N, 32, 32, 3]: ``grey`` digits rendered the way ``target`` was built."""
    from trainer.data import digit_domains, multi_domain

    if target in multi_domain.DERIVATIONS:
        return multi_domain.derive_arrays(target, np.repeat(grey[..., None], 3, axis=-1))
    if target not in digit_domains.DOMAINS:
        raise ValueError(f"No analytic rendering into {target!r}.")
    return digit_domains.draw(target, grey, seed)


def digit_kept_table(domains, data_dir, seed, judge=None):
    """Markdown: each target's digit judge (or ``judge`` for every target) reading the source
    test digits rendered as the target, and the ceiling per target, sources split evenly."""
    from trainer.eval import classifiers

    lines = [
        "| target | judge on its real test images | "
        + " | ".join(f"from {s}" for s in domains)
        + " | ceiling (sources split evenly) |",
        "|---|---|" + "---|" * len(domains) + "---|",
    ]
    ceilings = []
    sources = {source: grey_digits(source, "test") for source in domains}
    for target in domains:
        reader = judge or classifiers.class_classifier("digits", target, data_dir=data_dir)
        cells, accs = [], []
        for source in domains:
            if source == target:
                cells.append("—")
                continue
            grey, labels = sources[source]
            acc = float(np.mean(reader.predict(analytic(target, grey, seed)) == labels))
            accs.append(acc)
            cells.append(f"{acc:.3f}")
        ceilings.append(float(np.mean(accs)))
        if judge is None:
            own = reader.test_accuracy
        else:
            x, y = classifiers.domain_arrays("digits", target, "test", data_dir=data_dir)
            own = float(np.mean(reader.predict(x) == y))
        lines.append(
            f"| {target} | {own:.3f} | " + " | ".join(cells) + f" | **{ceilings[-1]:.3f}** |"
        )
    lines.append(f"\nAverage ceiling over the targets: **{np.mean(ceilings):.3f}**")
    return "\n".join(lines)


def uda_table(targets, seeds, seed):
    """Prints the table row by row (each row trains a classifier per seed)."""
    from trainer.data import digit_domains
    from trainer.eval import classifiers

    grey, labels = grey_digits("mnist", "train")
    print("| target | trained on | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("|---|---|" + "---|" * len(seeds), flush=True)
    for target in targets:
        x_test, y_test = digit_domains.domain_arrays(target, "test")
        for name, x in (
            ("MNIST as it is (source-only)", analytic("mnist", grey, seed)),
            (f"MNIST rendered as {target}", analytic(target, grey, seed)),
        ):
            cells = []
            for s in seeds:
                model = classifiers.train_classifier(x, labels, 10, seed=int(s))
                pred = np.argmax(classifiers.predict_logits(model, x_test), -1)
                cells.append(f"{np.mean(pred == y_test):.3f}")
            print(f"| {target} | {name} | " + " | ".join(cells) + " |", flush=True)
