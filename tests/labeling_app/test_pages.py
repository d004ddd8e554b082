"""Every page under AppTest on a real project's artifacts: renders without exceptions, widgets work,
a decision is saved under the signed-in reviewer; missing optional artifacts give a message, not a crash."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from labeling import reviews
from labeling.app import queue_logic
from tests.labeling_app.project import REPO, copy_project
from tests.labeling_app.helpers import REVIEWER, app_test, signed_in

PAGES = {"queue": "views/queue.py", "clip": "views/clip.py", "agreement": "views/agreement.py",
         "models": "views/models.py", "data": "views/data.py"}


def is_fold_clip(project, clip_id: str) -> bool:
    """Whether the demo split puts the clip in a cross-validation fold (else the Clip page is blind)."""
    splits = pd.read_parquet(project / "artifacts" / "splits" / "splits.parquet")
    return str(splits.set_index("clip_id")["role"].get(clip_id, "")).startswith("fold")


def charts(at) -> list:
    return at.get("vega_lite_chart")


def with_axis(at, title: str) -> int:
    """How many charts have an axis titled `title`."""
    return sum(f'"title": "{title}"' in c.proto.spec or f'"title":"{title}"' in c.proto.spec for c in charts(at))


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def queue_rows(project) -> pd.DataFrame:
    return pd.read_parquet(project / "artifacts" / "review" / "queue.parquet").sort_values("rank")


def test_sign_in_comes_first_then_the_queue(serve_as, app_project):
    serve_as(app_project)
    at = app_test().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["luskit review"]
    assert at.selectbox(key="pick_reviewer").options == [REVIEWER, "reviewer2@demo.luskit.invalid"]
    assert at.button(key="start").disabled  # no name chosen yet: nothing to start with
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGES["clip"])  # before sign-in only the sign-in script is registered (under every path)
    at.selectbox(key="pick_reviewer").select(REVIEWER).run()
    at.button(key="start").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Review queue"]
    assert REVIEWER in texts(at.sidebar.markdown)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_page_renders_on_the_project(serve_as, app_project, page):
    serve_as(app_project)
    at = signed_in()
    at.switch_page(PAGES[page]).run()
    assert not at.exception, at.exception
    assert at.title or at.subheader
    if page in ("agreement", "models", "data"):
        assert len(charts(at)) >= 2, f"{page}: expected plots, not only numbers"
    if page == "clip":
        assert at.get("video") and at.get("image")  # video, frame
        if is_fold_clip(app_project, at.session_state["clip_id"]):
            assert charts(at)  # the attention chart
        else:  # a test clip: blind adjudication, no model output at all
            assert not charts(at) and "Blind adjudication" in texts(at.info)


def test_queue_filters_and_progress(serve_as, fresh_store):
    serve_as(fresh_store)
    at = signed_in()
    full = at.dataframe(key="queue_table").value
    queue = queue_rows(fresh_store)
    assert len(full) == len(queue) and full["rank"].tolist() == queue["rank"].tolist()
    assert at.get("progress")[0].text == f"You decided 0 of {len(queue)} queued clip-patterns"

    at.multiselect(key="f_pattern").select("B-lines").run()
    shown = at.dataframe(key="queue_table").value
    assert len(shown) == (queue["pattern"] == "B-lines").sum() and set(shown["pattern"]) == {"B-lines"}

    at.multiselect(key="f_pattern").unselect("B-lines").run()
    at.multiselect(key="f_reason").select("annotator disagreement").run()
    shown = at.dataframe(key="queue_table").value
    assert len(shown) == queue["annotator_disagreement"].sum() > 0

    at.multiselect(key="f_reason").unselect("annotator disagreement").run()
    at.multiselect(key="f_role").select("temporal").run()
    shown = at.dataframe(key="queue_table").value
    assert set(shown["role"]) <= {"temporal"} and len(shown) == (queue["role"] == "temporal").sum()

    at.multiselect(key="f_role").unselect("temporal").run()
    patient = queue["patient_id"].iloc[0]
    at.multiselect(key="f_patient").select(patient).run()
    assert set(at.dataframe(key="queue_table").value["patient_id"]) == {patient}


def test_opening_a_clip_and_saving_a_decision(serve_as, fresh_store):
    serve_as(fresh_store)
    at = signed_in()
    first = queue_logic.clip_order(queue_rows(fresh_store))[0]
    at.button(key="open_clip").click().run()
    assert not at.exception
    assert at.subheader[0].value == f"Clip {first}" and at.query_params["clip"] in (first, [first])
    assert at.button(key="prev").disabled and not at.button(key="next").disabled

    at.radio(key=f"d_{first}_b_lines").set_value("present")
    at.text_input(key=f"n_{first}_b_lines").input("two B-lines, frames 10-20")
    at.radio(key=f"d_{first}_a_lines").set_value("cannot tell")
    at.button(key="save").click().run()
    assert not at.exception
    assert "Saved 2 decision(s)" in texts(at.success)

    store = reviews.read_decisions(fresh_store / "data" / "reviews" / "decisions.sqlite")
    assert len(store) == 2 and set(store["reviewer"]) == {REVIEWER}
    got = store.set_index("pattern")
    assert got.loc["B-lines", "decision"] == "present" and got.loc["B-lines", "note"] == "two B-lines, frames 10-20"
    assert got.loc["A-lines", "decision"] == "cannot_tell"  # stored; casts no vote (reviews.resolve_reviewers)
    assert (store["clip_id"] == first).all() and store["app_version"].str.startswith("luskit-review").all()

    at.button(key="save").click().run()  # nothing changed: nothing appended
    assert "Nothing new to save" in texts(at.success)
    assert len(reviews.read_decisions(fresh_store / "data" / "reviews" / "decisions.sqlite")) == 2

    at.radio(key=f"d_{first}_b_lines").set_value("absent")  # a change of mind is a new row
    at.button(key="save").click().run()
    store = reviews.read_decisions(fresh_store / "data" / "reviews" / "decisions.sqlite")
    assert store["decision"].tolist() == ["cannot_tell", "present", "absent"]  # PATTERNS order, then the change
    latest = reviews.latest_decisions(store).set_index("pattern")
    assert latest.loc["B-lines", "decision"] == "absent"

    at.switch_page(PAGES["queue"]).run()  # progress counts the decided rows
    at.selectbox(key="f_decided").select("decided by me").run()
    decided = at.dataframe(key="queue_table").value
    queued = queue_rows(fresh_store)
    expected = queued[(queued["clip_id"] == first) & queued["pattern"].isin(["A-lines", "B-lines"])]
    assert len(decided) == len(expected) and set(decided["clip_id"]) <= {first}
    assert at.get("progress")[0].text == f"You decided {len(expected)} of {len(queued)} queued clip-patterns"


def test_next_previous_slider_and_save_and_next(serve_as, fresh_store):
    serve_as(fresh_store)
    at = signed_in()
    order = queue_logic.clip_order(queue_rows(fresh_store))
    at.button(key="open_clip").click().run()
    at.button(key="next").click().run()
    assert at.subheader[0].value == f"Clip {order[1]}"
    at.button(key="prev").click().run()
    assert at.subheader[0].value == f"Clip {order[0]}"

    manifest = pd.read_parquet(fresh_store / "artifacts" / "clips" / "manifest.parquet").set_index("clip_id")
    last = int(manifest.loc[order[0], "n_real_frames"])  # the demo's first queued clip may be a 2-frame tail
    at.slider(key=f"frame_{order[0]}").set_value(last).run()
    caption = " ".join(str(c) for c in at.get("image")[0].proto.imgs[0].caption.split("\n"))
    assert f"clip frame {last}/{last}" in caption

    at.radio(key=f"d_{order[0]}_consolidation").set_value("absent")
    at.button(key="save_next").click().run()
    assert not at.exception
    assert at.subheader[0].value == f"Clip {order[1]}"
    store = reviews.read_decisions(fresh_store / "data" / "reviews" / "decisions.sqlite")
    assert store[["clip_id", "pattern", "decision"]].values.tolist() == [[order[0], "Consolidation", "absent"]]


def test_models_page_curves_from_stage_files_or_predictions(serve_as, app_project, tmp_path):
    project = copy_project(app_project, tmp_path / "project")
    for folder in (project / "artifacts" / "eval" / "plots").glob("*/temporal"):
        shutil.rmtree(folder)  # no stage curve files for the temporal set: the page recomputes them
    serve_as(project)
    at = signed_in()
    at.switch_page(PAGES["models"]).run()
    assert "artifacts/eval/plots" in texts(at.caption)  # validation: the stage's own curve files
    assert with_axis(at, "false positive rate") == 4  # one ROC chart per pattern
    at.selectbox(key="curve_set").select("temporal").run()
    assert "recomputed from predictions.parquet" in texts(at.caption)  # removed above for temporal
    for kind, axis in (("PR", "recall (sensitivity)"), ("Calibration", "mean predicted probability")):
        at.button_group(key="curve_kind").set_value(kind).run()
        assert not at.exception and with_axis(at, axis) == 4
    at.multiselect(key="curve_models").unselect("c3d").run()
    assert not at.exception
    assert set(at.dataframe[0].value.index) == {"luvnet", "usvn"}  # the Curves tab's AUROC table


def test_clip_page_shows_the_stage_attention_figures(serve_as, app_project):
    serve_as(app_project)
    at = signed_in()
    figures = sorted((app_project / "artifacts" / "eval" / "figures" / "attention").glob("*_curves.png"))
    assert figures, "the evaluate stage drew no attention figures"
    clips = [f.name.removesuffix("_curves.png") for f in figures]
    fold = [c for c in clips if is_fold_clip(app_project, c)]
    assert fold, "the evaluate stage drew attention figures of test clips only"
    at.query_params["clip"] = fold[0]
    at.switch_page(PAGES["clip"]).run()
    assert not at.exception
    assert len(at.expander) >= 1 and len(at.get("image")) >= 2 + 2  # frame, top-frame strip, two figures
    blind = [c for c in clips if not is_fold_clip(app_project, c)]
    if blind:  # a test clip's figures exist (evaluation reports them) but the Clip page never shows them
        at.query_params["clip"] = blind[0]
        at.switch_page(PAGES["clip"]).run()
        assert not at.exception and "Blind adjudication" in texts(at.info) and len(at.get("image")) <= 1


@pytest.mark.parametrize("bad", ["../../etc/passwd", "P00000000000_V00000000_c000", "/etc/hosts", "a b"])
def test_a_clip_id_from_the_url_must_be_in_the_manifest(serve_as, app_project, bad):
    serve_as(app_project)
    at = signed_in()
    at.query_params["clip"] = bad
    at.switch_page(PAGES["clip"]).run()
    assert not at.exception
    assert "No such clip" in texts(at.warning) and not at.get("video")


def test_pages_before_any_model(serve_as, bare_project):
    serve_as(bare_project)
    at = signed_in()
    assert not at.exception
    assert "No model-ranked queue yet" in texts(at.info)  # falls back to the annotators' disagreements
    disagreements = pd.read_parquet(bare_project / "artifacts" / "labels" / "disagreements.parquet")
    assert len(at.dataframe(key="queue_table").value) == len(disagreements)
    at.button(key="open_clip").click().run()
    assert not at.exception and at.get("video")
    shown = at.session_state["clip_id"]
    assert ("No attention for this clip" if is_fold_clip(bare_project, shown) else "Blind adjudication") in texts(
        at.info)
    at.switch_page(PAGES["models"]).run()
    assert not at.exception and "Evaluation results" in texts(at.info)
    for page in ("agreement", "data"):
        at.switch_page(PAGES[page]).run()
        assert not at.exception


def test_an_empty_project_explains_what_to_run(serve_as, tmp_path):
    project = tmp_path / "empty"
    (project / "artifacts").mkdir(parents=True)
    (project / "params.yaml").write_text((REPO / "params.yaml").read_text())
    serve_as(project)
    at = signed_in()
    assert not at.exception and "The review queue" in texts(at.info)
    for page, needs in (("clip", "clip manifest"), ("agreement", "agreement.json"), ("models", "Evaluation results"),
                        ("data", "splits.parquet")):
        at.switch_page(PAGES[page]).run()
        assert not at.exception, page
        assert needs in texts(at.info) + texts(at.warning), page
