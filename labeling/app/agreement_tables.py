"""artifacts/labels/agreement.json and the label tables as long tables the Agreement page plots (pure).

agreement.json (labels stage): agreement.<level>.<pattern>.<statistic> = {value, ci_low, ci_high,
n_units, ...} with statistics percent_agreement, fleiss_kappa, krippendorff_alpha and cohen_kappa
(a dict "a|b" -> stats per annotator pair); annotators.<name>.vs_consensus|vs_gold.<level>.<pattern>
.<metric>; consensus.vs_gold.<method>.<level>.<pattern>.<metric>.
"""

from __future__ import annotations

import itertools

import pandas as pd

from luskit.schema import PATTERNS

STAT_COLUMNS = ["value", "ci_low", "ci_high", "n_units"]


def _stat(entry: dict | None) -> list:
    entry = entry or {}
    return [entry.get(k) for k in STAT_COLUMNS]


def levels(agreement: dict) -> list[str]:
    return list((agreement.get("agreement") or {}).keys())


def agreement_stats(agreement: dict, level: str) -> pd.DataFrame:
    """pattern, statistic, value, ci_low, ci_high, n_units (kappa, alpha, percent agreement)."""
    rows = []
    for pattern, stats in (agreement.get("agreement", {}).get(level) or {}).items():
        for name, entry in stats.items():
            if name != "cohen_kappa" and isinstance(entry, dict):
                rows.append([pattern, name.replace("_", " "), *_stat(entry)])
    return pd.DataFrame(rows, columns=["pattern", "statistic", *STAT_COLUMNS])


def pairwise_kappa(agreement: dict, level: str) -> pd.DataFrame:
    """pattern, pair ('a vs b'), value, ci_low, ci_high, n_units (Cohen's kappa per annotator pair)."""
    rows = []
    for pattern, stats in (agreement.get("agreement", {}).get(level) or {}).items():
        for pair, entry in (stats.get("cohen_kappa") or {}).items():
            rows.append([pattern, " vs ".join(pair.split("|")), *_stat(entry)])
    return pd.DataFrame(rows, columns=["pattern", "pair", *STAT_COLUMNS])


def annotator_scores(agreement: dict, reference: str, level: str) -> pd.DataFrame:
    """annotator, pattern, metric, value, ci_low, ci_high, n_units against `reference` (vs_consensus | vs_gold)."""
    rows = []
    for name, refs in (agreement.get("annotators") or {}).items():
        for pattern, metrics in ((refs.get(reference) or {}).get(level) or {}).items():
            for metric, entry in metrics.items():
                rows.append([name, pattern, metric, *_stat(entry)])
    return pd.DataFrame(rows, columns=["annotator", "pattern", "metric", *STAT_COLUMNS])


def consensus_scores(agreement: dict, level: str) -> pd.DataFrame:
    """method, pattern, metric, value, ci_low, ci_high, n_units: each consensus method against gold."""
    rows = []
    for method, by_level in ((agreement.get("consensus") or {}).get("vs_gold") or {}).items():
        for pattern, metrics in (by_level.get(level) or {}).items():
            for metric, entry in metrics.items():
                rows.append([method, pattern, metric, *_stat(entry)])
    return pd.DataFrame(rows, columns=["method", "pattern", "metric", *STAT_COLUMNS])


def pairwise_confusion(clip_labels: pd.DataFrame) -> pd.DataFrame:
    """pattern, pair, first, second ('present'/'absent' each), count: 2x2 tables for every annotator pair
    over the clips both rated (clip_labels.parquet: one row per clip and annotator, Int8 per pattern)."""
    rows = []
    annotators = sorted(clip_labels["annotator"].unique())
    wide = {p: clip_labels.pivot_table(index="clip_id", columns="annotator", values=p, aggfunc="first")
            for p in PATTERNS if p in clip_labels}
    for a, b in itertools.combinations(annotators, 2):
        for pattern, table in wide.items():
            both = table[[a, b]].dropna().astype(int)
            if both.empty:
                continue
            for va, vb in itertools.product((1, 0), repeat=2):
                count = int(((both[a] == va) & (both[b] == vb)).sum())
                rows.append([pattern, f"{a} vs {b}", _word(va), _word(vb), count])
    return pd.DataFrame(rows, columns=["pattern", "pair", "first", "second", "count"])


def _word(v: int) -> str:
    return "present" if v == 1 else "absent"


def quality_counts(quality: pd.DataFrame) -> pd.DataFrame:
    """annotator, quality, videos: how often each reader chose each quality answer (<NA> -> 'not answered')."""
    q = quality.assign(quality=quality["quality"].astype("object").where(quality["quality"].notna(), "not answered"))
    return q.groupby(["annotator", "quality"]).size().rename("videos").reset_index()


def excluded_videos(quality: pd.DataFrame) -> pd.DataFrame:
    """video_id, patient_id, excluded_reason of the videos the labels stage dropped."""
    gone = quality[quality["excluded"].astype(bool)]
    return gone.drop_duplicates("video_id")[["video_id", "patient_id", "excluded_reason"]].reset_index(drop=True)
