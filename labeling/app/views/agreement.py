"""Agreement: how well annotators agree (kappa, alpha with CIs), how each does against consensus and gold,
pairwise confusion, and the quality answers (artifacts/labels/agreement.json, clip_labels, quality)."""

import streamlit as st

from labeling.app import agreement_tables as at
from labeling.app import charts, loaders, ui

project = ui.project()
ui.current_reviewer()
st.title("Annotator agreement")

agreement = loaders.json_file(project, loaders.AGREEMENT)
if agreement is None:
    ui.missing("artifacts/labels/agreement.json", "Run the labels stage (`luskit labels` or `dvc repro`).")
    st.stop()

inputs = agreement.get("inputs", {})
m = st.columns(5)
m[0].metric("Annotators", len(inputs.get("annotators", [])))
m[1].metric("Videos labelled", inputs.get("videos_labelled", "—"))
m[2].metric("Videos excluded", inputs.get("videos_excluded", "—"))
m[3].metric("Clips", inputs.get("clips", "—"))
m[4].metric("Review decisions used", inputs.get("review_decisions", "—"))

levels = at.levels(agreement)
level = st.segmented_control("Level", levels, default=levels[0] if levels else None, key="level") or "clip"
st.caption("Clip level: each clip is present/absent per annotator. Frame level: every frame of a kept video. "
           "Intervals: patient-level bootstrap.")

st.subheader("Agreement per pattern")
stats = at.agreement_stats(agreement, level)
if stats.empty:
    st.caption("No agreement statistics at this level (fewer than two annotators per unit?).")
else:
    st.vega_lite_chart(stats, charts.interval("pattern", "statistic", "agreement (kappa, alpha, proportion)",
                                              domain=(-0.2, 1.0), height=260), width="stretch", key="agree_chart")
    with st.expander("Numbers"):
        st.dataframe(stats, hide_index=True)

st.subheader("Each annotator against the consensus and the gold standard")
ref = st.segmented_control("Reference", ["vs_gold", "vs_consensus"], default="vs_gold", key="reference",
                           format_func=lambda r: {"vs_gold": "gold standard", "vs_consensus": "consensus"}[r])
ref = ref or "vs_gold"
scores = at.annotator_scores(agreement, ref, level)
if scores.empty:
    st.caption("No scores against this reference (no gold videos, or no video rated by two annotators).")
else:
    if ref == "vs_consensus":
        st.caption("Against a consensus that includes the annotator's own vote: read as consistency, not accuracy.")
    for metric, part in scores.groupby("metric", sort=True):
        st.vega_lite_chart(part, charts.interval("pattern", "annotator", metric, domain=None, height=200),
                           width="stretch", key=f"ann_{metric}")
    with st.expander("Numbers"):
        st.dataframe(scores, hide_index=True)

cons = at.consensus_scores(agreement, level)
if not cons.empty:
    st.subheader("Consensus methods against the gold standard")
    for metric, part in cons.groupby("metric", sort=True):
        st.vega_lite_chart(part, charts.interval("pattern", "method", metric, domain=None, height=200),
                           width="stretch", key=f"cons_{metric}")

st.subheader("Pairwise: Cohen's kappa and confusion")
pairs = at.pairwise_kappa(agreement, level)
if not pairs.empty:
    st.vega_lite_chart(pairs, charts.interval("pattern", "pair", "Cohen's kappa", domain=(-0.2, 1.0), height=200),
                       width="stretch", key="pair_kappa")
clip_labels = loaders.table(project, loaders.CLIP_LABELS)
if clip_labels is None:
    ui.missing("artifacts/labels/clip_labels.parquet", "Run the labels stage.")
else:
    confusion = at.pairwise_confusion(clip_labels)
    if confusion.empty:
        st.caption("No clip was rated by two annotators.")
    for pair, part in confusion.groupby("pair", sort=True):
        first, second = pair.split(" vs ")
        st.markdown(f"**{pair}** (clip level; rows: {second}, columns: {first})")
        cells = st.columns(4)
        for col, (pattern, cell) in zip(cells, part.groupby("pattern", sort=False)):
            col.vega_lite_chart(cell, charts.heatmap("first", "second", "count", title=pattern), width="stretch",
                                key=f"conf_{pair}_{pattern}")

quality = loaders.table(project, loaders.QUALITY)
st.subheader("Quality answers and excluded videos")
if quality is None:
    ui.missing("artifacts/labels/quality.parquet", "Run the labels stage.")
else:
    counts = at.quality_counts(quality)
    st.vega_lite_chart(counts, charts.bars("annotator", "videos", "quality", "annotator", "videos", stack=True),
                       width="stretch", key="quality_chart")
    gone = at.excluded_videos(quality)
    st.caption(f"{len(gone)} video(s) excluded from labels" + (":" if len(gone) else "."))
    if len(gone):
        st.dataframe(gone, hide_index=True)
