"""Benchmark: ingest + deidentify + clips against bare decode + encode of the same frames.

For each scale (1x and 4x the demo's patient count) it generates the synthetic study in a temporary
project, then measures, in the same run and on the same files:
  baseline  decode every source frame (curation.readers) and encode it to H.264 with the same x264
            settings, nothing else; as many worker processes as the pipeline uses;
  pipeline  `luskit ingest`, `luskit deidentify`, `luskit clips` as subprocesses.
It reports frames/s, the pipeline's overhead over the baseline, and the peak RSS of the largest
process of each. Results are appended to BENCHMARKS.md (machine, date, command, numbers, ratios).

    .venv/bin/python bench/bench_curation.py [--scales 1 4] [--no-ocr]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import av
import yaml

REPO = Path(__file__).resolve().parents[1]
RSS_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
               "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print('MAXRSS_KB', r.ru_maxrss, 'CPU_S', r.ru_utime + r.ru_stime, file=sys.stderr); "
               "sys.exit(rc)")


def measured(cmd: list[str], cwd: Path) -> tuple[float, int, float]:
    """Run `cmd`; return (wall seconds, peak RSS in MB of the largest process it or its children ran, CPU
    seconds (user + system) of it and all its children: on a shared machine the CPU time is the steadier
    measure, since other people's work stretches the wall clock but not the CPU this work needs)."""
    bin_dir = str(Path(sys.executable).parent)  # the venv's console scripts (luskit)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(REPO), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *cmd], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    usage = [line.split() for line in run.stderr.splitlines() if line.startswith("MAXRSS_KB")][-1]
    return seconds, int(usage[1]) // 1024, float(usage[3])


def bare_decode_encode(job: tuple[str, int, int]) -> int:
    """Decode every frame of one source with the pipeline's own readers and encode it to H.264 in memory.

    The same decoder and the same x264 settings and frame rate as the pipeline, so the ratio measures the
    pipeline's extra work (validation decode, masking, verification, OCR, clip cache), not a decoder or
    encoder difference. The whole frame is encoded (the pipeline encodes its crop). Returns frames done.
    job: (source path, crf, gop) with crf/gop from the project's deidentify params.
    """
    from curation.deid.encode import fps_fraction, pad_even, x264_options
    from curation.readers import iter_frames, probe

    path, crf, gop = job
    info = probe(Path(path))
    n, buf = 0, io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = None
        for frame in iter_frames(Path(path), info):
            frame = pad_even(frame)
            if stream is None:
                stream = out.add_stream("libx264", rate=fps_fraction(info.fps))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.options = x264_options(crf, gop)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
            n += 1
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return n


def good_sources(project: Path) -> list[str]:
    import pandas as pd

    index = pd.read_parquet(project / "artifacts" / "index" / "videos.parquet")
    from curation.ingest import locate_sources

    params = yaml.safe_load((project / "params.yaml").read_text())
    sources = locate_sources(project / "data" / "raw", tuple(params["ingest"]["ignore"]))
    return sorted(str(sources[s]) for s in index["source_sha256"])


def run_baseline(project: Path, workers: int = 2) -> None:
    """The bare decode+encode pass over the indexed sources (run in its own process to measure RSS)."""
    deid = yaml.safe_load((project / "params.yaml").read_text())["deidentify"]
    jobs = [(source, int(deid["crf"]), int(deid["gop"])) for source in good_sources(project)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        frames = sum(pool.map(bare_decode_encode, jobs))
    (project / "baseline_frames.txt").write_text(str(frames))


def make_project(root: Path, scale: int, ocr: bool) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synth"]["n_patients_development"] *= scale
    params["synth"]["n_patients_temporal"] *= scale
    if not ocr:
        raise SystemExit("--no-ocr: the text search of every frame cannot be switched off (deidentify fails closed)")
    params["deidentify"]["allow_withheld"] = True  # a withheld video is counted below, not a failed benchmark
    project = root / f"x{scale}"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    measured(["luskit", "synth", "--quiet"], project)
    return project


def bench_scale(root: Path, scale: int, ocr: bool, workers: int = 2) -> dict:
    project = make_project(root, scale, ocr)
    stages = {}
    for stage in ("ingest", "deidentify", "clips"):
        stages[stage] = measured(["luskit", stage], project)
    baseline_s, baseline_rss, baseline_cpu = measured([sys.executable, __file__, "--baseline", str(project)], project)
    frames = int((project / "baseline_frames.txt").read_text())
    report = json.loads((project / "artifacts" / "deid" / "report.json").read_text())
    sources = good_sources(project)
    pipeline_s = sum(s for s, _, _ in stages.values())
    pipeline_cpu = sum(c for _, _, c in stages.values())
    return {
        "scale": scale, "videos": len(sources), "frames": frames, "withheld": report.get("videos_withheld", 0),
        "ocr_images": report.get("ocr_images", report.get("ocr_frames")),
        "baseline_s": baseline_s, "baseline_fps": frames / baseline_s,
        "pipeline_s": pipeline_s, "pipeline_fps": frames / pipeline_s,
        "overhead": pipeline_s / baseline_s - 1.0,
        "baseline_cpu_s": baseline_cpu, "pipeline_cpu_s": pipeline_cpu,
        "cpu_overhead": pipeline_cpu / baseline_cpu - 1.0,
        "stages": {k: {"seconds": s, "peak_rss_mb": m, "cpu_s": c} for k, (s, m, c) in stages.items()},
        "pipeline_peak_rss_mb": max(m for _, m, _ in stages.values()), "baseline_peak_rss_mb": baseline_rss,
    }


def markdown(results: list[dict], ocr: bool, command: str) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, {platform.platform()}"
    lines = [f"## Curation pipeline vs bare decode+encode ({when})", "",
             f"- machine: {machine}", f"- command: `{command}`", f"- OCR proof included: {ocr}", "",
             "| scale | videos (withheld) | frames (OCR images) | bare decode+encode s (fps) | ingest s | deidentify s | clips s | "
             "pipeline s (fps) | overhead | CPU s pipeline / bare (overhead) | CPU s per video: deidentify / bare | "
             "peak RSS pipeline / bare (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        st = r["stages"]
        lines.append(
            f"| {r['scale']}x | {r['videos']} ({r['withheld']}) | {r['frames']} ({r['ocr_images']}) | "
            f"{r['baseline_s']:.1f} ({r['baseline_fps']:.0f}) | "
            f"{st['ingest']['seconds']:.1f} | {st['deidentify']['seconds']:.1f} | {st['clips']['seconds']:.1f} | "
            f"{r['pipeline_s']:.1f} ({r['pipeline_fps']:.0f}) | {r['overhead']:+.0%} | "
            f"{r['pipeline_cpu_s']:.1f} / {r['baseline_cpu_s']:.1f} ({r['cpu_overhead']:+.0%}) | "
            f"{st['deidentify']['cpu_s'] / r['videos']:.2f} / {r['baseline_cpu_s'] / r['videos']:.2f} | "
            f"{r['pipeline_peak_rss_mb']} / {r['baseline_peak_rss_mb']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--no-ocr", action="store_true", help="leave the OCR proof out of the deidentify timing")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        return run_baseline(args.baseline)
    results = []
    with tempfile.TemporaryDirectory(prefix="luskit-bench-") as tmp:
        for scale in args.scales:
            results.append(bench_scale(Path(tmp), scale, ocr=not args.no_ocr))
            print(json.dumps(results[-1], indent=1), flush=True)
    text = markdown(results, not args.no_ocr, " ".join(["python", "bench/bench_curation.py", *sys.argv[1:]]))
    header = "" if args.out.exists() else "# Benchmarks\n\nMeasured by the scripts in bench/; never asserted in tests.\n\n"
    with open(args.out, "a") as fh:
        fh.write(header + text + "\n")
    print(text)


if __name__ == "__main__":
    main()
