"""Counts of a `luskit pocus` run, read back from the workdir's artifacts (whatever stages have run)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from luskit import paths
from luskit.schema import PATTERNS


def _read(workdir: Path, rel: Path) -> pd.DataFrame | None:
    path = Path(workdir) / rel
    return pd.read_parquet(path) if path.is_file() else None


def role_pattern_counts(splits: pd.DataFrame, consensus: pd.DataFrame) -> dict:
    """Per role: patients, videos, clips, and per pattern labelled / positive clips and positive patients."""
    labels = consensus[["clip_id", "pattern", "label"]].merge(splits[["clip_id", "patient_id", "role"]], on="clip_id")
    out = {}
    for role, grp in splits.groupby("role", sort=True):
        lab = labels[labels["role"] == role]
        per = {}
        for pattern in PATTERNS:
            rows = lab[(lab["pattern"] == pattern) & lab["label"].notna()]
            pos = rows[rows["label"] == 1]
            per[pattern] = {"labelled_clips": int(len(rows)), "positive_clips": int(len(pos)),
                            "positive_patients": int(pos["patient_id"].nunique())}
        out[str(role)] = {"patients": int(grp["patient_id"].nunique()), "videos": int(grp["video_id"].nunique()),
                          "clips": int(len(grp)), "patterns": per}
    return out


def one_class_roles(by_role: dict) -> list[str]:
    """'<role>: <pattern> has no positive (or no negative) clip' wherever AUROC and Youden cannot be computed."""
    found = []
    for role, body in by_role.items():
        for pattern, c in body["patterns"].items():
            if c["labelled_clips"] and c["positive_clips"] in (0, c["labelled_clips"]):
                kind = "positive" if c["positive_clips"] == 0 else "negative"
                found.append(f"{role}: {pattern} has no {kind} clip (AUROC and a Youden threshold are undefined there)")
    return found


def headline_auroc(metrics: dict, level: str, set_name: str = "validation") -> dict:
    """Per-pattern and macro AUROC with patient-bootstrap CIs of one model's evaluate metrics.json at `level`
    (clip, video_max or video_mean), from the set's headline view (validation: all folds pooled)."""
    body = metrics.get(set_name, {}).get(level, {})
    view = body.get(body.get("headline", ""), {})
    if not view or not view.get("n"):
        return {}
    return {"n": view["n"], "n_patients": view["n_patients"], "macro": _auroc_entry(view["macro"]),
            "patterns": {slug: _auroc_entry(m) for slug, m in view["patterns"].items()}}


def _auroc_entry(metrics: dict) -> dict:
    return {"auroc": metrics.get("auroc"), "ci": metrics.get("auroc_ci"), "n_pos": metrics.get("n_pos")}


def evaluation_headlines(workdir: Path) -> dict:
    """{model: {level: headline_auroc}} for every model evaluate wrote, out-of-fold validation (pooled)."""
    out = {}
    for path in sorted((Path(workdir) / paths.EVAL).glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        out[path.parent.name] = {level: headline_auroc(metrics, level) for level in ("video_max", "clip")}
    return out


def pipeline_counts(workdir: Path) -> dict:
    """What the pipeline made in `workdir` so far: ingest, deidentify, clips, labels, split counts."""
    out: dict = {}
    index, quarantine = _read(workdir, paths.INDEX_VIDEOS), _read(workdir, paths.INDEX / "quarantine.parquet")
    if index is not None:
        reasons = Counter(quarantine["reason"].astype(str)) if quarantine is not None else Counter()
        out["ingest"] = {"videos": int(len(index)), "patients": int(index["patient_id"].nunique()),
                         "periods": dict(Counter(index["period"].astype(str))), "quarantined": dict(reasons)}
    report = Path(workdir) / paths.DEID / "report.json"
    if report.is_file():
        deid = json.loads(report.read_text())
        out["deidentify"] = {key: deid.get(key) for key in ("videos", "failed", "actions", "ocr_tokens_outside_fan")}
    manifest = _read(workdir, paths.CLIP_MANIFEST)
    if manifest is not None:
        out["clips"] = {"clips": int(len(manifest)), "videos": int(manifest["video_id"].nunique()),
                        "padded_clips": int((manifest["n_real_frames"] < manifest["n_real_frames"].max()).sum())}
    consensus = _read(workdir, paths.CONSENSUS)
    if consensus is not None:
        per = {}
        for pattern, grp in consensus.groupby("pattern", sort=False):
            n, pos = int(grp["label"].notna().sum()), int((grp["label"] == 1).sum())
            per[pattern] = {"labelled_clips": n, "positive_clips": pos,
                            "prevalence": round(pos / n, 3) if n else None}
        out["labels"] = {"clips": int(consensus["clip_id"].nunique()), "patterns": per}
    splits = _read(workdir, paths.SPLITS_TABLE)
    if splits is not None and consensus is not None:
        by_role = role_pattern_counts(splits, consensus)
        out["split"] = {"roles": by_role, "one_class": one_class_roles(by_role)}
    headlines = evaluation_headlines(workdir)
    if headlines:
        out["evaluate"] = headlines
    return out


def _cell(entry: dict) -> str:
    if entry.get("auroc") is None:
        return "-"
    ci = entry.get("ci")
    return f"{entry['auroc']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def print_report(summary: dict) -> None:
    """The human summary of a run on stdout (file names are the public dataset's, never PHI)."""
    prep = summary["prepare"]
    print(f"luskit pocus: {prep['manifest_rows']} manifest clips; links {prep['links']['created']} created, "
          f"{prep['links']['kept']} kept; workdir {summary['workdir']}")
    for row in prep["not_linked"]:
        print(f"  not linked ({row['status']}): {row['file']}: {row['detail']}")
    for entry in prep["stray_raw_entries"]:
        print(f"  note: data/raw/{entry} is not in the manifest (left as it is; ingest reads it)")
    if prep["excluded_by_dataset"]:
        print(f"  {len(prep['excluded_by_dataset'])} clip(s) listed in excluded.csv (no file in the dataset): "
              "not part of the run")
    for note in prep["notes"]:
        print(f"  {note}")
    imp = summary.get("labels_import")
    if imp:
        print(f"labels: {imp['videos_labelled']} videos imported as one annotator "
              f"({'new snapshot' if imp['snapshot_written'] else 'snapshot already there'}: {imp['snapshot']}); "
              f"positive videos {imp['positive_videos']}")
        for row in imp["left_out_unknown"]:
            print(f"  unlabelled (unknown {row['unknown']}): {row['file']}")
        for row in imp["not_ingested"]:
            print(f"  no video ({row['status']}): {row['file']}")
    counts = summary.get("pipeline") or {}
    if "split" in counts:
        for role, body in counts["split"]["roles"].items():
            pos = ", ".join(f"{p} {c['positive_clips']}/{c['labelled_clips']}" for p, c in body["patterns"].items())
            print(f"  {role}: {body['patients']} patients, {body['videos']} videos, {body['clips']} clips; "
                  f"positive/labelled clips: {pos}")
        for line in counts["split"]["one_class"]:
            print(f"  warning: {line}")
    for model, levels in (counts.get("evaluate") or {}).items():
        video = levels.get("video_max") or {}
        if video:
            cells = ", ".join(f"{slug} {_cell(e)}" for slug, e in video["patterns"].items())
            print(f"  {model}: out-of-fold video-level AUROC (max pooling, {video['n']} videos, "
                  f"{video['n_patients']} patients): macro {_cell(video['macro'])}; {cells}")
    if counts.get("evaluate"):
        print(f"luskit pocus: all tables in {Path(summary['workdir']) / paths.EVAL / 'comparison.md'}")
    if "exit_code" in summary:
        print(f"luskit pocus: summary in {Path(summary['workdir']) / 'pocus-summary.json'}")
    else:
        print("luskit pocus: prepared only (--no-repro); the labels are imported after ingest: run `luskit pocus` "
              "without --no-repro to import them and run the pipeline")
