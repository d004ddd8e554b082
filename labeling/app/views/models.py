"""Models: ROC, PR and calibration per pattern and model, the comparison table, fold spread, temporal set,
and the evaluation stage's own figures and plot files (artifacts/eval)."""

import json

import pandas as pd
import streamlit as st

from labeling.app import charts, loaders, model_metrics, ui
from labeling.app.model_metrics import SETS
from luskit.schema import PATTERNS

project = ui.project()
ui.current_reviewer()
st.title("Models")

models = loaders.eval_models(project)
comparison = project.artifact(loaders.EVAL / "comparison.md")
if not models and not comparison.exists():
    ui.missing("Evaluation results (artifacts/eval)", "Train and evaluate first: `dvc repro` (or `luskit train` "
               "then `luskit evaluate`). The Queue, Clip, Agreement and Data pages work without them.")
    st.stop()

SET_NAMES = {"validation": "out-of-fold (validation)", "internal_test": "internal test", "temporal": "temporal set"}
tabs = st.tabs(["Curves", "Comparison", "Test labels & intervals", "Fold spread", "Temporal set", "Figures & files"])
auroc, spread = loaders.model_summaries(project, models) if models else (pd.DataFrame(), pd.DataFrame())


def grid(parts: dict[str, pd.DataFrame], spec_for, key: str) -> None:
    """One chart per pattern, two per row."""
    cols = st.columns(2)
    for i, pattern in enumerate(PATTERNS):
        part = parts.get(pattern)
        with cols[i % 2]:
            if part is None or part.empty:
                st.caption(f"{pattern}: both classes are needed for a curve.")
            else:
                st.vega_lite_chart(part, spec_for(pattern), width="stretch", key=f"{key}_{pattern}")


with tabs[0]:
    if not models:
        st.caption("No artifacts/eval/<model>/predictions.parquet yet.")
    else:
        c1, c2, c3 = st.columns([2, 3, 3])
        set_name = c1.selectbox("Set", SETS, format_func=SET_NAMES.get, key="curve_set")
        kind = c2.segmented_control("Curve", ["ROC", "PR", "Calibration"], default="ROC", key="curve_kind") or "ROC"
        chosen = c3.multiselect("Models", models, default=models, key="curve_models")
        field = {"ROC": "roc", "PR": "pr", "Calibration": "calibration"}[kind]
        frames, sources = [], set()
        for m in chosen:  # the evaluation stage's own curve files first; recomputed where it wrote none
            table = loaders.stage_curves(project, m, set_name, field)
            if table is None:
                recomputed = loaders.curves(project, m, set_name)
                table = recomputed[field] if recomputed is not None else None
                sources.add("recomputed from predictions.parquet")
            else:
                sources.add("artifacts/eval/plots")
            if table is not None and not table.empty:
                frames.append(table)
        data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["pattern"])
        data = data.dropna(subset=[c for c in ("mean_prob", "frac_positive") if c in data])  # empty bins
        data["_order"] = range(len(data))
        st.caption(f"Curves: {', '.join(sorted(sources))}. One row per clip: out-of-fold for the folds, the "
                   "fold ensemble on the test sets.")
        x, y, xt, yt = {"roc": ("fpr", "tpr", "false positive rate", "sensitivity"),
                        "pr": ("recall", "precision", "recall (sensitivity)", "precision (PPV)"),
                        "calibration": ("mean_prob", "frac_positive", "mean predicted probability",
                                        "fraction positive")}[field]
        parts = {p: g for p, g in data.groupby("pattern", sort=False)}
        grid(parts, lambda p: charts.curve(x, y, "model", p, field != "pr", xt, yt), f"curve_{field}")
        if not auroc.empty:
            part = auroc[(auroc["set"] == set_name) & auroc["model"].isin(chosen)]
            st.markdown("**AUROC** on this set")
            st.dataframe(part.pivot_table(index="model", columns="pattern", values="auroc").round(3),
                         key="auroc_pivot")

with tabs[1]:
    if comparison.exists():
        st.markdown(comparison.read_text())
    else:
        st.caption("artifacts/eval/comparison.md is not there yet (`luskit evaluate` writes it).")
    if not auroc.empty:
        st.markdown("**AUROC recomputed from the prediction tables** (one row per clip; ensemble on test sets)")
        wide = auroc.pivot_table(index=["set", "model"], columns="pattern", values="auroc").round(3)
        st.dataframe(wide, key="auroc_all")

with tabs[2]:
    metrics = {m: loaders.json_file(project, loaders.EVAL / m / "metrics.json") for m in models}
    metrics = {m: v for m, v in metrics.items() if v is not None}
    views = model_metrics.test_label_views(metrics)
    st.markdown("**Test labels: after blind review and before any model** · internal-test and temporal clips are "
                "scored on the readers' consensus plus only the reviewer decisions made without the model on "
                "screen (this app hides the model on those clips); *before review* = the readers' labels alone.")
    if views.empty:
        st.caption("No label views in artifacts/eval/<model>/metrics.json: rerun the labels stage and `luskit "
                   "evaluate`.")
    else:
        wide = views.pivot_table(index=["set", "model"], columns="pattern",
                                 values=["auroc_after_review", "auroc_before_review"]).round(3)
        st.dataframe(wide, key="label_views")
        first = metrics[project.primary_model] if project.primary_model in metrics else next(iter(metrics.values()))
        st.dataframe(model_metrics.label_provenance(first), hide_index=True, key="label_provenance")
    if metrics:
        first = metrics[project.primary_model] if project.primary_model in metrics else next(iter(metrics.values()))
        st.markdown("**What the intervals rest on** (headline view of each set): patients per class and bootstrap "
                    "replicates; a CI is withheld below `evaluate.min_class_patients_ci` positive or negative "
                    "patients.")
        st.dataframe(model_metrics.interval_support(first), hide_index=True, key="interval_support")

with tabs[3]:
    if spread.empty:
        st.caption("No per-fold predictions.")
    else:
        s_set = st.selectbox("Scored on", sorted(spread["set"].unique(), key=list(SETS).index),
                             format_func=SET_NAMES.get, key="spread_set")
        part = spread[spread["set"] == s_set]
        grid({p: g for p, g in part.groupby("pattern")},
             lambda p: {**charts.strip("auroc", "model", "model", f"AUROC · {p}"), "title": p}, "spread")
        st.caption("Each point: one fold model. A wide spread means one fold's result says little on its own.")

with tabs[4]:
    if auroc.empty:
        st.caption("No predictions to compare.")
    else:
        part = auroc[auroc["set"].isin(["internal_test", "temporal"])].dropna(subset=["auroc"])
        grid({p: g for p, g in part.groupby("pattern")},
             lambda p: {**charts.bars("model", "auroc", "set", "model", "AUROC"), "title": p}, "temporal")
        counts = part.pivot_table(index=["set", "pattern"], values=["n", "n_positive"], aggfunc="max")
        st.dataframe(counts, key="temporal_counts")
        st.caption("The temporal set was acquired after the cutoff date: a drop from internal test to temporal "
                   "is what a later deployment would see.")

with tabs[5]:
    figures = loaders.eval_files(project, "**/*.png")
    if figures:
        pick = st.selectbox("Figure", figures, key="figure",
                            format_func=lambda p: str(p.relative_to(project.artifact(loaders.EVAL))))
        st.image(str(pick))
    else:
        st.caption("No figures in artifacts/eval yet.")
    plots = loaders.eval_files(project, "**/*.csv") + loaders.eval_files(project, "plots/*.json")
    if plots:
        pick = st.selectbox("Plot data file", plots, key="plot_file",
                            format_func=lambda p: str(p.relative_to(project.artifact(loaders.EVAL))))
        if pick.suffix == ".csv":
            st.dataframe(pd.read_csv(pick), key="plot_table")
        else:
            st.json(json.loads(pick.read_text()), expanded=False)
    for name in ("costs.json", "metrics.json"):
        data = loaders.json_file(project, loaders.EVAL / name)
        if data is not None:
            with st.expander(name):
                st.json(data, expanded=False)
