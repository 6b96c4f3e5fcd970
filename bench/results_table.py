"""The results table of ``bench/RESULTS.md``, filled one run at a time.

``bench/results.py`` may run one method (or one variant) per idle period: each run adds or
replaces its own row, with the date and the command that produced it, and every other row
stays as it was. The rows' records are kept in ``bench/results.json``; the table is rendered
from all of them between two marker lines of ``RESULTS.md``, and the rest of that file
(hand-written sections) is kept.
"""

import json
import os

BEGIN = "<!-- bench/results.py table: begin (rows are replaced by their next run) -->"
END = "<!-- bench/results.py table: end -->"
TITLE = "# Results on the embedded digit domains"
INTRO = (
    "Written by `python bench/results.py` (see its docstring): each registered method's "
    "shipped flagfile, trained, evaluated by `trainer.eval` and exported. Transfer accuracy: "
    "translated test images classified by the target domain's classifier against the source "
    "labels; domain score: the fraction the A-vs-B domain classifier takes for the target "
    "domain (a translation counts only where both are high; identity = doing nothing). digit "
    "FID/KID: on the target digit classifier's penultimate features (not InceptionV3), "
    "translated vs real target test images. Steganography: the cycle's gain at noise 0.05 "
    "(change of the reconstruction per unit of noise added to the translation; large = the "
    "pair hides the source in a low-amplitude signal). More figures: what a method has "
    "beyond the two directions (generated samples' class accuracy and digit FID, a joint "
    "sample's correspondence and diversity, G(x, c) over its targets, every pair path, paired "
    "PSNR). Train time: the trainer's training loop; wall: the whole `trainer.main` run "
    "(training, evaluation, export; the data and judges already built). ONNX latency: fp32 "
    "a2b model (one sample of a noise-input path), onnxruntime, one image, median. "
    "Pictures: the row's curve (its figures at every kept checkpoint against the training "
    "step) and its final sample grid."
)
COLUMNS = (
    "row",
    "pair",
    "steps",
    "train time",
    "wall (train + eval + export)",
    "transfer a2b (domain)",
    "identity a2b (domain)",
    "transfer b2a (domain)",
    "UDA accuracy (gap closed)",
    "digit FID a2b / b2a",
    "digit KID a2b",
    "steganography a2b / b2a",
    "more figures",
    "exported size",
    "ONNX latency",
    "pictures",
    "date",
)


def _f(value, fmt="{:.3f}"):
    return "n/a" if value is None else fmt.format(value)


def pair_text(m):
    """The row's domains: ``a → b`` for a translation, the one domain of a generator, the list
    of a multi-domain model."""
    measured = m.get("measured_domains") or []
    if len(measured) == 1:
        return measured[0]
    if len(measured) > 2 or m.get("conditional"):
        return ", ".join(measured)
    return f"{m['domains']['a']} → {m['domains']['b']}"


def more_figures(m):
    """The figures a method has beyond the two directions: generated samples (class accuracy,
    digit FID; a joint sample's correspondence, class-histogram gap and diversity), G(x, c)
    over its targets, every ordered pair path, paired L1/PSNR; a list of texts."""
    out = []
    for name, e in sorted((m.get("generated") or {}).items()):
        if e.get("kind") == "joint_generate":
            per = e.get("per_domain") or {}
            gap = max((v["uniform_gap"] for v in per.values()), default=None)
            div = " / ".join(_f(v["diversity"], "{:.2f}") for v in per.values())
            out.append(
                f"{name}: correspondence {_f(e.get('correspondence'))}, "
                f"largest class gap {_f(gap, '{:.2f}')}, diversity {div}"
            )
        else:
            parts = []
            if e.get("class_accuracy") is not None:
                parts.append(f"class accuracy {_f(e['class_accuracy'])}")
            parts.append(f"digit FID {_f(e.get('fid'), '{:.1f}')}")
            out.append(f"{name}: {', '.join(parts)}")
    for name, e in sorted((m.get("conditional") or {}).items()):
        avg = e.get("average") or {}
        out.append(
            f"{name}: domain accuracy {_f(avg.get('domain_accuracy'))}, class preservation "
            f"{_f(avg.get('class_preservation'))}"
        )
    pairs = m.get("pairs") or {}
    if pairs:
        acc = [
            p["transfer_accuracy"] for p in pairs.values() if p.get("transfer_accuracy") is not None
        ]
        dom = [p["domain_score"] for p in pairs.values()]
        if acc:
            out.append(
                f"{len(pairs)} pair paths: transfer {min(acc):.3f}-{max(acc):.3f}, "
                f"domain {min(dom):.2f}-{max(dom):.2f}"
            )
    for role, e in sorted((m.get("directions") or {}).items()):
        if e.get("psnr") is not None:
            out.append(f"{role} paired PSNR {e['psnr']:.2f} dB, L1 {_f(e.get('l1'))}")
    return out


def export_notes(r):
    """The exported artifacts that are not ok, named with their figure and bound."""
    not_ok = r.get("not_ok") or []
    return [f"export: {', '.join(not_ok)}"] if not_ok else []


def cells(r):
    """The markdown cells of one run ``r`` (as ``results.collect`` returns it), date excluded."""
    m = r["metrics"]
    d, base = m["directions"], m["baselines"]

    def transfer(role):
        e = d.get(role)
        if not e:
            return "n/a"
        acc = e.get("transfer_accuracy", e.get("identity_accuracy"))
        dom = e.get("domain_score", e.get("identity_domain_score"))
        return f"{_f(acc)} ({_f(dom, '{:.2f}')})"

    ident = base.get("a2b")
    ident_text = (
        f"{_f(ident['identity_accuracy'])} ({_f(ident['identity_domain_score'], '{:.2f}')})"
        if ident
        else "n/a"
    )
    uda = m.get("uda")
    uda_text = f"{_f(uda['accuracy'])} ({_f(uda['gap_closed'], '{:.2f}')})" if uda else "—"
    fid = " / ".join(_f(d[k].get("fid"), "{:.1f}") if k in d else "n/a" for k in ("a2b", "b2a"))
    kid = (
        f"{d['a2b']['kid']:.3f} ± {d['a2b']['kid_std']:.3f}"
        if "a2b" in d and d["a2b"].get("kid") is not None
        else "n/a"
    )
    stego = m.get("steganography") or {}
    stego_text = (
        " / ".join(_f(stego[k]["noisy"][-1]["gain"], "{:.2f}") for k in ("a2b", "b2a"))
        if {"a2b", "b2a"} <= set(stego)
        else "—"
    )
    steps = str(r["steps"])
    if r["default_steps"] and r["steps"] < r["default_steps"]:
        steps += f" (of {r['default_steps']})"
    secs = r["train_seconds"] if r["train_seconds"] is not None else r["wall_seconds"]
    size = f"{r['export_bytes'] / 1e6:.2f} MB ({r['export_file']})" if r["export_bytes"] else "n/a"
    return [
        r["method"],
        pair_text(m),
        steps,
        _f(secs, "{:.0f} s"),
        _f(r["wall_seconds"], "{:.0f} s"),
        transfer("a2b"),
        ident_text,
        transfer("b2a"),
        uda_text,
        fid,
        kid,
        stego_text,
        "; ".join(more_figures(m) + export_notes(r)) or "—",
        size,
        _f(r["onnx_ms"], "{:.2f} ms"),
    ]


def record(r, command, date):
    """What the table keeps of one run: its cells, judges, notes, date and command."""
    m = r["metrics"]
    judges = {}
    for name, c in m["classifiers"].items():
        label = (
            f"{m['domains']['a']} vs {m['domains']['b']} (domain)"
            if name == "domain"
            else f"{', '.join(m.get('measured_domains') or [name])} (domain)"
            if name == "domains"
            else f"{name} (digit class)"
        )
        judges[label] = c["test_accuracy"]
    return {
        "cells": cells(r),
        "pictures": r.get("pictures") or "—",
        "judges": judges,
        "notes": list(m.get("notes", [])),
        "date": date,
        "command": command,
    }


def load(path):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def section(records, failures=()):
    """The table between the markers, with the commands, judges and notes under it."""
    lines = [
        BEGIN,
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for name in sorted(records):
        rec = records[name]
        row = [*rec["cells"], rec.get("pictures", "—"), rec["date"]]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Commands:", ""]
    lines += [
        f"- {name} ({records[name]['date']}): `{records[name]['command']}`"
        for name in sorted(records)
    ]
    judges = {}
    for name in sorted(records):
        judges.update(records[name]["judges"])
    if judges:
        lines += ["", "Judges (test accuracy of the classifiers that score the table):", ""]
        lines += [f"- {label}: {acc:.3f}" for label, acc in sorted(judges.items())]
    notes = sorted({n for rec in records.values() for n in rec["notes"]})
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    if failures:
        lines += ["", "Failed in the latest run:", ""]
        lines += [f"- {m}: {msg.splitlines()[0]}" for m, msg in failures]
    lines += ["", END]
    return "\n".join(lines)


def splice(text, table):
    """``text`` (RESULTS.md, or "" for a new one) with its table replaced by ``table``; a file
    without one gets it after its title and first paragraph, the rest kept."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + table + tail
    if not text.strip():
        return f"{TITLE}\n\n{INTRO}\n\n{table}\n"
    blocks = text.split("\n\n")
    keep = 2 if blocks[0].startswith("# ") else 0
    return "\n\n".join([*blocks[:keep], table, *blocks[keep:]])
