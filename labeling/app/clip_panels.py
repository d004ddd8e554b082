"""The Clip page's panels: video, frame viewer with attention, evidence table, decision form, history."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from labeling.app import charts, clip_logic, decisions, loaders
from labeling.app.settings import Project
from luskit.schema import PATTERN_SLUGS, PATTERNS

ZOOM = 2  # the cache is 128 px: enlarge by pixel repetition (no smoothing invents detail)


def go(clip_id: str | None) -> None:
    """Make `clip_id` the current clip (a button callback: runs before the page's next run)."""
    if clip_id:
        st.session_state["clip_id"] = clip_id
        st.query_params["clip"] = clip_id


def video(project: Project, clip: pd.Series) -> None:
    """The de-identified video, starting at the clip's first frame (start / fps seconds).

    st.video truncates start_time/end_time to whole seconds (Streamlit 1.67), up to a whole clip off at
    30 fps, so the exact start, the loop over the clip's real frames and the data-clip-* attributes
    (read by the browser test) come from a small script of our own numbers (clip_seek_script).
    """
    path = project.video_path(str(clip["video_id"]))
    if not path.exists():
        st.warning(f"The video of this clip is missing (artifacts/videos/{clip['video_id']}.mp4): run "
                   "`dvc repro deidentify`.")
        return
    fps = float(clip["fps"])
    start_s = float(clip["start"]) / fps
    end_s = float(clip["start"] + clip["n_real_frames"]) / fps
    loop = st.toggle("Loop this clip only", value=True, key="loop_clip",
                     help="Off: the whole video plays on from the clip's start")
    st.video(str(path), muted=True)
    st.html(clip_seek_script(str(clip["clip_id"]), start_s, end_s, loop), unsafe_allow_javascript=True)
    st.caption(f"Clip window: {start_s:.2f}-{end_s:.2f} s of the video ({fps:g} fps)")


SEEK_JS = """<script>
(() => {
  // The clip to show; a watcher (installed once per browser tab) attaches it to whichever video element
  // React has mounted, also when React replaces the element after this script ran.
  window.__luskitClip = {clip: CLIP, start: START, end: END, loop: LOOP};
  if (window.__luskitWatch) return;
  const attach = (v, cfg) => {
    for (const [name, fn] of Object.entries(v._luskit || {})) v.removeEventListener(name, fn);
    Object.assign(v.dataset, {clip: cfg.clip, clipStart: String(cfg.start), clipEnd: String(cfg.end)});
    // Chromium sometimes leaves the first seek of a preload=metadata video pending for good (readyState 1,
    // network idle, a blank player), seen on a clip at the very end of its video. The de-identified videos
    // are small: fetch them whole, and re-issue a seek that stalls (the watcher below).
    v.preload = 'auto';
    // armed: the clip's first seek happened (again after a new source loads); played: play was pressed.
    let armed = false, played = !v.paused;
    const keep = () => {
      if (v.readyState < 1) return;
      if (!armed) { armed = true; if (Math.abs(v.currentTime - cfg.start) > 0.001) v.currentTime = cfg.start; return; }
      const early = v.currentTime < cfg.start - 0.02, late = cfg.loop && v.currentTime >= cfg.end - 0.001;
      if ((!played && early) || (cfg.loop && (early || late))) v.currentTime = cfg.start;
    };
    const handlers = {loadedmetadata: keep, timeupdate: keep, seeked: keep, play: () => { played = true; },
                      loadstart: () => { armed = false; played = false; },
                      ended: () => { if (cfg.loop) { v.currentTime = cfg.start; v.play(); } }};
    for (const [name, fn] of Object.entries(handlers)) v.addEventListener(name, fn);
    v._luskit = handlers;
    v._luskitCfg = cfg;
    keep();
  };
  window.__luskitWatch = setInterval(() => {
    const all = document.querySelectorAll('video[data-testid="stVideo"], [data-testid="stVideo"] video');
    const v = all[all.length - 1];
    if (v && v._luskitCfg !== window.__luskitClip) attach(v, window.__luskitClip);
    if (!v) return;
    v._luskitStall = v.seeking && v.networkState === 1 ? (v._luskitStall || 0) + 1 : 0;
    if (v._luskitStall === 10) { v._luskitStall = 0; v.currentTime = v.currentTime; }  // stalled for 1 s
  }, 100);
})();
</script>"""


def clip_seek_script(clip_id: str, start_s: float, end_s: float, loop: bool) -> str:
    """JavaScript that starts the page's video at `start_s` (and loops it over [start_s, end_s) when `loop`).

    Built only from numbers and a manifest-checked clip id (json-encoded), never from raw browser input.
    """
    values = {"START": json.dumps(round(start_s, 6)), "END": json.dumps(round(end_s, 6)),
              "LOOP": json.dumps(bool(loop)), "CLIP": json.dumps(clip_id)}
    script = SEEK_JS
    for name, value in values.items():
        script = script.replace(name, value)
    return script


def _zoom(image: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(image, ZOOM, axis=0), ZOOM, axis=1)


def frame_viewer(project: Project, clip: pd.Series) -> int:
    """A frame slider and that frame from the uint8 clip cache; returns the absolute (0-based) frame index."""
    start, n_real = int(clip["start"]), int(clip["n_real_frames"])
    pos = st.slider("Frame in clip", 1, max(n_real, 1), 1, key=f"frame_{clip['clip_id']}",
                    help="1 = the clip's first frame; the red line in the attention chart marks it") if n_real > 1 else 1
    absolute = start + pos - 1
    shown = loaders.frames(project, clip, [absolute])
    if shown is None:
        st.warning("The clip cache is missing (artifacts/clips/cache): run `dvc repro clips`.")
    else:
        st.image(_zoom(shown[0]), caption=f"video frame {absolute + 1} · clip frame {pos}/{n_real}")
    return absolute


def attention_panel(project: Project, clip: pd.Series, attention: pd.DataFrame, absolute: int, top_k: int) -> None:
    """Per-pattern attention over the clip's frames (current frame marked, top frames large) and a top-frame strip."""
    if attention.empty:
        st.info(f"No attention for this clip: `{project.primary_model}`'s predictions are not there yet (run "
                "`luskit evaluate`), or the model has no attention.")
        return
    st.markdown("**Model attention over the clip's frames**")
    st.vega_lite_chart(attention, charts.attention(absolute + 1), width="stretch", key="attention_chart")
    st.caption(f"Large points: each pattern's top {top_k} frames; red line: the frame shown above.")
    top_strip(project, clip, attention)
    figures = [project.artifact(loaders.EVAL / "figures" / "attention" / f"{clip['clip_id']}_{kind}.png")
               for kind in ("curves", "frames")]
    figures = [f for f in figures if f.exists()]
    if figures:
        with st.expander("The evaluation stage's attention figures of this clip"):
            for figure in figures:
                st.image(str(figure))


def top_strip(project: Project, clip: pd.Series, attention: pd.DataFrame) -> None:
    """The top frames of one pattern side by side (what the model looked at most)."""
    have = [p for p in PATTERNS if p in set(attention["pattern"])]
    pattern = st.segmented_control("Top frames of", have, default=have[0], key="top_pattern")
    if not pattern:
        return
    indices = clip_logic.top_frames(attention, pattern)
    images = loaders.frames(project, clip, indices)
    if images is not None and len(indices):
        st.image([_zoom(im) for im in images], width=130,
                 caption=[f"frame {i + 1}" for i in indices])


def evidence(table: pd.DataFrame) -> None:
    st.dataframe(table, hide_index=True, key="evidence", row_height=30)


def decision_form(project: Project, who: str, clip: pd.Series, previous: dict, queued: set[str],
                  next_id: str | None, model_shown: bool = True) -> None:
    """Per pattern: present / absent / cannot tell and a note; saves only what changed, under `who`, with
    whether the page showed the model (clip_logic.model_shown)."""
    clip_id = str(clip["clip_id"])
    options = list(clip_logic.UI_DECISIONS)
    with st.form(f"decide_{clip_id}", border=True):
        st.markdown("**Your decision per pattern** · *cannot tell* is recorded but leaves the annotators' label")
        chosen = {}
        for pattern, slug in zip(PATTERNS, PATTERN_SLUGS):
            before = previous.get(pattern)
            c1, c2, c3 = st.columns([3, 7, 3], vertical_alignment="center")
            c1.markdown(f"**{pattern}**" + (" · queued" if pattern in queued else ""))
            index = options.index(clip_logic.STORED_TO_UI[before[0]]) if before else None
            choice = c2.radio(pattern, options, index=index, horizontal=True, key=f"d_{clip_id}_{slug}",
                              label_visibility="collapsed")
            note = c3.text_input("note", value=before[1] if before else "", key=f"n_{clip_id}_{slug}",
                                 label_visibility="collapsed", placeholder="note (no patient identifiers)")
            chosen[pattern] = (choice, note or "")
        b1, b2 = st.columns(2)
        save = b1.form_submit_button("Save decisions", type="primary", key="save")
        save_next = b2.form_submit_button("Save & next clip", key="save_next", disabled=next_id is None,
                                          shortcut="Ctrl+Enter")
    if save or save_next:
        items = clip_logic.changed_choices(previous, chosen)
        try:
            ids = decisions.save(project.reviews_db, who, str(clip["video_id"]), clip_id, items,
                                 model_shown=model_shown)
        except (ValueError, TimeoutError, OSError) as err:
            st.error(f"Not saved: {err}")
            return
        st.session_state["flash"] = (f"Saved {len(ids)} decision(s) on {clip_id} as {who}." if ids else
                                     "Nothing new to save: choose present, absent or cannot tell first.")
        if save_next:
            go(next_id)
        st.rerun()


def history(project: Project, clip_id: str) -> None:
    table = decisions.read_live(project.reviews_db)
    table = table[table["clip_id"] == clip_id]
    with st.expander(f"Decision history of this clip ({len(table)})"):
        if table.empty:
            st.caption("No decisions yet.")
        else:
            st.dataframe(table[["id", "timestamp", "reviewer", "pattern", "decision", "note", "app_version",
                                "model_shown"]]
                         .sort_values("id", ascending=False), hide_index=True)
