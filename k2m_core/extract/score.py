"""Accuracy of a backend on COCO person-keypoint ground truth.

For every image the backend's largest person is matched to the ground-truth person whose box
overlaps its box most (IoU at least `MIN_IOU`; people with no labelled keypoint are not
candidates). On each match:

- PCK: a labelled keypoint is correct when the prediction lies within ``0.1 ×`` the ground-truth
  box height (a keypoint predicted with confidence 0 is wrong);
- OKS: COCO's object keypoint similarity (per-keypoint sigmas, the annotation's area).

``ap`` is COCO's OKS AP restricted to the returned people: the share of them with OKS at least
t, averaged over t = 0.50, 0.55, …, 0.95 (an image whose person matches nobody counts as a miss).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from k2m_core.extract.estimators import Estimator

SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10
OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)
MIN_IOU = 0.1


@dataclass
class ImageScore:
    file: str
    iou: float          # overlap with the matched ground truth (0: no person or no match)
    labelled: int       # labelled keypoints of the match
    correct: int        # of them within 0.1 × box height
    oks: float          # 0 without a match


@dataclass
class Score:
    images: list[ImageScore]

    @property
    def pck(self) -> float:
        labelled = sum(i.labelled for i in self.images)
        return sum(i.correct for i in self.images) / labelled if labelled else 0.0

    @property
    def mean_oks(self) -> float:
        return float(np.mean([i.oks for i in self.images]))

    @property
    def ap(self) -> float:
        oks = np.array([i.oks for i in self.images])
        return float(np.mean([(oks >= t).mean() for t in OKS_THRESHOLDS]))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap of box ``a (4,)`` with boxes ``b (N, 4)``, all x0, y0, x1, y1."""
    lo, hi = np.maximum(a[:2], b[:, :2]), np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return inter / np.maximum(box_area(a) + box_area(b) - inter, 1e-9)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of boxes ``(..., 4)`` x0, y0, x1, y1."""
    return np.prod(boxes[..., 2:] - boxes[..., :2], axis=-1)


def oks(pred: np.ndarray, truth: np.ndarray, visible: np.ndarray, area: float) -> float:
    """COCO OKS of ``pred (17, 2)`` against ``truth (17, 2)`` over the ``visible (17,)`` keypoints."""
    if not visible.any():
        return 0.0
    d2 = ((pred - truth) ** 2).sum(1)
    e = d2 / (2 * SIGMAS) ** 2 / (area + np.spacing(1)) / 2
    return float(np.exp(-e)[visible].mean())


def score_coco(annotations: Path, images: Path, estimator: Estimator) -> Score:
    """Run ``estimator`` on every image of a COCO keypoint annotation file (images in ``images``)."""
    from PIL import Image

    data = json.loads(Path(annotations).read_text())
    people = {}
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) > 0 and not ann.get("iscrowd", 0):
            people.setdefault(ann["image_id"], []).append(ann)
    scores = []
    for image in sorted(data["images"], key=lambda i: i["file_name"]):
        frame = np.asarray(Image.open(Path(images) / image["file_name"]).convert("RGB"))
        found, truth = estimator(frame), people.get(image["id"], [])
        if len(found) == 0 or not truth:
            scores.append(ImageScore(image["file_name"], 0.0, 0, 0, 0.0))
            continue
        k = int(np.argmax(box_area(found.boxes)))
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in truth)])
        overlap = iou(found.boxes[k], boxes)
        best = int(np.argmax(overlap))
        if overlap[best] < MIN_IOU:
            scores.append(ImageScore(image["file_name"], float(overlap[best]), 0, 0, 0.0))
            continue
        ann = truth[best]
        gt = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        visible = gt[:, 2] > 0
        dist = np.linalg.norm(found.xy[k] - gt[:, :2], axis=1)
        correct = visible & (found.conf[k] > 0) & (dist <= 0.1 * ann["bbox"][3])
        scores.append(ImageScore(image["file_name"], float(overlap[best]), int(visible.sum()), int(correct.sum()),
                                 oks(found.xy[k], gt[:, :2], visible, ann["area"])))
    return Score(scores)
