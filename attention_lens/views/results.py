"""The Evaluate view's tables, charts and HTML report, from the JSON-ready results dict
(dataset_report.evaluate_detections). Plain functions of data: no model, no files.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from attention_lens.evaluation.coco import CATEGORIES
from attention_lens.views.localisation import localisation_figure, localisation_frame


#: How each mAP column was computed: two definitions from the same detections (docs in the README).
COCO, ULTRALYTICS = "COCO", "ultralytics val"


def metrics_frame(results: dict):
    """One row per model: both definitions of mAP side by side (COCO's, pycocotools' algorithm; and
    ultralytics' val, its own ap_per_class), the Δ of COCO's mAP50-95 with its interval and
    verdict, P and R at the chosen confidence, AP by size (COCO) and what ran the model."""
    import pandas as pd

    rows = []
    for name, m in results["models"].items():
        b = results["against reference"].get(name, {}).get("bootstrap", {}).get("mAP50-95", {})
        u = m.get("ultralytics") or {}
        rows.append({"model": name, f"mAP50-95 ({COCO})": m["mAP50-95"],
                     f"mAP50-95 ({ULTRALYTICS})": u.get("mAP50-95"),
                     f"Δ mAP50-95 ({COCO})": b.get("delta", 0.0),
                     "95% interval": f"[{b['low']:+.3f}, {b['high']:+.3f}]" if b else "reference",
                     "verdict": b.get("verdict", "reference"), f"mAP50 ({COCO})": m["mAP50"],
                     f"mAP50 ({ULTRALYTICS})": u.get("mAP50"), "P": m.get("P"), "R": m.get("R"),
                     "AP small": m["AP small"], "AP medium": m["AP medium"], "AP large": m["AP large"],
                     "ran on": results.get("ran on", {}).get(name, "")})
    return pd.DataFrame(rows)


def errors_frame(results: dict):
    """Why each model's AP50 falls short (TIDE's error types): for every model but the reference, a
    sentence from the intervals that exclude zero and each type's Δ dAP against the reference
    (negative: it loses less AP to that type); for every model, the AP fixing each type would add
    (dAP) and how many there are."""
    import pandas as pd

    from attention_lens.evaluation.error_types import TYPES

    rows = []
    for name, m in results["models"].items():
        e = m.get("errors")
        if not e:
            continue
        against = results["against reference"].get(name, {})
        row = {"model": name, "why (TIDE, vs the reference)": against.get("why", "the reference"),
               "AP50 (TIDE)": e["AP50"]}
        for t in TYPES:
            a = (against.get("errors") or {}).get(t)
            row[f"Δ dAP {t}"] = None if a is None else a["delta"]
        for t in TYPES:
            row[f"dAP {t}"] = e["dAP"][t]
        for t in TYPES:
            row[f"dAP {t} (50-95)"] = (e.get("dAP 50-95") or {}).get(t)
        row.update({f"{t} (count)": e["counts"][t] for t in TYPES})
        rows.append(row)
    return pd.DataFrame(rows)


def _flow_objects(results: dict, model: str, cls: str | None, size: str | None):
    """(object index, reference outcome, model outcome) of the filtered ground-truth objects."""
    o = (results["against reference"].get(model) or {}).get("outcomes") or {}
    ref, mod = o.get("reference", ""), o.get("model", "")
    return [(k, ref[k], mod[k]) for k in _kept(results, cls, size) if k < len(ref) and k < len(mod)]


def outcome_flows(results: dict, model: str, cls: str | None = None, size: str | None = None) -> dict:
    """(reference outcome, model outcome) -> number of the filtered ground-truth objects."""
    flows: dict[tuple[str, str], int] = {}
    for _, a, b in _flow_objects(results, model, cls, size):
        flows[(a, b)] = flows.get((a, b), 0) + 1
    return flows


def flow_choices(results: dict, cls: str | None = None, size: str | None = None) -> list[tuple[str, str]]:
    """(label, value) of every flow between a reference outcome and a model's that differ (the
    objects where the two disagree), largest first: what the flow picker lists."""
    from attention_lens.evaluation.error_types import OUTCOMES

    out = []
    for name in results["against reference"]:
        for (a, b), n in outcome_flows(results, name, cls, size).items():
            if a != b:
                out.append((n, f"{name}: reference {OUTCOMES[a]} → {OUTCOMES[b]} ({n})", f"{name}|{a}|{b}"))
    return [(label, value) for _, label, value in sorted(out, key=lambda x: -x[0])]


def flow_images(results: dict, flow: str | None, cls: str | None = None, size: str | None = None):
    """The images holding the objects of one flow (``flow_choices``' value), most such objects first."""
    import pandas as pd

    columns = ["model", "image", "objects in this flow"]
    if not flow or flow.count("|") < 2:
        return pd.DataFrame(columns=columns)
    name, a, b = flow.rsplit("|", 2)
    images, names = (results.get("objects") or {}).get("image", []), results["data set"].get("image names") or []
    per_image: dict[int, int] = {}
    for k, ra, mb in _flow_objects(results, name, cls, size):
        if (ra, mb) == (a, b):
            per_image[images[k]] = per_image.get(images[k], 0) + 1
    rows = [(name, names[i] if i < len(names) else str(i), n) for i, n in per_image.items()]
    return pd.DataFrame(sorted(rows, key=lambda r: (-r[2], r[1])), columns=columns)


def outcomes_figure(results: dict, cls: str | None = None, size: str | None = None):
    """Object by object, what the reference did with it and what each model did (plotly Sankey,
    one band per model): found, localisation error, class error, both, missed (TIDE's terms, at
    the evaluation's confidence and IoU 0.5)."""
    import plotly.graph_objects as go

    from attention_lens.evaluation.error_types import OUTCOMES

    names = [n for n in results["against reference"] if results["against reference"][n].get("outcomes")]
    if not names:
        return None
    letters = list(OUTCOMES)
    colours = {"F": "#00CC96", "L": "#FFA15A", "C": "#AB63FA", "B": "#FF6692", "M": "#EF553B"}
    fig = go.Figure()
    band = 1 / len(names)
    for row, name in enumerate(names):
        flows = outcome_flows(results, name, cls, size)
        labels = [f"reference: {OUTCOMES[x]}" for x in letters] + [f"{name}: {OUTCOMES[x]}" for x in letters]
        links = [(letters.index(a), len(letters) + letters.index(b), v) for (a, b), v in sorted(flows.items())]
        # Each link carries its flow as the flow picker names it (``flow_choices``): a click on it
        # in the page selects that flow (app.widgets.PAGE_JS).
        keys = [f"{name}|{a}|{b}" for (a, b) in sorted(flows)]
        fig.add_trace(go.Sankey(
            domain={"x": [0, 1], "y": [1 - (row + 1) * band + 0.02, 1 - row * band - 0.02]},
            node={"label": labels, "color": [colours[x] for x in letters] * 2, "pad": 8, "thickness": 12},
            link={"source": [a for a, _, _ in links], "target": [b for _, b, _ in links],
                  "value": [v for *_, v in links], "color": ["rgba(0,0,0,0.18)"] * len(links),
                  "customdata": keys}))
    which = " ".join(v for v in (size, cls) if v not in (None, ALL)) or "all"
    fig.update_layout(height=max(260, 240 * len(names)), margin=dict(t=40, b=10, l=10, r=10),
                      title=dict(text=f"Each object ({which}): the reference's outcome → the model's (confidence ≥ "
                                      f"{results['confidence']:g}, IoU 0.5)", font_size=13))
    return fig


def errors_by_class_frame(results: dict, by: str = "class"):
    """Per model and class (``by="size"``: COCO size range), the AP50 there fixing each error type
    would add."""
    import pandas as pd

    rows = [{"model": name, by: c, **{f"dAP {t}": v for t, v in d.items()}}
            for name, m in results["models"].items()
            for c, d in ((m.get("errors") or {}).get(f"dAP by {by}") or {}).items()]
    return pd.DataFrame(rows)


def objects_figure(results: dict, cls: str | None = None, size: str | None = None):
    """Stacked bars of each model's ground-truth objects (of class ``cls`` and size ``size``, if
    given) found by only the reference, only the model, or neither; the many found by both are
    counted in each model's label rather than drawn, so the differences stay visible."""
    import plotly.graph_objects as go

    names = list(results["against reference"])
    counts = {n: object_counts(results, n, cls, size) if results.get("objects") else
              results["against reference"][n]["objects"] for n in names}
    labels = [f"{n}<br>both found {counts[n]['both']}" for n in names]
    fig = go.Figure()
    colours = {"only reference": "#EF553B", "only model": "#00CC96", "neither": "#AB63FA"}
    for c in CATEGORIES[1:]:
        fig.add_trace(go.Bar(name=c, x=labels, y=[counts[n][c] for n in names], marker_color=colours[c]))
    which = " ".join(v for v in (size, cls) if v not in (None, ALL)) or "all"
    fig.update_layout(barmode="stack", height=380, yaxis_title=f"objects ({which})",
                      title=dict(text=f"Found by only one of the two, or neither (confidence ≥ "
                                      f"{results['confidence']:g}, IoU 0.5)", font_size=13),
                      margin=dict(t=40, b=70, l=50, r=10), legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(tickangle=0, automargin=True)
    return fig


def delta_figure(results: dict):
    """Δ mAP50-95 against the reference with its bootstrap interval, and the seed band if known."""
    import plotly.graph_objects as go

    names = list(results["against reference"])
    boot = [results["against reference"][n]["bootstrap"]["mAP50-95"] for n in names]
    fig = go.Figure(go.Scatter(
        x=[b["delta"] for b in boot], y=names, mode="markers", marker=dict(size=11),
        error_x=dict(type="data", symmetric=False, array=[b["high"] - b["delta"] for b in boot],
                     arrayminus=[b["delta"] - b["low"] for b in boot]),
        name="Δ mAP50-95, 95% bootstrap interval over images"))
    std = next((b["seed std"] for b in boot if b.get("seed std")), None)
    if std:
        fig.add_vrect(x0=-2 * std, x1=2 * std, fillcolor="grey", opacity=0.15, line_width=0,
                      annotation_text="reference ± 2σ over seeds", annotation_position="top left")
    fig.add_vline(x=0, line_dash="dot")
    fig.update_layout(height=120 + 40 * len(names), xaxis_title=f"Δ mAP50-95 vs {results['reference']}",
                      margin=dict(t=30, b=40, l=10, r=10), showlegend=False)
    return fig


def script_json(data) -> str:
    """JSON to embed in a <script> element: its text is read raw (entities stay as they are), so
    only the characters that could end or confuse the element are escaped, as JSON escapes that
    ``json.loads`` of the element's text undoes."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


#: Skipped files listed by name; the rest are counted (all are in the JSON).
SKIPPED_LISTED = 12


def skipped_lines(results: dict) -> list[str]:
    """'file: reason' for each file the data set left out (the first SKIPPED_LISTED, then a count)."""
    skipped = results["data set"].get("skipped") or []
    lines = [f"{x['file']}: {x['reason']}" for x in skipped[:SKIPPED_LISTED]]
    if len(skipped) > SKIPPED_LISTED:
        lines.append(f"... and {len(skipped) - SKIPPED_LISTED} more (all in the JSON, under 'data set')")
    return lines


def data_set_summary(results: dict) -> str:
    """Markdown: what was evaluated, what the data set left out and why, and how it was read."""
    ds = results["data set"]
    text = (f"**{_md(ds['name'])} / {ds['split']}**: {ds['images']} images, {ds['objects']} objects, classes "
            f"{_md(', '.join(ds['classes']))}; reference **{_md(results['reference'])}**.")
    skipped = skipped_lines(results)
    if skipped:
        count = len(ds.get("skipped") or [])
        text += (f"\n\n{count} file(s) left out, each with its reason:\n"
                 + "\n".join("- `" + line.replace("`", "'") + "`" for line in skipped))
    for note in ds.get("notes") or []:
        text += f"\n\n{_md(note)}"
    return text


def _md(text: str) -> str:
    """User-supplied text shown as plain text in Markdown."""
    return "".join("\\" + c if c in "\\`*_{}[]<>()#+-.!|~" else c for c in str(text))


def write_report(results: dict, folder, json_name: str, html_name: str) -> tuple[Path, Path]:
    """The evaluation as ``json_name`` (the dict, as data) and ``html_name`` (the self-contained
    report) in ``folder``: what the CLI's ``analyze`` and the Evaluate tab both hand the user."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / json_name, folder / html_name
    json_path.write_text(json.dumps(results, indent=1))
    html_path.write_text(html_report(results))
    return json_path, html_path


def html_report(results: dict) -> str:
    """One self-contained HTML file (plotly.js inlined once) with the tables and charts."""
    ds = results["data set"]
    table = metrics_frame(results).to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—")
    figs = [objects_figure(results), delta_figure(results)] if results["against reference"] else []
    loc = ""
    if results.get("localisation"):
        figs.append(localisation_figure(results))
        loc = ("<h2>Where the maps fall (all objects)</h2><p>Energy ratio: the share of each map's mass inside "
               "the ground-truth boxes divided by the share of the image they cover (1 = no preference), mean "
               "over images. Pointing game: how often the map's strongest cell lies in a box (15 px tolerance)."
               "</p>" + localisation_frame(results).to_html(index=False, float_format=lambda v: f"{v:.3f}"))
    charts = "".join(f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs))
    images = "".join(
        f"<h3>{html.escape(n)}: images where it and the reference disagree most</h3>"
        + _rows_html(a["images"][:10]) for n, a in results["against reference"].items())
    return (f"<!doctype html><meta charset='utf-8'><title>Attention Lens evaluation</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}"
            f"td,th{{border:1px solid #ccc;padding:4px 8px}}</style>"
            f"<h1>Evaluation on {html.escape(ds['name'])} / {html.escape(ds['split'])}</h1>"
            f"<p>{ds['images']} images, {ds['objects']} objects, classes {html.escape(', '.join(ds['classes']))}; "
            f"reference {html.escape(results['reference'])}; P, R and found objects at confidence "
            f"≥ {results['confidence']:g}; bootstrap {results['bootstrap rounds']} rounds over images.</p>"
            f"{_skipped_html(results)}{table}{_errors_html(results)}{loc}{charts}{images}"
            f"<script type='application/json' id='results'>{script_json(results)}</script>")


def _errors_html(results: dict) -> str:
    frame = errors_frame(results)
    if frame.empty:
        return ""
    return ("<h2>Why: TIDE's error types (IoU 0.5)</h2><p>dAP: the AP50 fixing all errors of a type would add "
            "(TIDE, Bolya et al. 2020: foreground IoU 0.5, background 0.1; types checked in TIDE's order). "
            "Δ dAP: against the reference (negative: fewer of those errors).</p>"
            + frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—")
            + "<h3>dAP per class</h3>"
            + errors_by_class_frame(results).to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="—")
            + "<h3>dAP per object size (COCO's areas: objects of that size, and the detections that found or "
              "claim them, else by their own box)</h3>"
            + errors_by_class_frame(results, "size").to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                                             na_rep="—"))


def _skipped_html(results: dict) -> str:
    lines = skipped_lines(results)
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in results["data set"].get("notes") or [])
    if not lines:
        return notes
    count = len(results["data set"].get("skipped") or [])
    return (f"<p>{count} file(s) left out, each with its reason:</p><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>" + notes)


def _rows_html(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# ----------------------------------------------------------------------------- filters
#: The class and size filters' "no filter".
ALL = "all"
LETTERS = {"b": "both", "r": "only reference", "m": "only model", "n": "neither"}


def filter_choices(results: dict) -> tuple[list[str], list[str]]:
    """(classes, size buckets) present among the split's ground-truth objects, each after "all"."""
    objects = results.get("objects") or {"class": [], "size": []}
    sizes = [s for s in ("small", "medium", "large") if s in set(objects["size"])]
    return [ALL, *results["data set"]["classes"]], [ALL, *sizes]


def _kept(results: dict, cls: str | None, size: str | None) -> list[int]:
    """Indices of the ground-truth objects of class ``cls`` and size ``size`` (None / "all": any)."""
    objects = results.get("objects") or {"class": [], "size": [], "image": []}
    return [k for k, (c, s) in enumerate(zip(objects["class"], objects["size"]))
            if cls in (None, ALL, c) and size in (None, ALL, s)]


def object_counts(results: dict, model: str, cls: str | None = None, size: str | None = None) -> dict:
    """Category -> number of the filtered ground-truth objects (this model against the reference)."""
    codes = results["against reference"][model].get("categories", "")
    counts = {c: 0 for c in CATEGORIES}
    for k in _kept(results, cls, size):
        counts[LETTERS[codes[k]]] += 1
    return counts


def ranked_images(results: dict, model: str, cls: str | None = None, size: str | None = None,
                  top: int = 20) -> list[dict]:
    """Images ranked by how much ``model`` and the reference disagree on the filtered objects
    (found by only one of them), then by the change in false positives (all classes and sizes)."""
    a = results["against reference"][model]
    codes, images = a.get("categories", ""), results["objects"]["image"] if results.get("objects") else []
    names = results["data set"].get("image names") or []
    per_image: dict[int, list[int]] = {}
    for k in _kept(results, cls, size):
        row = per_image.setdefault(images[k], [0, 0])
        row[0] += codes[k] == "r"
        row[1] += codes[k] == "m"
    fp = a.get("false positives per image", {"reference": [], "model": []})
    rows = []
    for i, (only_ref, only_model) in per_image.items():
        delta = int(fp["model"][i] - fp["reference"][i]) if fp["model"] else 0
        rows.append({"image": names[i] if i < len(names) else str(i), "only reference": only_ref,
                     "only model": only_model, "FP added": max(delta, 0), "FP removed": max(-delta, 0),
                     "score": only_ref + only_model + (abs(delta) if cls in (None, ALL) and size in (None, ALL) else 0)})
    rows.sort(key=lambda r: (-r["score"], -(r["only reference"] + r["only model"]), r["image"]))
    return [r for r in rows if r["score"] > 0][:top]


def group_key(cls: str | None, size: str | None) -> str:
    """The localisation group a filter selects: a class if one is picked, else a size, else all."""
    return f"class {cls}" if cls not in (None, ALL) else f"size {size}" if size not in (None, ALL) else "all"
