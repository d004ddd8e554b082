"""The DVC metrics summary and artifacts/eval/comparison.md (laid out like the LUV-Net paper's Tables 1-2).

Pure: results in, a dict / Markdown text out. `results` is {model: views.score_model(...)}, `comparisons`
the concatenated compare.compare_view frames, `costs` {model: costs.measure_checkpoint(...) or {"error"}}.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS, PATTERNS
from training.evaluation import nested
from training.evaluation.binary import THRESHOLD_METRICS
from training.evaluation.views import headline

NAME = dict(zip(PATTERN_SLUGS, PATTERNS))


def _metric_block(score: dict) -> dict:
    out = {"n": score["n"], "n_patients": score["n_patients"], "macro_auroc": score["macro"]["auroc"],
           "micro_auroc": score["micro"]["auroc"], "macro_auprc": score["macro"]["auprc"],
           "macro_f1": score["macro"]["f1"],
           "auroc": {s: p["auroc"] for s, p in score["patterns"].items()}}
    if "auroc_ci" in score["macro"]:
        out["macro_auroc_ci"] = score["macro"]["auroc_ci"]
    return out


def summary_metrics(results: Mapping[str, dict], video_level: str) -> dict:
    """Compact DVC metrics: per model and set, clip-level headline AUROCs (+ fold mean/SD) and video macro AUROC."""
    out: dict = {}
    for model, result in results.items():
        per_set = {}
        for set_name, levels in result.items():
            head = headline(result, set_name)
            if head is None:
                per_set[set_name] = {"n": 0}
                continue
            block = _metric_block(head)
            folds = levels["clip"]["fold_summary"].get("macro", {}).get("auroc", {})
            block["folds_macro_auroc_mean"], block["folds_macro_auroc_sd"] = folds.get("mean"), folds.get("sd")
            video = headline(result, set_name, video_level)
            block[f"{video_level}_macro_auroc"] = video["macro"]["auroc"] if video else None
            per_set[set_name] = block
        out[model] = per_set
    return out


# --- Markdown ---------------------------------------------------------------------------------------

def fmt(value, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def fmt_p(p) -> str:
    if p is None or not np.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _ci(block: dict, name: str) -> str:
    ci = block.get(f"{name}_ci")
    return f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""


def _p_cell(comparisons: pd.DataFrame, view: str, model: str, slug: str) -> str:
    if comparisons.empty:
        return ""
    c = comparisons
    row = c[(c["view"] == view) & (c["model"] == model) & (c["pattern"] == slug)]
    if row.empty:
        return ""
    r = row.iloc[0]
    boot = fmt_p(r["boot_p_holm"]) if np.isfinite(r["boot_p_holm"]) else "— (too few patients)"
    return f"<br>p={boot}<br>(DeLong, clips independent: {fmt_p(r['delong_p_holm'])})"


def auroc_table(results: Mapping[str, dict], comparisons: pd.DataFrame, set_name: str, level: str = "clip") -> str:
    """Rows = models, columns = patterns + micro + macro; cells AUROC [CI] and, for baselines on the
    clip level, the Holm-adjusted patient-bootstrap p against the reference, then DeLong's (clips independent)."""
    header = "| Model | " + " | ".join(PATTERNS) + " | Micro | Macro |\n|---|" + "---|" * (len(PATTERNS) + 2) + "\n"
    lines = []
    for model, result in results.items():
        head = headline(result, set_name, level)
        if head is None:
            continue
        cells = [fmt(p["auroc"]) + _ci(p, "auroc")
                 + (_p_cell(comparisons, set_name, model, s) if level == "clip" else "")  # DeLong: clip level only
                 for s, p in head["patterns"].items()]
        cells += [fmt(head["micro"]["auroc"]) + _ci(head["micro"], "auroc"),
                  fmt(head["macro"]["auroc"]) + _ci(head["macro"], "auroc")]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n" if lines else ""


def folds_table(results: Mapping[str, dict], set_name: str) -> str:
    """Per model, the mean +- SD over fold models of each pattern's AUROC and the macro AUROC (clip level)."""
    header = "| Model | " + " | ".join(PATTERNS) + " | Macro |\n|---|" + "---|" * (len(PATTERNS) + 1) + "\n"
    lines = []
    for model, result in results.items():
        summary = result[set_name]["clip"].get("fold_summary") or {}
        if not summary:
            continue
        cells = [_mean_sd(summary["patterns"][s]["auroc"]) for s in PATTERN_SLUGS]
        cells.append(_mean_sd(summary["macro"]["auroc"]))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n" if lines else ""


def _mean_sd(block: dict) -> str:
    if block["mean"] is None:
        return "—"
    return f"{fmt(block['mean'])} ± {fmt(block['sd'])} (n={block['n_folds']})"


def operating_table(results: Mapping[str, dict], set_name: str) -> str:
    """Rows = (model, pattern): threshold, sensitivity, specificity, PPV, NPV, F1 [CI], AUPRC, ECE."""
    cols = ["Threshold", *[m.upper() if m in ("ppv", "npv") else m.capitalize() for m in THRESHOLD_METRICS],
            "AUPRC", "ECE", "n (pos)"]
    header = "| Model | Pattern | " + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols) + "\n"
    lines = []
    for model, result in results.items():
        head = headline(result, set_name)
        if head is None:
            continue
        for slug, p in head["patterns"].items():
            cells = [fmt(p["threshold"]), *[fmt(p[m]) + _ci(p, m) for m in THRESHOLD_METRICS],
                     fmt(p["auprc"]) + _ci(p, "auprc"), fmt(p["ece"]), f"{p['n']} ({p['n_pos']})"]
            lines.append(f"| {model} | {NAME[slug]} | " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n" if lines else ""


def support_table(results: Mapping[str, dict], set_name: str, level: str = "clip") -> str:
    """What the intervals of a set rest on, per pattern (from the first model with the set; the labels, the
    patients and the bootstrap draws are the same for every model): positive / negative patients, valid and
    single-class replicates, and why a CI is withheld."""
    for result in results.values():
        head = headline(result, set_name, level)
        if head is None:
            continue
        header = ("| Pattern | clips (pos) | positive patients | negative patients | valid replicates "
                  "| single-class replicates | CI |\n|---|---|---|---|---|---|---|\n")
        lines = []
        for slug, p in [*head["patterns"].items(), ("micro", head["micro"])]:
            name = NAME.get(slug, "Micro (all pairs)")
            valid = "—" if p.get("boot_valid") is None else str(p["boot_valid"])
            single = "—" if p.get("boot_single_class") is None else str(p["boot_single_class"])
            ci = ("withheld: " + p["ci_reason"]) if p.get("ci_reason") else ("given" if p.get("auroc_ci") else "—")
            lines.append(f"| {name} | {p['n']} ({p['n_pos']}) | {p.get('n_pos_patients', '—')} "
                         f"| {p.get('n_neg_patients', '—')} | {valid} | {single} | {ci} |")
        return header + "\n".join(lines) + "\n"
    return ""


def label_views_section(results: Mapping[str, dict], set_name: str) -> str:
    """Test-set AUROC after blind review (the headline) and before review (the readers' labels alone), per model,
    and the provenance of the set's labels (protected.py); "" for an empty set."""
    blocks = {m: r[set_name]["clip"] for m, r in results.items() if headline(r, set_name) is not None}
    if not blocks:
        return ""
    first = next(iter(blocks.values()))
    if "label_note" in first:
        return f"{set_name}: {first['label_note']}.\n"
    header = ("| Model | " + " | ".join(PATTERNS) + " | Macro |\n|---|" + "---|" * (len(PATTERNS) + 1) + "\n")
    lines = []
    for model, block in blocks.items():
        after, before = block[block["headline"]], block["before_review"]
        cells = [f"{fmt(after['patterns'][s]['auroc'])} ({fmt(before['patterns'][s]['auroc'])})" for s in PATTERN_SLUGS]
        cells.append(f"{fmt(after['macro']['auroc'])} ({fmt(before['macro']['auroc'])})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    prov = first["label_provenance"]
    rows = [("clips", "n"), ("label as the readers gave it", "from_readers"),
            ("changed by blind review", "changed_by_blind_review"),
            ("model-assisted decisions left out", "model_assisted_left_out"),
            ("training label differs from the blind one", "training_label_differs")]
    counts = ("| Provenance | " + " | ".join(PATTERNS) + " |\n|---|" + "---|" * len(PATTERNS) + "\n"
              + "\n".join(f"| {name} | " + " | ".join(str(prov[s][key]) for s in PATTERN_SLUGS) + " |"
                          for name, key in rows) + "\n")
    return (f"{set_name}, AUROC after blind review (before review: the readers' labels alone):\n\n"
            + header + "\n".join(lines) + "\n\n" + counts)


def cost_table(costs: Mapping[str, dict]) -> str:
    header = ("| Model | Parameters (M) | GMACs per clip | CPU seconds per clip | Input (B, T, C, H, W) |\n"
              "|---|---|---|---|---|\n")
    lines = []
    for model, c in costs.items():
        if "error" in c:
            lines.append(f"| {model} | — | — | — | not measured: {c['error']} |")
        else:
            lines.append(f"| {model} | {c['params_m']:.2f} | {c['gmacs_per_clip']:.2f} "
                         f"| {c['cpu_seconds_per_clip']:.3f} | {tuple(c['input_shape'])} |")
    return header + "\n".join(lines) + "\n" if lines else ""


def notes(results: Mapping[str, dict]) -> list[str]:
    """Empty sets, missing CIs and undefined metrics of the headline views, one line each (deduplicated)."""
    out: list[str] = []
    for model, result in results.items():
        for set_name, levels in result.items():
            if levels["clip"].get("n") == 0:
                out.append(f"{set_name}: {levels['clip']['note']}")
                continue
            head = headline(result, set_name)
            if head["ci_note"]:
                out.append(f"{set_name}: {head['ci_note']}")
            for slug, p in head["patterns"].items():
                for metric, why in p["undefined"].items():
                    who = f"{model}, " if metric in ("ppv", "npv", "f1") else ""  # depend on the model's calls
                    out.append(f"{set_name}, {who}{NAME[slug]}: {metric} undefined ({why})")
    return list(dict.fromkeys(out))


SET_HEADINGS = {
    "internal_test": "Table 1. Development: internal test group (probability-averaged fold ensemble), clip level",
    "validation": "Table 1b. Development: out-of-fold validation (all folds pooled), clip level",
    "temporal": "Table 2. Temporally separated set (probability-averaged fold ensemble), clip level",
}


def comparison_markdown(results: Mapping[str, dict], comparisons: pd.DataFrame, costs: Mapping[str, dict],
                        meta: dict) -> str:
    """The whole comparison.md. meta: reference, n_boot, ci, seed, video_pooling, ensemble_threshold,
    min_patients_ci, machine (cost timings), label_error_method."""
    ci_pct = int(round(meta["ci"] * 100))
    parts = [
        "# Model comparison\n",
        f"Written by `luskit evaluate`. AUROC with {ci_pct}% CIs from a patient-level bootstrap "
        f"({meta['n_boot']} replicates, seed {meta['seed']}; clips of one patient are resampled together). "
        f"A CI (and a bootstrap p) is withheld, with the reason, for a pattern with fewer than "
        f"{meta.get('min_class_patients_ci', 5)} positive or negative patients in the set; each set's table of "
        "patient counts and valid replicates says what its intervals rest on. "
        f"p: patient-level paired bootstrap of the AUROC difference against **{meta['reference']}** per pattern "
        "(p = (1 + count) / (B + 1) over the valid replicates), Holm-adjusted over all (model, pattern) "
        "comparisons of the table. Second, in brackets, the Holm-adjusted paired DeLong p, labelled "
        "\"clips independent\": it treats clips of one patient as independent and is too small when they are not. "
        f"Thresholds: each fold model's Youden threshold on its validation fold; the ensemble uses the "
        f"{meta['ensemble_threshold']} of the fold thresholds on the test sets; "
        f"{meta.get('oof_thresholds', nested.NESTED_NOTE)}. Nothing here is tuned on the rows it scores.\n",
        "Fold models evaluated: " + "; ".join(f"{m} {', '.join(map(str, f))}" for m, f in meta.get("folds", {}).items())
        + ".\n",
    ]
    for set_name in ("internal_test", "validation", "temporal"):
        table = auroc_table(results, comparisons, set_name)
        parts.append(f"## {SET_HEADINGS[set_name]}\n")
        parts.append(table or "No predictions in this set.\n")
        support = support_table(results, set_name)
        if support:
            parts.append(f"What the intervals on {set_name} rest on (patients per class, bootstrap replicates):\n\n"
                         f"{support}")
        folds = folds_table(results, set_name)
        if folds:
            parts.append(f"Fold models one by one (mean ± SD over folds) on {set_name}:\n\n{folds}")
    parts.append("## Test labels: before any model and after blind review\n")
    parts.append("Internal-test and temporal clips are scored on `blind_label`: the readers' consensus with only "
                 "the reviewer decisions made without any model output on screen (the review app hides the model "
                 "on these clips; Label Studio adjudication never shows it). A decision made with the model's help "
                 "never reaches a test label. In brackets the same clips scored on the readers' labels alone, "
                 "before any reviewer decision: the labels as they stood before any model existed.\n")
    for set_name in ("internal_test", "temporal"):
        section = label_views_section(results, set_name)
        if section:
            parts.append(section)
    level = f"video_{meta['video_pooling']}"
    parts.append(f"## Video level (clip probabilities pooled by {meta['video_pooling']}; a video is positive "
                 "when any of its clips is)\n")
    for set_name in ("internal_test", "validation", "temporal"):
        table = auroc_table(results, comparisons, set_name, level)
        if table:
            parts.append(f"{SET_HEADINGS[set_name].split(', clip level')[0]}:\n\n{table}")
    parts.append("## Operating points (headline views, clip level; test sets at the validation thresholds, "
                 "out-of-fold rows at nested thresholds)\n")
    for set_name in ("internal_test", "validation", "temporal"):
        table = operating_table(results, set_name)
        if table:
            parts.append(f"{SET_HEADINGS[set_name].split(', clip level')[0]}:\n\n{table}")
    parts.append("## Model cost\n")
    m = meta.get("machine", {})
    if costs:
        parts.append(f"Parameters and GMACs per clip (batch 1) from each model's fold-0 checkpoint; CPU seconds per "
                     f"clip are the median of {meta.get('cost_repeats')} timed pass(es) on this machine "
                     f"({m.get('processor')}, {m.get('torch_threads')} torch threads). GPU timings: BENCHMARKS.md."
                     f"\n\n{cost_table(costs)}")
    else:
        parts.append("Not measured (evaluate.measure_costs: false).\n")
    found = notes(results)
    if found:
        parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in found) + "\n")
    return "\n".join(parts)
