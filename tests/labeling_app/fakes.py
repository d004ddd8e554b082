"""A project folder for the review-app tests: real artifacts copied from a finished pipeline, plus fake
evaluation outputs and a review queue written exactly to the contracts (until the real ones exist).

Media (videos, clip caches) are hard-linked when possible: nothing here writes them, and every writer
in luskit replaces files atomically (a new inode), so the source is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from luskit.schema import PATTERN_SLUGS, PATTERNS

REPO = Path(__file__).resolve().parents[2]
FAKE_MODELS = ("luvnet", "usvn", "c3d")  # c3d has no attention (null column), as in the contract
ATTENTION_MODELS = {"luvnet", "usvn", "luvnet_tfwo"}
MEDIA = {".npy", ".mp4"}


def _link_or_copy(src: str, dst: str) -> str:
    if Path(src).suffix in MEDIA:
        try:
            os.link(src, dst)
            return dst
        except OSError:
            pass
    return shutil.copy2(src, dst)


def copy_project(source: Path, dest: Path, artifacts: bool = True) -> Path:
    """params.yaml (+ dvc.yaml), artifacts/ and the labels stage's inputs (data/annotations, data/reference).

    data/raw (PHI) and data/reviews are never copied: each test project starts with an empty store.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.yaml"):
        if (source / name).exists():
            shutil.copy2(source / name, dest / name)
    if artifacts:
        shutil.copytree(source / "artifacts", dest / "artifacts", copy_function=_link_or_copy, dirs_exist_ok=True)
    for sub in ("annotations", "reference"):
        if (source / "data" / sub).is_dir():
            shutil.copytree(source / "data" / sub, dest / "data" / sub, dirs_exist_ok=True)
    return dest


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _attention(rng: np.random.Generator, length: int, n_real: int) -> np.ndarray:
    """(length,) float32 summing to 1 over the first n_real frames, exactly 0 after (padded frames)."""
    centre = rng.uniform(0, n_real)
    logits = -((np.arange(n_real) - centre) ** 2) / (2 * max(n_real / 6, 1.0) ** 2) + rng.normal(0, 0.3, n_real)
    weights = np.exp(logits - logits.max())
    out = np.zeros(length, dtype=np.float32)
    out[:n_real] = weights / weights.sum()
    return out


def _clips(root: Path) -> pd.DataFrame:
    """splits + manifest (n_real_frames, length) + wide consensus labels (Int8 per slug)."""
    art = root / "artifacts"
    splits = pd.read_parquet(art / "splits" / "splits.parquet")
    manifest = pd.read_parquet(art / "clips" / "manifest.parquet")[["clip_id", "start", "end", "n_real_frames"]]
    cons = pd.read_parquet(art / "labels" / "consensus.parquet")
    wide = cons.pivot_table(index="clip_id", columns="pattern", values="label", aggfunc="first")
    table = splits.merge(manifest, on="clip_id", how="left")
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        col = wide[pattern] if pattern in wide else pd.Series(dtype="float64")
        table[f"label_{slug}"] = table["clip_id"].map(col).astype("Float64").round().astype("Int8")
    return table


def fake_predictions(root: Path, model: str, seed: int = 0, skill: float = 2.0) -> pd.DataFrame:
    """The contract's predictions table for one model: OOF rows for fold clips; 5 fold rows + an ensemble
    row (fold -1) for internal_test and temporal clips."""
    rng = np.random.default_rng(seed)
    clips = _clips(root)
    thresholds = rng.uniform(0.35, 0.65, size=(5, len(PATTERNS)))
    rows = []
    for clip in clips.itertuples(index=False):
        role = clip.role
        base = {s: rng.normal(0, 1) for s in PATTERN_SLUGS}
        folds = [int(role[4:])] if role.startswith("fold") else [0, 1, 2, 3, 4, -1]
        length, n_real = int(clip.end - clip.start), int(clip.n_real_frames)
        for fold in folds:
            row = {"clip_id": clip.clip_id, "video_id": clip.video_id, "patient_id": clip.patient_id,
                   "period": clip.period, "role": role, "set": "validation" if role.startswith("fold") else role,
                   "fold": fold, "model": model, "n_real_frames": n_real}
            for j, slug in enumerate(PATTERN_SLUGS):
                label = getattr(clip, f"label_{slug}")
                sign = (2 * int(label) - 1) if not pd.isna(label) else 0
                row[f"prob_{slug}"] = np.float32(_sigmoid(skill * sign + base[slug] + rng.normal(0, 0.5)))
                row[f"label_{slug}"] = label
                row[f"thr_{slug}"] = float(thresholds[fold, j] if fold >= 0 else thresholds[:, j].mean())
                row[f"attention_{slug}"] = (_attention(rng, length, n_real) if model in ATTENTION_MODELS else None)
            rows.append(row)
    out = pd.DataFrame(rows)
    for slug in PATTERN_SLUGS:
        out[f"prob_{slug}"] = out[f"prob_{slug}"].astype("float32")
        out[f"label_{slug}"] = out[f"label_{slug}"].astype("Int8")
    out["fold"] = out["fold"].astype("int64")
    return out


def _write_png(path: Path, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (48, 64), dtype=np.uint8)).save(path)


def _write_plots(plots: Path, model: str, slug: str, y: np.ndarray, p: np.ndarray, roc_curve, pr_curve) -> None:
    """plots/<kind>/validation/<model>/<slug>.csv as the evaluation stage writes them (test sets left out:
    the app recomputes those from the predictions)."""
    fpr, tpr, thr = roc_curve(y, p)
    precision, recall, pthr = pr_curve(y, p)
    bins = np.clip((p * 10).astype(int), 0, 9)
    count = np.bincount(bins, minlength=10)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, obs = np.bincount(bins, p, 10) / count, np.bincount(bins, y, 10) / count
    tables = {"roc": pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thr, 1.0)}),
              "pr": pd.DataFrame({"recall": recall, "precision": precision,
                                  "threshold": np.append(pthr, 1.0)}),
              "calibration": pd.DataFrame({"bin": np.arange(10), "bin_low": np.arange(10) / 10,
                                           "bin_high": np.arange(1, 11) / 10, "count": count, "confidence": conf,
                                           "observed": obs})}
    for kind, table in tables.items():
        folder = plots / kind / "validation" / model
        folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(folder / f"{slug}.csv", index=False)


def write_fake_eval(root: Path, models=FAKE_MODELS) -> None:
    """artifacts/eval/: <model>/predictions.parquet + metrics.json, metrics.json, comparison.md,
    plots/<kind>/<set>/<model>/<slug>.csv, figures/*.png, costs.json (shapes per contracts.md and the stage)."""
    from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

    ev = root / "artifacts" / "eval"
    summary, lines = {}, ["| model | " + " | ".join(PATTERNS) + " |", "|---" * (len(PATTERNS) + 1) + "|"]
    for i, model in enumerate(models):
        preds = fake_predictions(root, model, seed=i, skill=2.5 - 0.5 * i)
        (ev / model).mkdir(parents=True, exist_ok=True)
        preds.to_parquet(ev / model / "predictions.parquet", index=False)
        oof = preds[preds["set"] == "validation"]
        aucs = {}
        for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
            keep = oof[f"label_{slug}"].notna()
            y, p = oof.loc[keep, f"label_{slug}"].astype(int), oof.loc[keep, f"prob_{slug}"]
            aucs[pattern] = round(float(roc_auc_score(y, p)), 4)
            _write_plots(ev / "plots", model, slug, y.to_numpy(), p.to_numpy(), roc_curve, precision_recall_curve)
        summary[model] = {"validation": {"auroc": aucs}}
        (ev / model / "metrics.json").write_text(json.dumps(summary[model], indent=1))
        lines.append(f"| {model} | " + " | ".join(f"{aucs[p]:.3f}" for p in PATTERNS) + " |")
        _write_png(ev / "figures" / f"{model}_attention.png", i)
    (ev / "metrics.json").write_text(json.dumps(summary, indent=1))
    (ev / "comparison.md").write_text("# Model comparison (fake, for tests)\n\nOut-of-fold AUROC\n\n"
                                      + "\n".join(lines) + "\n")
    (ev / "costs.json").write_text(json.dumps({m: {"params": 1000 * (i + 1), "gmacs": 0.5 * (i + 1)}
                                               for i, m in enumerate(models)}, indent=1))


def write_fake_queue(root: Path, model: str = "luvnet") -> pd.DataFrame:
    """artifacts/review/queue.parquet from the model's predictions, consensus and disagreements (contract columns)."""
    art = root / "artifacts"
    preds = pd.read_parquet(art / "eval" / model / "predictions.parquet")
    rows = preds[(preds["set"] == "validation") | (preds["fold"] == -1)]
    cons = pd.read_parquet(art / "labels" / "consensus.parquet")
    dis = pd.read_parquet(art / "labels" / "disagreements.parquet").set_index(["clip_id", "pattern"])
    labels = pd.read_parquet(art / "labels" / "clip_labels.parquet")
    out = []
    for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
        part = rows[["clip_id", "video_id", "patient_id", "period", "role", f"prob_{slug}", f"thr_{slug}"]].rename(
            columns={f"prob_{slug}": "prob", f"thr_{slug}": "threshold"}).assign(pattern=pattern)
        c = cons[cons["pattern"] == pattern].set_index("clip_id")["label"]
        part["consensus"] = part["clip_id"].map(c).astype("Int8")
        out.append(part)
    q = pd.concat(out, ignore_index=True)
    q["prob"] = q["prob"].astype(float)
    label = q["consensus"].astype("Float64")
    q["label_error_score"] = (label - q["prob"]).abs().fillna(0.5).astype(float)
    keys = list(zip(q["clip_id"], q["pattern"]))
    q["annotator_disagreement"] = [k in dis.index and "annotators disagree" in dis.loc[k, "reason"] for k in keys]
    q["model_disagreement"] = ((q["prob"] >= q["threshold"]).astype(int) != label.fillna(-1)).astype(bool)
    q["likely_label_error"] = q["label_error_score"] > 0.85
    q = q[q[["annotator_disagreement", "model_disagreement", "likely_label_error"]].any(axis=1)].copy()
    q["reasons"] = ["; ".join(n for n, f in (("annotators disagree", a), ("model disagrees with consensus", m),
                                              ("likely label error", e)) if f)
                    for a, m, e in zip(q["annotator_disagreement"], q["model_disagreement"], q["likely_label_error"])]
    q["priority"] = (q["annotator_disagreement"] + q["model_disagreement"] + 2.0 * q["likely_label_error"]
                     + q["label_error_score"]).astype(float)
    q = q.sort_values(["priority", "clip_id", "pattern"], ascending=[False, True, True], kind="stable")
    q["rank"] = np.arange(1, len(q) + 1, dtype="int64")
    pos, neg = [], []
    for clip_id, pattern in zip(q["clip_id"], q["pattern"]):
        mine = labels[labels["clip_id"] == clip_id]
        pos.append(", ".join(sorted(mine.loc[mine[pattern] == 1, "annotator"])))
        neg.append(", ".join(sorted(mine.loc[mine[pattern] == 0, "annotator"])))
    q["positive_by"], q["negative_by"] = pos, neg
    cols = ["clip_id", "video_id", "patient_id", "period", "role", "pattern", "consensus", "prob", "threshold",
            "label_error_score", "annotator_disagreement", "model_disagreement", "likely_label_error", "reasons",
            "priority", "rank", "positive_by", "negative_by"]
    q = q[cols].reset_index(drop=True)
    (art / "review").mkdir(parents=True, exist_ok=True)
    q.to_parquet(art / "review" / "queue.parquet", index=False)
    for kind in ("curves", "frames"):  # the stage draws these for selected clips of the primary model
        _write_png(art / "eval" / "figures" / "attention" / f"{q['clip_id'].iloc[0]}_{kind}.png", 7)
    return q


def make_fake_project(dest: Path, source: Path = REPO) -> Path:
    """A project folder with the real artifacts of `source` and fake eval/queue (kept if real ones exist)."""
    copy_project(source, dest)
    if not (dest / "artifacts" / "eval").is_dir():
        write_fake_eval(dest)
    if not (dest / "artifacts" / "review" / "queue.parquet").exists():
        write_fake_queue(dest)
    return dest
