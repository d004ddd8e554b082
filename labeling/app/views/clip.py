"""Clip: the video from the clip's start, frames with the model's attention, every label, and the decision form.

The clip comes from ?clip=<clip_id> (or the session); it is only used after it is found in the clip
manifest, and only the manifest's video_id/cache_file become paths.
"""

import streamlit as st

from labeling.app import clip_logic, clip_panels, decisions, loaders, queue_logic, ui

project = ui.project()
who = ui.current_reviewer()

manifest = loaders.table(project, loaders.MANIFEST)
if manifest is None:
    ui.missing("The clip manifest", "Run `dvc repro clips` (or `luskit demo`).")
    st.stop()
queue, _ = loaders.review_queue(project)
queue = queue_logic.protect(queue) if queue is not None else None
order = st.session_state.get("queue_order") or (queue_logic.clip_order(queue) if queue is not None else [])
requested = st.query_params.get("clip") or st.session_state.get("clip_id") or (order[0] if order else None)
clip = loaders.clip_row(project, requested) if requested else None
if clip is None:
    st.title("Clip")
    st.warning("No such clip in artifacts/clips/manifest.parquet. Open one from the Queue page." if requested
               else "No clip chosen: open one from the Queue page.")
    st.stop()
clip_id = str(clip["clip_id"])
st.session_state["clip_id"] = clip_id
if st.query_params.get("clip") != clip_id:
    st.query_params["clip"] = clip_id

prev_id, next_id = clip_logic.neighbours(order, clip_id)
head, nav = st.columns([3, 2], vertical_alignment="bottom")
splits = loaders.table(project, loaders.SPLITS)
role = (splits.loc[splits["clip_id"] == clip_id, "role"].tolist() or ["unassigned"])[0] if splits is not None else "—"
head.subheader(f"Clip {clip_id}")
head.caption(f"patient {clip['patient_id']} · {clip['period']} · role {role} · video frames "
             f"{clip['start_frame_1based']}-{clip['end_frame_1based']} ({clip['n_real_frames']} real) · "
             f"{clip['fps']:g} fps")
n1, n2, n3 = nav.columns([1, 1, 2], vertical_alignment="center")
n1.button("◀ Previous", key="prev", on_click=clip_panels.go, args=(prev_id,), disabled=prev_id is None,
          shortcut="P")
n2.button("Next ▶", key="next", on_click=clip_panels.go, args=(next_id,), disabled=next_id is None, shortcut="N")
n3.caption(f"{order.index(clip_id) + 1} of {len(order)} queued clips" if clip_id in order
           else "not in the current queue filter")
flash = st.session_state.pop("flash", None)
if flash:
    st.success(flash)

latest = decisions.latest(project.reviews_db)
blind = clip_logic.is_blind(role)  # test clips: blind adjudication, no model output on this page
row = None if blind else clip_logic.prediction_row(loaders.predictions(project, project.primary_model), clip_id)
attention = clip_logic.attention_table(row, int(clip["start"]), int(clip["n_real_frames"]),
                                       project.params.top_frames)
queue_rows = queue[queue["clip_id"] == clip_id] if queue is not None else None
shown = clip_logic.model_shown(blind, row, queue_rows)
left, right = st.columns([4, 7], gap="large")
with left:
    clip_panels.video(project, clip)
    absolute = clip_panels.frame_viewer(project, clip)
with right:
    st.markdown("**Labels, model and reviews**")
    if blind:
        st.caption("Blind adjudication: no model output for this clip (see below).")
    elif row is None:
        st.caption(f"No predictions of `{project.primary_model}` for this clip yet (run `luskit evaluate`).")
    table = clip_logic.evidence_table(clip_id, loaders.table(project, loaders.CLIP_LABELS),
                                      loaders.table(project, loaders.CONSENSUS), row, queue, latest, blind)
    clip_panels.evidence(table)
    queued = set(queue.loc[queue["clip_id"] == clip_id, "pattern"]) if queue is not None else set()
    clip_panels.decision_form(project, who, clip, clip_logic.my_latest(latest, who, clip_id), queued, next_id, shown)
if blind:  # the attention chart and the evaluation's attention figures are model output
    st.info(clip_logic.BLIND_NOTE.format(role=role))
else:
    clip_panels.attention_panel(project, clip, attention, absolute, project.params.top_frames)
clip_panels.history(project, clip_id)
st.caption("Keys: N next clip · P previous clip · Ctrl+Enter save and go to the next clip.")
