"""The `labels` stage: data/annotations + data/reviews + data/reference + the clip manifest -> artifacts/labels/.

Reviewer decisions come from the review app's store (data/reviews/decisions.sqlite, labeling/reviews.py) and
from Label Studio adjudication pulls (data/reviews/label-studio/, labeling/adjudication.py), one vote per
reviewer, clip and pattern.

Outputs (paths.LABELS):
- annotations.parquet: every kept range (video_id, patient_id, annotator, pattern, start, end
  1-based inclusive, snapshot), excluded videos included (quality.parquet says which).
- quality.parquet: video_id, patient_id, annotator, quality (the choice, <NA> if left empty),
  snapshot, excluded (video-level, by `exclude_rule`), excluded_reason.
- clip_labels.parquet: one row per clip and annotator of the kept videos: clip_id, video_id,
  patient_id, period, annotator, one Int8 0/1 column per pattern (join the manifest on clip_id for
  the frames).
- consensus.parquet: one row per clip and pattern: clip_id, video_id, patient_id, period, pattern,
  label (Int8, <NA> when undecided), method, provenance, n_annotators, n_positive.
- disagreements.parquet: report.DISAGREEMENT_COLUMNS, for the review queue.
- agreement.json (a DVC metric): inputs summary; agreement per level and pattern; each annotator
  against consensus and gold; each consensus method against gold.

Gold: data/reference/truth.parquet ranges, for the videos listed in data/reference/videos.parquet
(or, without that list, the videos with a truth row: a gold video with no finding has no row and
must be listed to count). At frame level the consensus is the base method's (reviews are per clip).
Scoring an annotator against a consensus that includes that annotator flatters the annotator: read
the gold numbers for accuracy, the consensus numbers for consistency.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from labeling import clip_labels as cl
from labeling import consensus as cs
from labeling import report, reviews
from labeling.adjudication import merge_latest, read_adjudications
from labeling.annotations import SnapshotError, read_annotations, video_exclusions
from luskit import paths
from luskit.atomic import write_bytes_atomic, write_parquet_atomic
from luskit.config import ConfigError, load_section, require
from luskit.schema import PATTERNS, QUALITY_USABLE

GOLD = "gold"
OUTPUTS = ("annotations.parquet", "quality.parquet", "clip_labels.parquet", paths.CONSENSUS_NAME,
           "disagreements.parquet")
METRICS = "agreement.json"


@dataclass(frozen=True)
class LabelsParams:
    """The `labels:` section of params.yaml."""

    snapshots: Literal["newest", "all"] = "newest"  # newest: the newest snapshot of each source
    min_overlap_frames: int = 1  # frames of a pattern a clip must overlap to be positive (seed: 1)
    exclude_rule: Literal["any", "majority", "all"] = "any"  # how readers' "exclude" choices drop a video
    consensus: Literal["and", "or", "majority", "adjudicated"] = "adjudicated"
    adjudicated_base: Literal["and", "or", "majority"] = "majority"  # base under reviewer decisions
    majority_ties: Literal["positive", "negative", "missing"] = "positive"
    bootstrap: int = 1000  # patient-level bootstrap replicates for every CI (0: no CI)
    ci: float = 0.95
    seed: int = 2024
    levels: tuple[str, ...] = ("clip", "frame")

    def __post_init__(self) -> None:
        require(self.min_overlap_frames >= 1, f"min_overlap_frames={self.min_overlap_frames}: use 1 or more")
        require(self.bootstrap >= 0, f"bootstrap={self.bootstrap}: use 0 (no CI) or more")
        require(0.5 < self.ci < 1.0, f"ci={self.ci}: use a level in (0.5, 1), e.g. 0.95")
        require(set(self.levels) <= {"clip", "frame"} and "clip" in self.levels,
                f"levels={list(self.levels)}: use [clip] or [clip, frame]")

    @property
    def base_method(self) -> str:
        return self.adjudicated_base if self.consensus == "adjudicated" else self.consensus


@dataclass(frozen=True)
class Inputs:
    records: pd.DataFrame  # annotations.read_annotations
    ranges: pd.DataFrame
    snapshots: list[str]
    manifest: pd.DataFrame
    decisions: pd.DataFrame  # reviews.read_decisions (the review app's store)
    adjudications: pd.DataFrame  # adjudication.read_adjudications (Label Studio adjudication pulls)
    truth: pd.DataFrame | None  # video_id, pattern, start, end
    gold_videos: list[str]


def read_inputs(params: LabelsParams, annotations_dir: Path = paths.ANNOTATIONS,
                manifest: Path = paths.CLIP_MANIFEST, reviews_db: Path = reviews.DEFAULT_DB,
                reference: Path = paths.REFERENCE, adjudications: Path = paths.LS_ADJUDICATIONS) -> Inputs:
    """Read everything the stage needs; errors name the missing input and the command that makes it."""
    records, ranges, names = read_annotations(annotations_dir, params.snapshots)
    if not Path(manifest).exists():
        raise FileNotFoundError(f"{manifest} not found: run the clips stage first (luskit clips / dvc repro)")
    clips = pd.read_parquet(manifest)
    truth, gold_videos = None, []
    truth_path, list_path = Path(reference) / paths.TRUTH.name, Path(reference) / paths.TRUTH_VIDEOS.name
    if truth_path.exists():
        truth = pd.read_parquet(truth_path, columns=["video_id", "pattern", "start", "end"])
        unknown = sorted(set(truth["pattern"]) - set(PATTERNS))
        if unknown:
            raise ValueError(f"{truth_path}: unknown pattern(s) {unknown}; rename them to {list(PATTERNS)}")
        listed = pd.read_parquet(list_path, columns=["video_id"]) if list_path.exists() else truth
        gold_videos = sorted(listed["video_id"].astype(str).unique())
    return Inputs(records, ranges, names, clips, reviews.read_decisions(reviews_db),
                  read_adjudications(adjudications, params.snapshots), truth, gold_videos)


@dataclass(frozen=True)
class Result:
    tables: dict[str, pd.DataFrame]
    metrics: dict


def _gold_frames(inputs: Inputs, lengths: pd.Series, patients: pd.Series) -> cl.Ratings | None:
    """Gold as a one-rater frame Ratings on the same units as the annotators' (NaN off the gold videos)."""
    if inputs.truth is None:
        return None
    vids = [v for v in inputs.gold_videos if v in lengths.index]
    if not vids:
        return None
    pairs = pd.DataFrame({"video_id": vids, "annotator": GOLD})
    truth = inputs.truth.assign(annotator=GOLD)
    return cl.frame_ratings(pairs, truth[truth["video_id"].isin(vids)], lengths, patients)


def _consensus_tables(frames: cl.Ratings, clips: cl.Ratings, inputs: Inputs, params: LabelsParams,
                      resolved: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(the chosen consensus table, every base method's table) on the kept clips."""
    base = {m: cs.base_consensus(frames, clips, inputs.manifest, m, params.majority_ties, params.min_overlap_frames)
            for m in cs.BASE_METHODS}
    chosen = base[params.base_method]
    if params.consensus == "adjudicated":
        chosen = cs.apply_reviews(chosen, resolved)
    return chosen, base


def _blind_consensus(base: pd.DataFrame, inputs: Inputs, params: LabelsParams) -> pd.DataFrame:
    """The adjudication that only decisions made without the model may change (consensus.with_label_views).

    Decisions are filtered BEFORE each reviewer's latest is taken: a reviewer's blind vote stands even if
    they later decided the same clip again with the model on screen. Base methods other than
    adjudicated use no decisions at all, so there the blind view is the base."""
    if params.consensus != "adjudicated":
        return base
    blind = [t[t["model_shown"].astype(int) == 0] for t in (inputs.decisions, inputs.adjudications)]
    return cs.apply_reviews(base, reviews.resolve_reviewers(merge_latest(reviews.latest_decisions(blind[0]),
                                                                         blind[1])))


def _gold_scores(frames, clips, gold_f, gold_c, base, chosen, params, boot) -> tuple[dict, dict]:
    """(annotators vs gold, consensus methods vs gold), each {..: {level: {pattern: ...}}}."""
    if gold_f is None:
        return {}, {}
    levels = {"clip": (clips, gold_c), "frame": (frames, gold_f)}
    per_rater: dict[str, dict] = {}
    for level in params.levels:
        for rater, scores in report.versus_reference(*levels[level], boot).items():
            per_rater.setdefault(rater, {})[level] = scores
    methods: dict[str, dict] = {}
    for m, table in {**base, params.consensus: chosen}.items():
        scores = report.versus_reference(cs.consensus_ratings(table, clips), gold_c, boot)
        methods[m] = {"clip": scores.get("consensus", {})}
    if "frame" in params.levels:
        for m in cs.BASE_METHODS:
            cons = cs.consensus_frames(frames, m, params.majority_ties)
            methods[m]["frame"] = report.versus_reference(cons, gold_f, boot).get(m, {})
    return per_rater, methods


def _kept_videos(inputs: Inputs, excluded: pd.DataFrame) -> tuple[pd.Series, pd.Series, list[str]]:
    """(frames per kept video, patient per video, rated videos missing from the manifest)."""
    lengths = cl.video_lengths(inputs.manifest)
    rated = set(inputs.records["video_id"])
    missing = sorted(rated - set(lengths.index))
    keep = sorted(rated & set(lengths.index) - set(excluded.loc[excluded["excluded"], "video_id"]))
    patients = inputs.manifest.drop_duplicates("video_id").set_index("video_id")["patient_id"].astype(str)
    return lengths.loc[keep], patients, missing


def _readable(records: pd.DataFrame, ranges: pd.DataFrame, kept: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reader, video) pairs and ranges that count as ratings of the kept videos.

    A reader who chose "exclude: ..." for a video that the exclude_rule keeps (majority / all: the
    others read it) did not read it: that reader is missing (NaN) on the video, not "absent" on every
    frame, and any ranges they drew there are not counted."""
    quality = records["quality"].fillna(QUALITY_USABLE).astype(str)
    pairs = records[records["video_id"].isin(kept) & ~quality.str.startswith("exclude")]
    keys = pd.MultiIndex.from_frame(pairs[["video_id", "annotator"]])
    return pairs, ranges[pd.MultiIndex.from_frame(ranges[["video_id", "annotator"]]).isin(keys)]


def _manifest_patients(table: pd.DataFrame, patients: pd.Series) -> pd.Series:
    """The manifest's patient_id per row (the pipeline's one truth), the snapshot's where the manifest lacks the video."""
    return table["video_id"].map(patients).fillna(table["patient_id"]).astype(str)


def _quality_table(records: pd.DataFrame, excluded: pd.DataFrame, patients: pd.Series) -> pd.DataFrame:
    out = records.merge(excluded, on="video_id", how="left")
    out["patient_id"] = _manifest_patients(out, patients)
    out = out.rename(columns={"reason": "excluded_reason"})
    out["quality"] = out["quality"].astype("string")
    return out[["video_id", "patient_id", "annotator", "quality", "snapshot", "excluded", "excluded_reason"]]


def run(inputs: Inputs, params: LabelsParams) -> Result:
    """All of the stage's computation on read inputs: the output tables and agreement.json's content."""
    excluded = video_exclusions(inputs.records, params.exclude_rule)
    lengths, patients, missing = _kept_videos(inputs, excluded)
    if lengths.empty:
        raise ValueError(f"none of the {inputs.records['video_id'].nunique()} annotated videos has clips in the clip "
                         "manifest (all excluded, or the ids differ): check that the snapshot and artifacts/ come from "
                         "the same study, and run `luskit clips`")
    pairs, ranges = _readable(inputs.records, inputs.ranges, lengths.index)
    frames = cl.frame_ratings(pairs, ranges, lengths, patients)
    clips = cl.clip_ratings(frames, inputs.manifest, params.min_overlap_frames)
    latest = merge_latest(reviews.latest_decisions(inputs.decisions), inputs.adjudications)
    resolved = reviews.resolve_reviewers(latest)
    chosen, base = _consensus_tables(frames, clips, inputs, params, resolved)
    chosen = cs.with_label_views(chosen, base[params.base_method],
                                 _blind_consensus(base[params.base_method], inputs, params), latest)
    gold_f = _gold_frames(inputs, lengths, patients)
    gold_c = cl.clip_ratings(gold_f, inputs.manifest, params.min_overlap_frames) if gold_f is not None else None
    boot = report.Boot(params.bootstrap, params.seed, params.ci)
    by_level = {"clip": clips, "frame": frames}
    # Against consensus only where >= 2 annotators rated: a lone reader "agrees" with itself.
    cons_by_level = {"clip": _multi_rated(cs.consensus_ratings(chosen, clips), clips),
                     "frame": _multi_rated(cs.consensus_frames(frames, params.base_method, params.majority_ties),
                                           frames)}
    vs_gold, methods_vs_gold = _gold_scores(frames, clips, gold_f, gold_c, base, chosen, params, boot)
    annotators: dict[str, dict] = {r: {"vs_consensus": {}, "vs_gold": vs_gold.get(r, {})} for r in frames.raters}
    for level in params.levels:
        for rater, scores in report.versus_reference(by_level[level], cons_by_level[level], boot).items():
            annotators[rater]["vs_consensus"][level] = scores
    reviewed = set(zip(resolved["clip_id"], resolved["pattern"]))
    tables = {
        "annotations.parquet": inputs.ranges.assign(patient_id=_manifest_patients(inputs.ranges, patients)),
        "quality.parquet": _quality_table(inputs.records, excluded, patients),
        "clip_labels.parquet": _clip_label_table(clips),
        paths.CONSENSUS_NAME: chosen[list(cs.CONSENSUS_COLUMNS)],
        "disagreements.parquet": report.disagreements(clips, chosen, gold_c, reviewed),
    }
    metrics = {
        "inputs": _inputs_summary(inputs, excluded, lengths, missing, clips, resolved, frames,
                                  _patient_mismatches(inputs.records, patients)),
        "agreement": {level: report.agreement_by_pattern(by_level[level], boot) for level in params.levels},
        "annotators": annotators,
        "consensus": {"method": params.consensus, "base": params.base_method, **_consensus_summary(chosen),
                      "vs_gold": methods_vs_gold},
    }
    return Result(tables, metrics)


def _multi_rated(reference: cl.Ratings, by: cl.Ratings) -> cl.Ratings:
    """`reference` with NaN on the units fewer than two of `by`'s raters rated."""
    few = np.sum(~np.isnan(by.values), axis=1) < 2  # (U, P)
    return cl.Ratings(reference.units, reference.raters, np.where(few[:, None, :], np.nan, reference.values),
                      reference.patterns)


def _clip_label_table(clips: cl.Ratings) -> pd.DataFrame:
    table = cl.ratings_table(clips)
    return table[[*cl.CLIP_KEYS, "annotator", *clips.patterns]]


def _consensus_summary(chosen: pd.DataFrame) -> dict:
    return {"n_clips": int(chosen["clip_id"].nunique()), "n_missing": int(chosen["label"].isna().sum()),
            "n_from_review": int(chosen["provenance"].str.startswith("review (").sum()),
            "n_model_assisted": int((chosen["n_assisted"] > 0).sum()),  # clip patterns with a model-assisted vote
            "n_label_differs_from_blind": int(chosen["label"].ne(chosen["blind_label"]).fillna(
                chosen["label"].isna() != chosen["blind_label"].isna()).sum()),
            "positive_clips": {p: int((g["label"] == 1).sum()) for p, g in chosen.groupby("pattern", sort=False)}}


def _inputs_summary(inputs, excluded, lengths, missing, clips, resolved, frames, mismatches: int) -> dict:
    reasons = excluded.loc[excluded["excluded"], "reason"].value_counts().sort_index()
    known_clips = set(clips.units["clip_id"])
    return {"snapshots": inputs.snapshots, "annotators": list(frames.raters),
            "videos_annotated": int(inputs.records["video_id"].nunique()),
            "videos_excluded": int(excluded["excluded"].sum()), "excluded_reasons": reasons.to_dict(),
            "videos_not_in_manifest": len(missing), "videos_labelled": int(len(lengths)),
            "patients": int(clips.units["patient_id"].nunique()), "clips": int(len(clips.units)),
            "frames": int(lengths.sum()), "gold_videos": len(set(inputs.gold_videos) & set(lengths.index)),
            "ranges_past_video_end": int(len(cl.ranges_outside(inputs.ranges, lengths))),
            "patient_id_mismatches": mismatches,
            "review_decisions": int(len(inputs.decisions)),
            "label_studio_adjudications": int(len(inputs.adjudications)),
            "reviewed_clip_patterns_not_in_labels": int((~resolved["clip_id"].isin(known_clips)).sum())}


def _patient_mismatches(records: pd.DataFrame, patients: pd.Series) -> int:
    """Videos whose task names another patient than the manifest does (a snapshot from another study or key).

    The manifest's patient_id is the one used everywhere (it comes from ingest's pseudonymisation).
    """
    named = records.dropna(subset=["patient_id"]).drop_duplicates("video_id").set_index("video_id")["patient_id"]
    named = named[named.index.isin(patients.index)]
    return int((named.astype(str) != patients.reindex(named.index)).sum())


def write_outputs(result: Result, out_dir: Path = paths.LABELS) -> None:
    """Write every table and agreement.json atomically (each file complete or absent)."""
    out_dir = Path(out_dir)
    for name, table in result.tables.items():
        write_parquet_atomic(out_dir / name, table.reset_index(drop=True))
    text = json.dumps(result.metrics, indent=1, sort_keys=False, allow_nan=False)
    write_bytes_atomic(out_dir / METRICS, (text + "\n").encode())


def summary_line(result: Result) -> str:
    inp, clip = result.metrics["inputs"], result.metrics["agreement"]["clip"]
    alphas = ", ".join(f"{p} {v['krippendorff_alpha']['value']}" for p, v in clip.items())
    return (f"labels: {inp['videos_labelled']} videos ({inp['videos_excluded']} excluded), {inp['clips']} clips, "
            f"{len(inp['annotators'])} annotators; clip-level Krippendorff alpha: {alphas}; "
            f"consensus {result.metrics['consensus']['method']} -> {paths.LABELS}/")


def main(params_path: Path = paths.PARAMS) -> int:
    """Run the stage from the project folder; 0 done, 2 bad input (message on stderr)."""
    try:
        params = load_section(Path(params_path), "labels", LabelsParams)
        inputs = read_inputs(params)
        result = run(inputs, params)
    except (ConfigError, SnapshotError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    inp = result.metrics["inputs"]
    if inp["videos_not_in_manifest"]:
        print(f"labels: {inp['videos_not_in_manifest']} annotated video(s) have no clips (not de-identified or "
              "skipped by the clips stage); their labels are left out", file=sys.stderr)
    if inp["patient_id_mismatches"]:
        print(f"labels: {inp['patient_id_mismatches']} video(s) name another patient in the snapshot than in the clip "
              "manifest; the manifest's patient_id is used (snapshot from another study or pseudonym key?)",
              file=sys.stderr)
    if inp["ranges_past_video_end"]:
        print(f"labels: {inp['ranges_past_video_end']} range(s) end after their video's last frame (Label Studio "
              "frame drift?); cut at the last frame", file=sys.stderr)
    write_outputs(result)
    print(summary_line(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
