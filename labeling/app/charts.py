"""Vega-Lite specs (plain dicts) for the pages; Streamlit bundles Vega, so charts render offline.

Each function takes the column names of a long table and returns a spec for
`st.vega_lite_chart(table, spec)`; the data travels separately.
"""

from __future__ import annotations

from luskit.schema import PATTERNS

PATTERN_SCALE = {"domain": list(PATTERNS), "range": ["#4c78a8", "#f58518", "#54a24b", "#b279a2"]}


def attention(current_frame: int, height: int = 220) -> dict:
    """Per-pattern attention over the clip's frames: lines, top frames as large points, current frame as a rule.

    Table: video_frame (absolute, 1-based), clip_frame, pattern, attention, top (bool); current_frame 1-based.
    """
    color = {"field": "pattern", "type": "nominal", "scale": PATTERN_SCALE, "title": "pattern"}
    x = {"field": "video_frame", "type": "quantitative", "title": "video frame", "axis": {"tickMinStep": 1},
         "scale": {"zero": False}}
    y = {"field": "attention", "type": "quantitative", "title": "attention (frame importance)"}
    tooltip = [{"field": f} for f in ("pattern", "video_frame", "clip_frame", "attention")]
    return {
        "height": height,
        "layer": [
            {"mark": {"type": "line", "interpolate": "monotone"}, "encoding": {"x": x, "y": y, "color": color}},
            {"transform": [{"filter": "datum.top"}], "mark": {"type": "point", "filled": True, "size": 90},
             "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip}},
            {"mark": {"type": "rule", "color": "#d62728", "strokeDash": [4, 3], "strokeWidth": 2},
             "encoding": {"x": {"datum": current_frame, "type": "quantitative"}}},
        ],
    }


def interval(y: str, color: str, x_title: str, domain: tuple[float, float] | None = (0.0, 1.0),
             height: int | None = None) -> dict:
    """A forest plot: one row per `y` value, a point at `value` and a line from ci_low to ci_high, coloured by `color`.

    Table: y, color, value, ci_low, ci_high (+ anything for the tooltip).
    """
    scale = {"domain": list(domain)} if domain else {"zero": False}
    x = {"field": "value", "type": "quantitative", "title": x_title, "scale": scale}
    yenc = {"field": y, "type": "nominal", "title": None}
    offset = {"field": color, "type": "nominal"}
    cenc = {"field": color, "type": "nominal", "title": None, "legend": {"labelLimit": 400}}
    spec = {"layer": [
        {"mark": {"type": "rule", "strokeWidth": 2},
         "encoding": {"y": yenc, "yOffset": offset, "x": {"field": "ci_low", "type": "quantitative", "scale": scale,
                                                          "title": x_title},
                      "x2": {"field": "ci_high"}, "color": cenc}},
        {"mark": {"type": "point", "filled": True, "size": 70},
         "encoding": {"y": yenc, "yOffset": offset, "x": x, "color": cenc,
                      "tooltip": [{"field": f} for f in (y, color, "value", "ci_low", "ci_high")]}},
    ]}
    if height:
        spec["height"] = height
    return spec


def heatmap(x: str, y: str, value: str, title: str = "", height: int = 160) -> dict:
    """Cells coloured and labelled by `value` (e.g. a 2x2 confusion table of two annotators)."""
    return {
        "title": title, "height": height,
        "encoding": {"x": {"field": x, "type": "nominal", "sort": ["present", "absent"]},
                     "y": {"field": y, "type": "nominal", "sort": ["present", "absent"]}},
        "layer": [
            {"mark": "rect", "encoding": {"color": {"field": value, "type": "quantitative",
                                                    "scale": {"scheme": "blues"}, "legend": None}}},
            {"mark": {"type": "text", "fontSize": 14},
             "encoding": {"text": {"field": value, "type": "quantitative"},
                          "color": {"condition": {"test": f"datum['{value}'] > 0", "value": "black"},
                                    "value": "#888"}}},
        ],
    }


def curve(x: str, y: str, color: str, title: str, diagonal: bool, x_title: str, y_title: str,
          height: int = 260) -> dict:
    """Lines of y against x per `color` (ROC, PR or reliability), with an optional y = x reference."""
    unit = {"domain": [0, 1]}
    layers = []
    if diagonal:
        layers.append({"mark": {"type": "rule", "color": "#aaa", "strokeDash": [4, 4]},
                       "encoding": {"x": {"datum": 0, "type": "quantitative", "scale": unit},
                                    "y": {"datum": 0, "type": "quantitative", "scale": unit},
                                    "x2": {"datum": 1}, "y2": {"datum": 1}}})
    layers.append({"mark": {"type": "line", "point": y == "frac_positive", "interpolate": "linear"},
                   "encoding": {"x": {"field": x, "type": "quantitative", "scale": unit, "title": x_title},
                                "y": {"field": y, "type": "quantitative", "scale": unit, "title": y_title},
                                "color": {"field": color, "type": "nominal"}, "order": {"field": "_order"},
                                "tooltip": [{"field": color}, {"field": x}, {"field": y}]}})
    return {"title": title, "height": height, "layer": layers}


def bars(x: str, y: str, color: str, x_title: str, y_title: str, stack: bool = False, height: int = 260) -> dict:
    """Grouped (or stacked) bars: `y` per `x`, one bar per `color`."""
    enc = {"x": {"field": x, "type": "nominal", "title": x_title, "sort": None},
           "y": {"field": y, "type": "quantitative", "title": y_title, "stack": True if stack else None},
           "color": {"field": color, "type": "nominal"},
           "tooltip": [{"field": x}, {"field": color}, {"field": y}]}
    if not stack:
        enc["xOffset"] = {"field": color, "type": "nominal"}
    if color == "pattern":
        enc["color"]["scale"] = PATTERN_SCALE
    return {"height": height, "mark": {"type": "bar"}, "encoding": enc}


def counts(y: str, x: str, x_title: str, height: int = 160) -> dict:
    """Horizontal bars: one bar of `x` per `y` value (e.g. quarantined files per reason)."""
    return {"height": height, "mark": {"type": "bar"},
            "encoding": {"y": {"field": y, "type": "nominal", "title": None, "sort": "-x"},
                         "x": {"field": x, "type": "quantitative", "title": x_title, "axis": {"tickMinStep": 1}},
                         "tooltip": [{"field": y}, {"field": x}]}}


def strip(x: str, y: str, color: str, x_title: str, height: int = 200) -> dict:
    """Points of `x` per `y` row coloured by `color` (fold spread: one point per fold model)."""
    return {"height": height, "mark": {"type": "point", "filled": True, "size": 80, "opacity": 0.8},
            "encoding": {"x": {"field": x, "type": "quantitative", "title": x_title, "scale": {"zero": False}},
                         "y": {"field": y, "type": "nominal", "title": None},
                         "color": {"field": color, "type": "nominal"},
                         "tooltip": [{"field": y}, {"field": color}, {"field": x}, {"field": "fold"}]}}


def histogram(field: str, title: str, height: int = 180) -> dict:
    return {"height": height, "mark": "bar",
            "encoding": {"x": {"field": field, "type": "quantitative", "bin": {"maxbins": 20}, "title": title},
                         "y": {"aggregate": "count", "type": "quantitative", "title": "videos"}}}
