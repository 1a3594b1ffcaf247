"""Variant generator: (base, attention, placement, hyper-parameters) -> an ultralytics model YAML.

Attention rows are inserted into a base YAML that ultralytics ships, and every later ``from``
index (the Detect inputs included) is renumbered, so nobody edits indices by hand.
"""
from __future__ import annotations

import ast
import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path

from attention_lens.attention import ATTENTION_MODULES
from attention_lens.modeling.integration import CSP_ATTENTION, CSP_POSITIONS

#: Base family -> the model YAML ultralytics ships for it (v5 is the anchor-free "v5u" layout).
BASE_FILES = {"yolov5": "v5/yolov5.yaml", "yolov8": "v8/yolov8.yaml", "yolo11": "11/yolo11.yaml",
              "yolo12": "12/yolo12.yaml", "yolo26": "26/yolo26.yaml"}
#: Head settings a base YAML may carry besides its layers (YOLO26: the one-to-one head, one DFL bin);
#: a variant keeps them, or it would build another detector.
HEAD_KEYS = ("end2end", "reg_max")
CSP_BLOCKS = ("C3", "C2f", "C3k2")
PLACEMENTS = {
    "backbone_end": "after the last backbone layer (SPPF; C2PSA in yolo11/yolo26, which follows SPPF; "
    "the last area-attention block in yolo12)",
    "before_sppf": "just before SPPF (not in yolo12, which has none)",
    "backbone_outputs": "on the three backbone outputs that feed the neck (the YOLOX habit); "
    "the backbone itself keeps its plain features",
    "neck_outputs": "after the neck's P3/P4/P5 blocks, just before Detect",
    "in_csp": "inside every C3 / C2f / C3k2 block (param position: main, shortcut or concat); "
    "yolo12's area-attention blocks (A2C2f) are left as they are",
}


@dataclass(frozen=True)
class Base:
    family: str
    scale: str | None  # None keeps every scale of the family

    @property
    def name(self) -> str:
        return self.family + (self.scale or "")


#: The order bases are listed in everywhere (pickers, Metrics, the zoo table): the project's
#: first base, then the older and the newer layout.
BASE_ORDER = ("yolov8", "yolov5", "yolo11", "yolo12", "yolo26")


def display_base(base: str | None) -> str:
    """A base as every view names it: this project's yolov5 bases build ultralytics' anchor-free v5u
    layout, which ultralytics (and the model pickers) call ``yolov5nu``; others as they are."""
    name = str(base or "?")
    return f"{name}u" if re.fullmatch(r"yolov5[nsmlx]", name) else name


def base_rank(base: str | None) -> tuple[int, str]:
    """Sort key of a base name ("yolov8n", "yolov5nu", ...): by family in BASE_ORDER, unknown last."""
    name = (base or "").lower()
    return next((i for i, f in enumerate(BASE_ORDER) if name.startswith(f)), len(BASE_ORDER)), name


def parse_base(name: str) -> Base:
    m = re.fullmatch(r"(yolov5|yolov8|yolo11|yolo12|yolo26)([nsmlx])?", name.strip().lower())
    if not m:
        raise ValueError(f"unknown base {name!r}; expected one of {list(BASE_FILES)} with an optional scale n/s/m/l/x")
    return Base(m.group(1), m.group(2))


def load_base(base: Base) -> dict:
    """The base YAML as a dict, narrowed to one scale when the base names one."""
    from ultralytics.cfg import __file__ as cfg_init
    from ultralytics.utils import YAML

    d = YAML.load(Path(cfg_init).parent / "models" / BASE_FILES[base.family])
    d = {k: v for k, v in d.items() if k in ("nc", *HEAD_KEYS, "scales", "backbone", "head")}
    if base.scale:
        d["scales"] = {base.scale: d["scales"][base.scale]}
    return d


def attention_args(attention: str, params: dict | None = None) -> list:
    """Positional YAML args for ``attention`` from named hyper-parameters (channels excluded).

    Only the leading parameters up to the last one given are written, so defaults stay
    defaults. Unknown names are refused with the list of known ones.
    """
    if attention not in ATTENTION_MODULES:
        raise ValueError(f"unknown attention {attention!r}; expected one of {list(ATTENTION_MODULES)}")
    params = dict(params or {})
    names = list(inspect.signature(ATTENTION_MODULES[attention]).parameters)[1:]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"{attention} has no parameter {unknown}; it takes {names}")
    sig = inspect.signature(ATTENTION_MODULES[attention]).parameters
    given = [i for i, n in enumerate(names) if n in params]
    return [params.get(n, sig[n].default) for n in names[: max(given) + 1]] if given else []


def parse_params(items: list[str] | None) -> dict:
    """``["factor=32", "layout=parallel"]`` -> {"factor": 32, "layout": "parallel"}."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects name=value, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def anchors_for(d: dict, placement: str) -> tuple[list[int], str]:
    """The layers to insert attention after, and how later layers consume it.

    "inline": every consumer of the anchor reads the attention instead. "branch": only the
    neck reads it; the next backbone layer keeps the anchor's plain output.
    """
    backbone, head = d["backbone"], d["head"]
    nb = len(backbone)
    names = [row[2] for row in backbone]
    if placement == "backbone_end":
        return [nb - 1], "inline"
    if placement == "before_sppf":
        if "SPPF" not in names:
            raise ValueError("this base has no SPPF layer")
        return [names.index("SPPF") - 1], "inline"
    if placement == "backbone_outputs":
        refs = {j for row in head for j in _from_indices(row[0]) if 0 <= j < nb}
        return sorted(refs | {nb - 1}), "branch"
    if placement == "neck_outputs":
        return sorted(_from_indices(head[-1][0])), "inline"
    raise ValueError(f"unknown placement {placement!r}; expected one of {list(PLACEMENTS)}")


def make_variant(base: str, attention: str | None, placement: str | None, params: dict | None = None,
                 nc: int | None = None) -> dict:
    """A model YAML dict for the variant. ``attention=None`` gives the plain base."""
    b = parse_base(base)
    d = load_base(b)
    if nc:
        d["nc"] = int(nc)
    if attention is None:
        return d
    params = dict(params or {})
    if placement == "in_csp":
        position = params.pop("position", "concat")
        if position not in CSP_POSITIONS:
            raise ValueError(f"unknown CSP position {position!r}; expected one of {list(CSP_POSITIONS)}")
        args = attention_args(attention, params)
        for section in ("backbone", "head"):
            for row in d[section]:
                if row[2] in CSP_BLOCKS:
                    if position == "shortcut" and row[2] != "C3":
                        raise ValueError(f"position 'shortcut' exists only in C3 blocks; {b.family} uses {row[2]}")
                    row[2:] = [CSP_ATTENTION, [row[2], row[3], attention, args, position]]
        return d
    args = attention_args(attention, params)
    anchors, mode = anchors_for(d, placement)
    rows = insert_after(d["backbone"] + d["head"], len(d["backbone"]), anchors, [-1, 1, attention, args], mode)
    nb = len(d["backbone"]) + sum(a < len(d["backbone"]) for a in anchors)
    d["backbone"], d["head"] = rows[:nb], rows[nb:]
    return d


def insert_after(rows: list, nb: int, anchors: list[int], new_row: list, mode: str = "inline") -> list:
    """Insert a copy of ``new_row`` after each anchor and renumber every ``from``.

    ``rows`` are [from, n, module, args] in the original numbering; ``nb`` is the backbone
    length. Relative references other than -1 become absolute, since their distance changes.
    """
    anchors = sorted(set(anchors))
    shift = lambda j: j + sum(a < j for a in anchors)  # noqa: E731  new index of old layer j
    inserted = lambda a: shift(a) + 1  # noqa: E731  new index of the attention after anchor a

    def remap(ref: int, consumer: int) -> int:
        old = ref if ref >= 0 else consumer + ref
        if old in anchors and (mode == "inline" or consumer >= nb):
            return inserted(old)
        return shift(old)

    out = []
    for i, (f, n, module, args) in enumerate(rows):
        def one(ref):
            if ref == -1:
                if i - 1 in anchors and mode == "branch" and i < nb:
                    return shift(i - 1)  # the backbone carries on from the plain features
                return -1
            return remap(ref, i)

        out.append([[one(r) for r in f] if isinstance(f, list) else one(f), n, module, args])
        if i in anchors:
            out.append(json.loads(json.dumps(new_row)))
    return out


def to_yaml(d: dict, header: str = "") -> str:
    """Ultralytics-style YAML: one flow row per layer, each commented with its index."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines.append(f"nc: {d['nc']}")
    lines += [f"{k}: {json.dumps(d[k])}" for k in HEAD_KEYS if k in d]
    if d.get("scales"):
        lines.append("scales: # [depth, width, max_channels]")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in d["scales"].items()]
    i = 0
    for section in ("backbone", "head"):
        lines.append(f"{section}:")
        for row in d[section]:
            lines.append(f"  - {_flow(row)} # {i}")
            i += 1
    return "\n".join(lines) + "\n"


def describe(base: str, attention: str | None, placement: str | None, params: dict | None) -> str:
    what = f"{parse_base(base).name}" + (f" + {attention} at {placement}" if attention else "")
    if params:
        what += " (" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
    return f"Attention Lens variant: {what}\nGenerated by `python -m attention_lens variant`; indices renumbered automatically."


def _flow(value) -> str:
    """A YAML flow value; plain identifiers stay unquoted, as in ultralytics' own files."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", value) and value not in _YAML_WORDS:
        return value
    return json.dumps(value)


_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "True", "False", "Null", "NULL", "y", "n"}


def _from_indices(f) -> list[int]:
    return list(f) if isinstance(f, list) else [f]


def placement_label(variant: dict) -> str | None:
    """The placement, with the CSP position where it has one: "in_csp (main)" and "in_csp (concat)"
    are different variants (the tutorials' C3_EMA1 and C3_EMA3) and must not be pooled."""
    placement = variant.get("placement") if variant.get("attention") else None
    position = (variant.get("params") or {}).get("position") if isinstance(variant.get("params"), dict) else None
    return f"{placement} ({position})" if placement and position else placement
