"""Data: patients, videos, clips and prevalence per role; quarantined inputs (reasons, no paths); the
de-identification report, its QC contact sheets, and the withheld videos (pixelated thumbnail, reason, the
commands that look at and release one)."""

import pandas as pd
import streamlit as st

from labeling.app import charts, data_tables, loaders, ui

project = ui.project()
who = ui.current_reviewer()
WITHHELD_SHOWN = 20  # thumbnails drawn on the page; the table lists every withheld video
st.title("Data")

st.subheader("Cohort per role")
splits = loaders.table(project, loaders.SPLITS)
consensus = loaders.table(project, loaders.CONSENSUS)
if splits is None:
    ui.missing("artifacts/splits/splits.parquet", "Run the split stage (`luskit split` or `dvc repro`).")
else:
    st.dataframe(data_tables.role_summary(splits, consensus), hide_index=True, key="roles")
    if consensus is not None:
        prevalence = data_tables.prevalence_long(splits, consensus)
        st.vega_lite_chart(prevalence, charts.bars("role", "prevalence", "pattern", "role", "prevalence (consensus)"),
                           width="stretch", key="prevalence_chart")
    st.caption("Folds are grouped by patient: no patient appears in two roles.")

st.subheader("Quarantined inputs")
quarantine = loaders.table(project, loaders.QUARANTINE)
if quarantine is None:
    ui.missing("artifacts/index/quarantine.parquet", "Run ingest (`dvc repro ingest`).")
elif quarantine.empty:
    st.success("Nothing was quarantined.")
else:
    view = data_tables.quarantine_view(quarantine)
    st.vega_lite_chart(view.groupby("reason").size().rename("files").reset_index(),
                       charts.counts("reason", "files", "files"), width=480, key="quarantine_chart")
    st.dataframe(view, hide_index=True, key="quarantine")
    st.caption("Files are named by a hash of their content; `luskit ingest --show-paths` prints local paths in a "
               "terminal, never here.")

st.subheader("De-identification")
report = loaders.json_file(project, loaders.DEID_REPORT)
if report is None:
    ui.missing("artifacts/deid/report.json", "Run the deidentify stage (`dvc repro deidentify`).")
else:
    head = data_tables.deid_headline(report)
    keys = list(head)
    for start in range(0, len(keys), 6):
        cols = st.columns(6)
        for col, key in zip(cols, keys[start:start + 6]):
            value = head[key]
            col.metric(key.replace("_", " "), f"{value:.2f}" if isinstance(value, float) else value)
    c1, c2 = st.columns(2)
    actions = pd.DataFrame(list((report.get("actions") or {}).items()), columns=["action", "videos"])
    if not actions.empty:
        c1.vega_lite_chart(actions, charts.counts("action", "videos", "videos"), width="stretch",
                           key="actions_chart")
    per_video = data_tables.deid_per_video(report)
    if "kept_fraction" in per_video:
        c2.vega_lite_chart(per_video, charts.histogram("kept_fraction", "fraction of the frame kept"),
                           width="stretch", key="kept_hist")
    sheets = [s for s in report.get("contact_sheets", []) if isinstance(s, str)]
    safe = []
    for name in sheets:
        try:
            path = project.artifact(loaders.DEID_REPORT.parent / name)
        except ValueError:
            continue  # a report naming a file outside artifacts/deid is ignored, never served
        if path.suffix.lower() == ".png" and path.exists():
            safe.append(path)
    if safe:
        pick = st.selectbox("QC contact sheet", safe, format_func=lambda p: p.name, key="sheet")
        st.image(str(pick), caption="Every video's first frame after de-identification: check that no text "
                                    "or identifier is left")
    else:
        st.caption("No QC contact sheet found in artifacts/deid/qc.")

    st.subheader("Withheld videos")
    try:
        releases = loaders.deid_releases(project)
    except ValueError as err:  # ReleaseError: a hand-edited sign-off file
        releases = {}
        st.error(f"data/reviews/deid/releases.jsonl: {err}")
    withheld = data_tables.withheld_view(report, releases)
    if withheld.empty:
        st.success("No video is withheld.")
    else:
        st.warning(f"{len(withheld)} video(s) withheld: the text search found text it could not explain. They are "
                   "not in artifacts/videos, so nothing downstream sees them, until a person looks at one and "
                   "releases it (the release is bound to that exact output).")
        st.dataframe(withheld, hide_index=True, key="withheld_table")
        for row in withheld.head(WITHHELD_SHOWN).itertuples(index=False):
            left, right = st.columns([1, 2])
            thumb = loaders.withheld_thumbnail(project, row.video_id)
            if thumb is not None:
                left.image(str(thumb), caption="pixelated: look at the real output with `luskit deid show`")
            else:
                left.caption("no thumbnail in artifacts/deid/withheld")
            right.markdown(f"**{row.video_id}**: {row.reason}; {row.status}")
            right.code(data_tables.release_commands(row.video_id, who), language="bash")
        if len(withheld) > WITHHELD_SHOWN:
            st.caption(f"{len(withheld) - WITHHELD_SHOWN} more: `luskit deid withheld` lists every one.")
        st.caption("After releasing: `dvc add data/reviews && dvc repro` publishes the released videos.")
