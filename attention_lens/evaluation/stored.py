"""Stored detections: a split's ground truth and each model's detections as numbers only.

The zoo's files (weights/evaluation/*.json.gz) let the data-set views work where the images are
not (a Space); a file is read as data, bounded in size, and checked to cover its split.
"""
from __future__ import annotations

import json

import numpy as np

from attention_lens.data.datasets import Split


#: Largest stored-detections file read (gzip, then the JSON inside).
MAX_STORED_BYTES = 32 * 2**20


def save_detections(path, split: Split, imgsz: int, detections: dict[str, list[np.ndarray]],
                    localisation: dict[str, list] | None = None) -> None:
    """Numbers only (ground truth, image sizes, each model's detections and per-image
    localisation scores) as gzipped JSON, so the data-set views work where the images are not (a Space)."""
    import gzip

    rows = {n: [_stored_rows(d) for d in per_image] for n, per_image in detections.items()}
    data = {"split": split.as_dict(), "image size": imgsz, "detections": rows,
            "localisation": {n: s for n, s in (localisation or {}).items() if s is not None}}
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))


def _stored_rows(det: np.ndarray) -> list:
    """One image's detections as stored: boxes to 0.01 px and scores to 1e-5 (every metric equal to
    the unrounded ones on the zoo; the file stays under a Space's 10 MB limit for plain git)."""
    det = np.asarray(det, dtype=np.float64).reshape(-1, 6)
    return np.column_stack([np.round(det[:, :4], 2), np.round(det[:, 4], 5), det[:, 5]]).tolist()


def load_detections(path) -> tuple[Split, int, dict[str, list[np.ndarray]], dict[str, list]]:
    """(split without pixels, image size, name -> per-image detections, name -> per-image
    localisation scores); ValueError if malformed."""
    import gzip

    with gzip.open(path, "rb") as f:
        raw = f.read(MAX_STORED_BYTES + 1)
    if len(raw) > MAX_STORED_BYTES:
        raise ValueError("stored detections larger than 32 MB")
    try:
        data = json.loads(raw)
        split = Split.from_dict(data["split"])
        dets = {str(n): [np.asarray(d, dtype=np.float64).reshape(-1, 6) for d in per_image]
                for n, per_image in data["detections"].items()}
        imgsz = int(data["image size"])
        scores = {str(n): [_scores(s) for s in per_image] for n, per_image in data.get("localisation", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"stored detections unreadable ({type(e).__name__})") from None
    if any(len(d) != len(split.images) for d in [*dets.values(), *scores.values()]):
        raise ValueError("stored detections do not cover the split's images")
    return split, imgsz, dets, scores


def joined_detections(paths, split: str, imgsz: int, load=load_detections
                      ) -> tuple[Split | None, dict[str, list[np.ndarray]], dict[str, list]]:
    """(split, name -> detections, name -> localisation scores) of the stored files at ``paths``
    that hold ``split`` at ``imgsz``, or (None, {}, {}). One split's models may span several files
    (each stays under a Space's 10 MB limit for files in plain git): their models are joined, the
    first file in ``paths``' order winning a model two files hold; a file of another data set (by
    fingerprint) or an unreadable one is left out. ``load``: how a file is read (a caller's cache)."""
    found, dets, scores = None, {}, {}
    for path in paths:
        try:
            s, size, d, sc = load(path)
        except (ValueError, OSError):
            continue
        if s.split != split or size != int(imgsz) or (found is not None and s.fingerprint != found.fingerprint):
            continue
        found = found or s
        for name in d:
            if name not in dets:
                dets[name], scores[name] = d[name], sc.get(name)
    return found, dets, {n: s for n, s in scores.items() if s is not None}


def merged_detections(path, split: Split, imgsz: int, detections: dict, localisation: dict) -> tuple[dict, dict]:
    """The models stored at ``path`` with ``detections`` (and their scores) added or replacing
    theirs; ValueError when the file holds another split or image size (the numbers would not
    be comparable)."""
    old_split, old_size, old_dets, old_scores = load_detections(path)
    if (old_split.fingerprint, old_split.split, old_size) != (split.fingerprint, split.split, imgsz):
        raise ValueError(f"{path} holds the {old_split.split} split of another data set or image size "
                         f"({old_split.fingerprint[:8]}, {old_size} px); not merged")
    return {**old_dets, **detections}, {**old_scores, **{n: s for n, s in localisation.items() if s is not None}}


def _scores(s) -> dict | None:
    """One image's stored localisation scores, checked to be the numbers they should be."""
    if s is None:
        return None
    return {str(label): {"kind": str(v["kind"]), "stride": int(v["stride"]),
                         "groups": {str(g): [float(r), bool(h)] for g, (r, h) in v["groups"].items()},
                         **({"in_box": {str(g): [int(k), [float(x) for x in heads]]
                                        for g, (k, heads) in v["in_box"].items()}} if v.get("in_box") else {})}
            for label, v in s.items()}
