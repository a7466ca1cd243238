"""The shared real photo pack (../shared/real_images: people with 2D keypoint annotations,
see its README): where it is, and its annotated people in one canonical joint order. Never
copied into the repository; tests that need it skip with a clear reason when it is absent."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mocap_ros.estimation.operator import PersonCandidate, candidate_from_keypoints

# canonical order: left/right shoulder, elbow, wrist, hip, knee, ankle (left first)
CANONICAL = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
             "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
             "right_ankle")
# the SMPL joints of the canonical ones
SMPL_OF_CANONICAL = (16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8)
SKIP_REASON = ("real photo pack absent: /work/shared/real_images (or ../shared/real_images, "
               "or $MOCAP_REAL_IMAGES) with index.json is needed")


def pack_root() -> Path | None:
    for p in (os.environ.get("MOCAP_REAL_IMAGES"),
              Path(__file__).resolve().parents[1] / "../shared/real_images",
              "/work/shared/real_images"):
        if p and (Path(p) / "index.json").is_file():
            return Path(p).resolve()
    return None


# canonical joint k <- row of each annotation format (README of the pack: keypoint formats)
FORMAT_INDEX = {
    "AIC-14": (3, 0, 4, 1, 5, 2, 9, 6, 10, 7, 11, 8),
    "COCO-17": (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
    "CrowdPose-14": tuple(range(12)),
    "MPII-16": (13, 12, 14, 11, 15, 10, 3, 2, 4, 1, 5, 0),
}
MIN_JOINTS = 8  # canonical joints labelled, both shoulders among them


@dataclass
class RealPerson:
    name: str  # "<image stem>#<k>"
    image: np.ndarray  # the whole photo, RGB
    box: np.ndarray  # annotated (x, y, w, h)
    joints: np.ndarray  # (12, 2) canonical, NaN = unlabelled
    image_key: str  # photo it comes from

    def candidate(self, jitter: float = 0.0, rng: np.random.Generator | None = None
                  ) -> PersonCandidate:
        j = self.joints.copy()
        if jitter and rng is not None:
            j += rng.normal(0.0, jitter * torso_length(j), j.shape)
        return PersonCandidate(box=self.box, joints_2d=j, image=self.image)


def torso_length(j: np.ndarray) -> float:
    vals = [np.linalg.norm(j[a] - j[b]) for a, b in ((0, 6), (1, 7))
            if np.isfinite(j[a]).all() and np.isfinite(j[b]).all()]
    if vals:
        return float(max(vals))
    return float(np.linalg.norm(j[0] - j[1]) * 1.5)


def load_people(root: Path, min_visibility: float = 1) -> list[RealPerson]:
    people: list[RealPerson] = []
    images: dict[str, np.ndarray] = {}

    def image(rel: str) -> np.ndarray:
        if rel not in images:
            bgr = cv2.imread(str(root / rel))
            assert bgr is not None, f"cannot read {root / rel}"
            images[rel] = np.ascontiguousarray(bgr[:, :, ::-1])
        return images[rel]

    for folder, ann, fmt in (("body/aic", "test_aic.json", "AIC-14"),
                             ("body/ochuman", "test_ochuman.json", "COCO-17"),
                             ("multi/crowdpose", "test_crowdpose.json", "CrowdPose-14")):
        data = json.loads((root / folder / ann).read_text())
        files = {im["id"]: im["file_name"] for im in data["images"]}
        counter: dict[str, int] = {}
        for a in data["annotations"]:
            kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
            rel = f"{folder}/{files[a['image_id']]}"
            k = counter.get(rel, 0)
            counter[rel] = k + 1
            cand = candidate_from_keypoints(a["bbox"], kp[:, :2], FORMAT_INDEX[fmt],
                                            visibility=kp[:, 2], min_visibility=min_visibility)
            people.append(RealPerson(f"{Path(rel).stem}#{k}", image(rel), cand.box,
                                     cand.joints_2d, rel))
    for rec in json.loads((root / "body/mpii/test_mpii.json").read_text()):
        xy = np.asarray(rec["joints"], np.float64)
        vis = np.asarray(rec["joints_vis"], np.float64)
        lab = xy[vis > 0]
        (x0, y0), (x1, y1) = lab.min(0), lab.max(0)
        m = 0.15 * max(x1 - x0, y1 - y0)
        rel = f"body/mpii/{rec['image']}"
        im = image(rel)
        box = [max(0, x0 - m), max(0, y0 - m), min(im.shape[1], x1 + m) - max(0, x0 - m),
               min(im.shape[0], y1 + m) - max(0, y0 - m)]
        cand = candidate_from_keypoints(box, xy, FORMAT_INDEX["MPII-16"], visibility=vis,
                                        min_visibility=min_visibility)
        people.append(RealPerson(f"{Path(rel).stem}#0", im, cand.box, cand.joints_2d, rel))
    usable = [p for p in people if np.isfinite(p.joints).all(-1).sum() >= MIN_JOINTS
              and np.isfinite(p.joints[:2]).all()]
    return usable


