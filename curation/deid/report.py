"""artifacts/deid/report.json (a DVC metric) and the stage's summary lines.

Names only video_ids, artifact paths under artifacts/, field names, PHI kinds, frame ranges and counts;
never a PHI string and never the text OCR read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _published(r: dict) -> bool:
    return r["failure"] is None and r.get("withheld") is None


def build_report(results: list[dict], tables: list[dict], sheets: list[str], sheet_phi: set[str],
                 planted, indexed: int) -> dict:
    """report.json: numeric summary keys at the top, then per-video rows, withheld videos and findings.

    results: per-video dicts from the stage; tables: proof.scan_artifact_tables output; planted:
    proof.PlantedPhi or None.
    """
    ok = [r for r in results if _published(r)]
    withheld = [r["withheld"] for r in results if r["failure"] is None and r.get("withheld") is not None]
    checked = [r for r in results if "mp4" in r]  # searched: written, withheld, or failed on planted PHI
    phi = [{"where": "ocr", "video_id": r["video_id"], "kind": k} for r in checked for k in r["ocr_phi_kinds"]]
    phi += [{"where": "mp4", "video_id": r["video_id"], "kind": k} for r in checked for k in r["mp4"]["phi_kinds"]]
    phi += [{"where": "table", "artifact": t["artifact"], "column": c, "kind": k} for t in tables for c, k in t["phi"]]
    phi += [{"where": "contact_sheet", "kind": k} for k in sorted(sheet_phi)]
    fields = [{"video_id": r["video_id"], "field": f} for r in checked for f in r["mp4"]["tags_outside_allowlist"]]
    fields += [{"artifact": t["artifact"], "field": f} for t in tables for f in t["fields_outside_allowlist"]]
    kept = [r["kept_fraction"] for r in ok if r["kept_fraction"] is not None]
    coverage = [r["text_coverage"] for r in checked if "text_coverage" in r]
    actions = {a: sum(r["action"] == a for r in ok) for a in ("region-cropped", "auto-masked", "manual-region")}
    actions["failed"] = sum(r["failure"] is not None for r in results)
    return {
        "videos": len(ok),
        "videos_indexed": indexed,
        "failed": actions["failed"],
        "videos_withheld": len(withheld),
        "videos_released": sum(bool(r.get("released")) for r in ok),
        "actions": actions,
        "ocr_frames": sum(r["ocr_frames"] for r in checked),
        "ocr_images": sum(r.get("ocr_images", 0) for r in checked),
        "min_text_coverage": float(min(coverage)) if coverage else None,
        "ocr_tokens_outside_fan": sum(r["ocr_tokens_outside_fan"] for r in checked),
        "ocr_tokens_inside_fan": sum(r["ocr_tokens_inside_fan"] for r in checked),
        "planted_phi_checked": int(planted is not None),
        "planted_phi_strings_unchecked": planted.unchecked if planted else 0,
        "planted_phi_found": len(phi),
        "header_fields_outside_allowlist": len(fields),
        "dicom_outputs": sum(bool(r["mp4"]["dicom"]) for r in checked),
        "median_kept_fraction": float(np.median(kept)) if kept else None,
        "min_kept_fraction": float(np.min(kept)) if kept else None,
        "contact_sheets": [f"qc/{name}" for name in sheets],
        "failures": [{"video_id": r["video_id"], **r["failure"]} for r in results if r["failure"] is not None],
        "withheld": withheld,
        "phi_findings": phi,
        "header_findings": fields,
        "per_video": [{"video_id": r["video_id"], "action": r["action"], "kept_fraction": r["kept_fraction"],
                       "crop": list(r["crop"]), "ocr_tokens_outside_fan": r["ocr_tokens_outside_fan"],
                       "ocr_tokens_inside_fan": r["ocr_tokens_inside_fan"],
                       "text_coverage": r.get("text_coverage"), "text_tokens": r.get("text_tokens"),
                       "released": bool(r.get("released")), "output_sha256": r.get("output_sha256")}
                      for r in ok],
        "tables_scanned": [t["artifact"] for t in tables],
    }


def summary_lines(report: dict, deid_dir: Path) -> list[str]:
    """What the stage prints: a summary, then failures and alarms (stderr lines start FAILED/WITHHELD/
    PLANTED/warning)."""
    a = report["actions"]
    kept = report["median_kept_fraction"]
    cov = report.get("min_text_coverage")
    lines = [f"deidentify: {report['videos']}/{report['videos_indexed']} videos written ({a['region-cropped']} "
             f"region-cropped, {a['auto-masked']} auto-masked, {a['manual-region']} manual-region, {a['failed']} "
             f"failed), {report.get('videos_withheld', 0)} withheld, {report.get('videos_released', 0)} released; "
             f"median kept fraction {'n/a' if kept is None else f'{kept:.3f}'}; text search: "
             f"{report['ocr_frames']} frames covered by {report.get('ocr_images', 0)} OCR images (min coverage "
             f"{'n/a' if cov is None else f'{cov:.3f}'}); report in {deid_dir / 'report.json'}"]
    lines += [f"FAILED {f['video_id']}: {f['message']}" for f in report["failures"]]
    for w in report.get("withheld", []):
        why = (f"{w['tokens']} text tokens outside the allow-list ({w['inside_fan']} over the image, "
               f"{w['outside_fan']} outside it) in frames {', '.join(f'{a}-{b}' for a, b in w['frames'])}"
               if w["reason"] == "unexplained_text" else
               f"the text search covered {w['text_coverage']:.3f} of its frames (too many text candidates)")
        lines.append(f"WITHHELD {w['video_id']}: {why}. Not written; look at {deid_dir / 'withheld'} and the "
                     f"source, then release it (`luskit deid release {w['video_id']} --reviewer NAME`) or fix it")
    if report["header_fields_outside_allowlist"]:
        lines.append(f"warning: {report['header_fields_outside_allowlist']} header fields outside the allow-list "
                     "(see header_findings in the report)")
    if report["planted_phi_found"]:
        where = sorted({f.get("video_id") or f.get("artifact") or f["where"] for f in report["phi_findings"]})
        lines.append(f"PLANTED PHI SURVIVED de-identification ({report['planted_phi_found']} findings in: "
                     f"{', '.join(where)}). Videos with PHI in their pixels or tags were withheld; masking or "
                     "header handling is broken: see phi_findings in the report and fix it before sharing "
                     "anything.")
    return lines
