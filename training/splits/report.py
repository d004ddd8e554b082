"""The split's balance report: per role and pattern counts, the fold prevalence spread against the
seed's patient KFold on the same data, pattern-pair coverage per fold, guard findings.

Pure: tables in, a JSON-able dict (artifacts/splits/report.json, a DVC metric) and markdown out.
Prevalence is positives / labelled clips (undecided clips have no label for that pattern); the
spread is the largest absolute deviation, in prevalence units, of any fold's prevalence from the
prevalence over all fold clips (the cross-validation pool).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from training.splits.grouped import INTERNAL_TEST, PAIR_SEP, TEMPORAL, fold_role
from training.splits.guards import Finding

POOL = "all_folds"  # pseudo-role: every fold together
DEVELOPMENT = "development"  # pseudo-role: internal test + folds


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)


def role_order(n_folds: int) -> list[str]:
    return [TEMPORAL, INTERNAL_TEST, *(fold_role(k) for k in range(n_folds)), POOL, DEVELOPMENT]


def _groups(labelled: pd.DataFrame, n_folds: int) -> dict[str, pd.DataFrame]:
    folds = labelled["role"].str.startswith("fold")
    groups = {r: labelled[labelled["role"] == r] for r in role_order(n_folds)[:-2]}
    groups[POOL] = labelled[folds]
    groups[DEVELOPMENT] = labelled[folds | (labelled["role"] == INTERNAL_TEST)]
    return groups


def role_stats(labelled: pd.DataFrame, patterns: tuple[str, ...], n_folds: int) -> dict[str, dict]:
    """clip_table rows + `role` -> {role: {"patients", "clips", pattern: {labelled, positives, prevalence}}}."""
    out = {}
    for role, rows in _groups(labelled, n_folds).items():
        entry: dict = {"patients": int(rows["patient_id"].nunique()), "clips": int(len(rows))}
        for p in patterns:
            lab = int(rows[p].notna().sum())
            pos = int((rows[p] == 1).sum())
            entry[p] = {"labelled": lab, "positives": pos, "prevalence": _num(pos / lab if lab else np.nan)}
        out[role] = entry
    return out


def spread(stats: dict[str, dict], patterns: tuple[str, ...], n_folds: int) -> dict:
    """Per pattern: overall (pool) prevalence, fold min/max, the largest |fold - overall| and its fold."""
    folds = [fold_role(k) for k in range(n_folds)]
    out: dict = {}
    for p in patterns:
        overall = stats[POOL][p]["prevalence"]
        prev = {f: stats[f][p]["prevalence"] for f in folds if stats[f][p]["prevalence"] is not None}
        if overall is None or not prev:
            out[p] = {"overall": overall, "min": None, "max": None, "max_abs_dev": None, "worst_fold": None}
            continue
        worst = max(prev, key=lambda f: abs(prev[f] - overall))
        out[p] = {"overall": overall, "min": min(prev.values()), "max": max(prev.values()),
                  "max_abs_dev": _num(abs(prev[worst] - overall)), "worst_fold": worst}
    devs = [v["max_abs_dev"] for v in out.values() if v["max_abs_dev"] is not None]
    sizes = [stats[f]["clips"] for f in folds]
    return {"patterns": out, "max_abs_dev_mean": _num(np.mean(devs) if devs else np.nan),
            "max_abs_dev_max": _num(max(devs) if devs else np.nan),
            "clips_per_fold": {"min": min(sizes), "max": max(sizes)}}


def pair_coverage(labelled: pd.DataFrame, patterns: tuple[str, ...], n_folds: int) -> dict:
    """Every pattern pair co-occurring in a fold clip: {pair: {"clips", "folds_with_pair", fold: bool}}."""
    pool = labelled[labelled["role"].str.startswith("fold")]
    out = {}
    for a, b in itertools.combinations(patterns, 2):
        both = pool[(pool[a] == 1) & (pool[b] == 1)]
        if both.empty:
            continue
        present = {fold_role(k): bool((both["role"] == fold_role(k)).any()) for k in range(n_folds)}
        out[f"{a}{PAIR_SEP}{b}"] = {"clips": int(len(both)), "folds_with_pair": int(sum(present.values())),
                                    **present}
    return out


def _assessment(clips: pd.DataFrame, roles: pd.Series, patterns: tuple[str, ...], n_folds: int) -> dict:
    labelled = clips.assign(role=clips["clip_id"].map(roles).astype(str))
    stats = role_stats(labelled, patterns, n_folds)
    dev = {p: _num(abs(stats[INTERNAL_TEST][p]["prevalence"] - stats[DEVELOPMENT][p]["prevalence"]))
           if stats[INTERNAL_TEST][p]["prevalence"] is not None and stats[DEVELOPMENT][p]["prevalence"] is not None
           else None for p in patterns}
    return {"roles": stats, "spread": spread(stats, patterns, n_folds),
            "internal_test_abs_dev": dev, "pairs": pair_coverage(labelled, patterns, n_folds)}


def build_report(clips: pd.DataFrame, splits: pd.DataFrame, baseline: pd.DataFrame, patterns: tuple[str, ...],
                 n_folds: int, seed: int, findings: list[Finding], notes: list[str]) -> dict:
    """The report dict. clips: clip_table rows; splits / baseline: splits tables (clip_id, role) of the
    stratified split and of the seed's patient KFold on the same clips."""
    ours = _assessment(clips, splits.set_index("clip_id")["role"], patterns, n_folds)
    seed_kfold = _assessment(clips, baseline.set_index("clip_id")["role"], patterns, n_folds)
    a, b = ours["spread"]["max_abs_dev_mean"], seed_kfold["spread"]["max_abs_dev_mean"]
    return {
        "seed": seed, "n_folds": n_folds,
        "stratified": ours, "seed_kfold": seed_kfold,
        "spread_ratio": _num(a / b) if a is not None and b else None,  # stratified / seed KFold: < 1 is better
        "guards": {"errors": sum(f.severity == "error" for f in findings),
                   "warnings": sum(f.severity == "warning" for f in findings),
                   "near_duplicate_pairs": sum(f.kind == "near_duplicate_videos" for f in findings),
                   "findings": {f"{f.kind}: {f.subject}": f"{f.severity}: {f.detail}" for f in findings}},
        "notes": {f"note{i}": n for i, n in enumerate(notes)},
    }


def _cell(entry: dict) -> str:
    prev = entry["prevalence"]
    return f"{entry['positives']}/{entry['labelled']} ({prev:.0%})" if prev is not None else "-"


def _roles_table(stats: dict, patterns: tuple[str, ...]) -> list[str]:
    lines = ["| role | patients | clips | " + " | ".join(patterns) + " |", "|---" * (3 + len(patterns)) + "|"]
    for role, entry in stats.items():
        lines.append(f"| {role} | {entry['patients']} | {entry['clips']} | "
                     + " | ".join(_cell(entry[p]) for p in patterns) + " |")
    return lines


def _fmt(x: float | None, pct: bool = True) -> str:
    return "-" if x is None else (f"{x:.1%}" if pct else f"{x}")


def _spread_table(report: dict, patterns: tuple[str, ...]) -> list[str]:
    ours, seed = report["stratified"]["spread"], report["seed_kfold"]["spread"]
    lines = ["| pattern | overall (folds) | stratified: fold range | stratified: max dev | "
             "seed KFold: fold range | seed KFold: max dev |", "|---|---|---|---|---|---|"]
    for p in patterns:
        o, s = ours["patterns"][p], seed["patterns"][p]
        lines.append(f"| {p} | {_fmt(o['overall'])} | {_fmt(o['min'])}-{_fmt(o['max'])} | **{_fmt(o['max_abs_dev'])}** "
                     f"| {_fmt(s['min'])}-{_fmt(s['max'])} | {_fmt(s['max_abs_dev'])} |")
    lines.append(f"| mean of max dev | | | **{_fmt(ours['max_abs_dev_mean'])}** | | {_fmt(seed['max_abs_dev_mean'])} |")
    lines.append(f"| clips per fold | | {ours['clips_per_fold']['min']}-{ours['clips_per_fold']['max']} | | "
                 f"{seed['clips_per_fold']['min']}-{seed['clips_per_fold']['max']} | |")
    return lines


def _pairs_table(report: dict, n_folds: int) -> list[str]:
    folds = [fold_role(k) for k in range(n_folds)]
    ours, seed = report["stratified"]["pairs"], report["seed_kfold"]["pairs"]
    if not ours:
        return ["No pattern pair co-occurs in a fold clip."]
    lines = ["| pair | clips | " + " | ".join(folds) + " | seed KFold folds with pair |", "|---" * (3 + n_folds) + "|"]
    for pair, entry in ours.items():
        marks = " | ".join("yes" if entry[f] else "**no**" for f in folds)
        other = seed.get(pair, {}).get("folds_with_pair", 0)
        lines.append(f"| {pair} | {entry['clips']} | {marks} | {other}/{n_folds} |")
    return lines


def to_markdown(report: dict, patterns: tuple[str, ...]) -> str:
    """The report as readable markdown (artifacts/splits/report.md)."""
    n_folds = report["n_folds"]
    ratio = report["spread_ratio"]
    out = [f"# Split report (seed {report['seed']}, {n_folds} folds)", "",
           "## Fold prevalence spread: stratified vs the seed's patient KFold (same data, same seed)", "",
           *_spread_table(report, patterns), "",
           f"Spread ratio (stratified / seed KFold, mean over patterns of the largest fold deviation): "
           f"{'-' if ratio is None else f'{ratio:.2f}'}.", "",
           "## Clips per role: positives/labelled (prevalence)", "",
           *_roles_table(report["stratified"]["roles"], patterns), "",
           "## Co-occurring pattern pairs per fold", "", *_pairs_table(report, n_folds), "",
           "## Guards", ""]
    guards = report["guards"]
    out.append(f"{guards['errors']} error(s), {guards['warnings']} warning(s), "
               f"{guards['near_duplicate_pairs']} near-duplicate video pair(s) across roles.")
    out += [f"- {k}: {v}" for k, v in guards["findings"].items()]
    st = report.get("stability")
    if st:
        out += ["", "## Stability", "",
                (f"Frozen roles: {st['frozen_file']} ({'re-dealt: split.reshuffle' if st['reshuffle'] else 'kept'}). "
                 f"{st['kept']} patient(s) kept their role, {st['moved']} moved "
                 f"({st['moved_into_folds_from_test']} from a test role into a fold), {st['new']} new, "
                 f"{st['gone']} gone.") if st["frozen_file"] else
                "No frozen roles (data/splits/roles-*.parquet): run `luskit split freeze` to keep these roles "
                "across label changes and reviews."]
    if report["notes"]:
        out += ["", "## Notes", "", *(f"- {n}" for n in report["notes"].values())]
    return "\n".join(out) + "\n"
