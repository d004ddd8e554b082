"""Every path the pipeline reads or writes, relative to the project root (the folder with dvc.yaml).

One module owns the layout so that a stage's outputs and its dvc.yaml `outs` cannot drift apart
(tests/luskit/test_dvc_consistency.py checks them against each other).
"""

from pathlib import Path

DATA = Path("data")
RAW = DATA / "raw"  # PHI lives here and nowhere else
ANNOTATIONS = DATA / "annotations"  # Label Studio full-JSON snapshots, one file per pull
REFERENCE = DATA / "reference"  # synthetic ground truth (demo only); pseudonymous ids only
REVIEWS = DATA / "reviews"  # reviewer decisions from the review app
LS_ADJUDICATIONS = REVIEWS / "label-studio"  # pulls of the Label Studio adjudication project
DEID_REVIEWS = REVIEWS / "deid"  # a person's releases of withheld videos (a dependency of deidentify)
DEID_RELEASES = DEID_REVIEWS / "releases.jsonl"  # append-only sign-offs (curation/deid/release.py)

TRUTH = REFERENCE / "truth.parquet"
TRUTH_VIDEOS = REFERENCE / "videos.parquet"
PLANTED_PHI = RAW / "planted_phi.json"  # demo only: the PHI strings the synth planted (inside raw/)

ARTIFACTS = Path("artifacts")

PARAMS = Path("params.yaml")


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding dvc.yaml or params.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").exists() or (folder / "params.yaml").exists():
            return folder
    raise FileNotFoundError(
        f"no dvc.yaml or params.yaml at or above {here}: run luskit from the project folder"
    )

# Stage outputs (each equals its dvc.yaml `outs` entry; tests/luskit/test_dvc_consistency.py checks).
INDEX = ARTIFACTS / "index"  # ingest: videos.parquet, quarantine.parquet
VIDEOS = ARTIFACTS / "videos"  # deidentify: <video_id>.mp4 (the PHI boundary)
DEID = ARTIFACTS / "deid"  # deidentify: videos.parquet, report.json, qc/
CLIPS = ARTIFACTS / "clips"  # clips: manifest.parquet, cache/<video_id>.npy
LABELS = ARTIFACTS / "labels"  # labels: annotations, quality, clip_labels, consensus, disagreements, agreement.json
SPLITS = ARTIFACTS / "splits"  # split: splits.parquet, report.json, report.md
MODELS = ARTIFACTS / "models"  # train: <model>/fold<k>/ (checkpoint.pt, log.csv, predictions.parquet, ...)
EVAL = ARTIFACTS / "eval"  # evaluate: <model>/ per-model results, comparison.md, plots, figures
REVIEW = ARTIFACTS / "review"  # review-queue: queue.parquet (what the review app lists)

# Tables other stages read: the file names their writers use (ingest, deidentify, clips, labels).
INDEX_VIDEOS_NAME = "videos.parquet"
DEID_VIDEOS_NAME = "videos.parquet"
CLIP_MANIFEST_NAME = "manifest.parquet"
CONSENSUS_NAME = "consensus.parquet"
INDEX_VIDEOS = INDEX / INDEX_VIDEOS_NAME
DEID_VIDEOS = DEID / DEID_VIDEOS_NAME
DEID_REPORT = DEID / "report.json"
DEID_WITHHELD = DEID / "withheld"  # <video_id>.png: pixelated thumbnails of withheld videos (the app shows them)
CLIP_MANIFEST = CLIPS / CLIP_MANIFEST_NAME
CONSENSUS = LABELS / CONSENSUS_NAME
CLIP_LABELS = LABELS / "clip_labels.parquet"
DISAGREEMENTS = LABELS / "disagreements.parquet"
AGREEMENT = LABELS / "agreement.json"
SPLITS_TABLE = SPLITS / "splits.parquet"
RESUME = Path(".luskit") / "resume"  # train: mid-run state (outside DVC outs, which dvc deletes before a rerun)
