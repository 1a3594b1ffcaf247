"""Draws the project's own example images: synthetic blood smears (no data set pixels).

    python assets/make_examples.py      # rewrites assets/examples/*.jpg

The shipped zoo was trained on BCCD, whose images this repository never ships; these drawings
give the app something to show out of the box. Each is seeded, so the files are reproducible.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent / "examples"


def smear(seed: int, size=(480, 640), n_rbc=22) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.empty((h, w, 3), np.float32)
    img[:] = (214, 206, 222)  # pale lilac background (BGR)
    placed = []
    for _ in range(n_rbc * 20):  # red cells: discs with a pale centre, mostly not overlapping
        if len(placed) == n_rbc:
            break
        r = rng.uniform(38, 52)
        c = rng.uniform([r, r], [w - r, h - r])
        if all(np.hypot(*(c - p)) > (r + q) * 0.8 for p, q in placed):
            placed.append((c, r))
    for c, r in placed:
        center = tuple(int(v) for v in c)
        cv2.circle(img, center, int(r), (120, 110, 190), -1, cv2.LINE_AA)
        cv2.circle(img, center, int(r * 0.45), (150, 145, 205), -1, cv2.LINE_AA)
    wc = (int(w * rng.uniform(0.3, 0.7)), int(h * rng.uniform(0.3, 0.7)))  # one white cell: lobed purple nucleus
    cv2.circle(img, wc, 75, (225, 205, 215), -1, cv2.LINE_AA)
    for dx, dy in ((-22, -10), (18, -18), (10, 20), (-15, 22)):
        cv2.circle(img, (wc[0] + dx, wc[1] + dy), 26, (150, 60, 95), -1, cv2.LINE_AA)
    for _ in range(3):  # platelets: small purple specks
        p = (int(rng.uniform(20, w - 20)), int(rng.uniform(20, h - 20)))
        cv2.circle(img, p, int(rng.uniform(7, 11)), (160, 90, 140), -1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), 2.0) + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for seed in (1, 2):
        cv2.imwrite(str(OUT / f"synthetic_smear_{seed}.jpg"), smear(seed), [cv2.IMWRITE_JPEG_QUALITY, 90])


if __name__ == "__main__":
    main()
