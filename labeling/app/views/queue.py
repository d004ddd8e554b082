"""Queue: the ranked review queue with filters and progress; opening a row goes to the Clip page."""

import streamlit as st

from labeling.app import decisions, loaders, queue_logic, ui
from luskit.schema import PATTERNS

project = ui.project()
who = ui.current_reviewer()
st.title("Review queue")

queue, source = loaders.review_queue(project)
if queue is None:
    ui.missing("The review queue", "Run the pipeline up to the labels stage (`luskit demo` or `dvc repro`); "
               "`luskit review-queue` after evaluation ranks model disagreements and likely label errors too.")
    st.stop()
if source == "disagreements":
    st.info("No model-ranked queue yet (artifacts/review/queue.parquet: run `luskit evaluate` and "
            "`luskit review-queue`, or `dvc repro`). Listing the annotators' disagreements from the labels stage.")

queue = queue_logic.protect(queue)  # test clips: annotator reasons only, no model numbers (blind adjudication)
queue = queue_logic.with_decisions(queue, decisions.latest(project.reviews_db), who)

cols = st.columns([2, 3, 2, 2, 2])
patterns = cols[0].multiselect("Pattern", list(PATTERNS), key="f_pattern")
reasons = cols[1].multiselect("Reason", list(queue_logic.REASONS.values()), key="f_reason")
roles = cols[2].multiselect("Role", list(queue_logic.ROLE_GROUPS), key="f_role")
patients = cols[3].multiselect("Patient", sorted(queue["patient_id"].unique()), key="f_patient")
decided = cols[4].selectbox("Decided", queue_logic.DECIDED_FILTERS, key="f_decided")
shown = queue_logic.filter_queue(queue, patterns, reasons, roles, patients, decided)
order = queue_logic.clip_order(shown)
st.session_state["queue_order"] = order  # the Clip page's previous/next walk this order

done = queue_logic.progress(queue)
left, right = st.columns([3, 1])
left.progress(done["decided_by_me"] / done["total"] if done["total"] else 1.0,
              text=f"You decided {done['decided_by_me']} of {done['total']} queued clip-patterns")
right.metric("Decided by anyone", f"{done['decided_by_any']} / {done['total']}")
st.caption(f"Shown: {len(shown)} rows in {len(order)} clips, best rank first.")


def open_clip(clip_id: str) -> None:
    st.session_state["clip_id"] = clip_id
    st.switch_page("views/clip.py", query_params={"clip": clip_id})


view = queue_logic.display_table(shown)
event = st.dataframe(
    view, hide_index=True, key="queue_table", on_select="rerun", selection_mode="single-row", height=420,
    column_config={
        "rank": st.column_config.NumberColumn("rank", width="small"),
        "prob": st.column_config.NumberColumn("model prob", format="%.2f"),
        "threshold": st.column_config.NumberColumn("threshold", format="%.2f"),
        "label_error_score": st.column_config.ProgressColumn("label-error score", min_value=0.0, max_value=1.0,
                                                             format="%.2f"),
        "consensus": st.column_config.NumberColumn("consensus", help="1 present, 0 absent, empty: no consensus"),
        "my_decision": st.column_config.TextColumn("your decision"),
        "n_reviewers": st.column_config.NumberColumn("reviewers", help="reviewers with a decision on this row"),
    })
selected = getattr(getattr(event, "selection", None), "rows", [])
if selected:
    open_clip(view.iloc[selected[0]]["clip_id"])

st.caption("Click a row, or pick a clip below. Decisions are saved per pattern on the Clip page.")
c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
pick = c1.selectbox("Clip", order, key="open_pick", index=0 if order else None,
                    format_func=lambda c: f"{c}  ({', '.join(shown.loc[shown['clip_id'] == c, 'pattern'])})")
if c2.button("Open clip", type="primary", key="open_clip", disabled=pick is None, shortcut="O"):
    open_clip(pick)
first_open = queue_logic.next_undecided(shown)
if c3.button("Next undecided", key="next_undecided", disabled=first_open is None, shortcut="N"):
    open_clip(first_open)
