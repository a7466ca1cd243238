"""The SMPL 24-joint kinematic tree: names, parents and an approximate rest skeleton.

SMPL's joint order is fixed by the model files; everything in mocap_ros (messages, TF,
teleop) uses it. Directions follow SMPL's own rest frame: +y up, +x to the body's left,
+z forward (out of the chest).
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)

# Parent of each joint; -1 for the root.
PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Approximate rest-pose joint positions in metres relative to the pelvis, SMPL rest frame,
# for a ~1.75 m adult. Segment lengths follow the usual anthropometric ratios of stature
# (Drillis & Contini 1966 / Winter, "Biomechanics and Motor Control of Human Movement",
# Table 4.1): thigh 0.245 H, shank 0.246 H, upper arm 0.186 H, forearm 0.146 H,
# hand 0.108 H, shoulder width 0.259 H, hip width 0.191 H. Approximate by design: the
# `skeleton` body model uses it when no SMPL file exists and produces no mesh.
_H = 1.75
REST_JOINTS_APPROX = np.array(
    [
        [0.0, 0.0, 0.0],  # pelvis
        [0.5 * 0.191 * _H * 0.6, -0.09, 0.0],  # left_hip
        [-0.5 * 0.191 * _H * 0.6, -0.09, 0.0],  # right_hip
        [0.0, 0.11, -0.02],  # spine1
        [0.5 * 0.191 * _H * 0.6, -0.09 - 0.245 * _H, 0.0],  # left_knee
        [-0.5 * 0.191 * _H * 0.6, -0.09 - 0.245 * _H, 0.0],  # right_knee
        [0.0, 0.25, 0.0],  # spine2
        [0.5 * 0.191 * _H * 0.6, -0.09 - 0.491 * _H, -0.04],  # left_ankle
        [-0.5 * 0.191 * _H * 0.6, -0.09 - 0.491 * _H, -0.04],  # right_ankle
        [0.0, 0.30, 0.02],  # spine3
        [0.5 * 0.191 * _H * 0.6, -0.09 - 0.491 * _H - 0.05, 0.10],  # left_foot
        [-0.5 * 0.191 * _H * 0.6, -0.09 - 0.491 * _H - 0.05, 0.10],  # right_foot
        [0.0, 0.50, 0.0],  # neck
        [0.08, 0.43, 0.0],  # left_collar
        [-0.08, 0.43, 0.0],  # right_collar
        [0.0, 0.58, 0.05],  # head
        [0.5 * 0.259 * _H, 0.45, 0.0],  # left_shoulder
        [-0.5 * 0.259 * _H, 0.45, 0.0],  # right_shoulder
        [0.5 * 0.259 * _H + 0.186 * _H, 0.45, 0.0],  # left_elbow
        [-0.5 * 0.259 * _H - 0.186 * _H, 0.45, 0.0],  # right_elbow
        [0.5 * 0.259 * _H + 0.332 * _H, 0.45, 0.0],  # left_wrist
        [-0.5 * 0.259 * _H - 0.332 * _H, 0.45, 0.0],  # right_wrist
        [0.5 * 0.259 * _H + 0.332 * _H + 0.05 * _H, 0.45, 0.0],  # left_hand
        [-0.5 * 0.259 * _H - 0.332 * _H - 0.05 * _H, 0.45, 0.0],  # right_hand
    ],
    dtype=np.float32,
)


def bone_offsets(rest_joints: np.ndarray) -> np.ndarray:
    """Offsets of every joint from its parent in the rest pose (root: its own position)."""
    rest = np.asarray(rest_joints, dtype=np.float64)
    offsets = rest.copy()
    for j, p in enumerate(PARENTS):
        if p >= 0:
            offsets[..., j, :] = rest[..., j, :] - rest[..., p, :]
    return offsets

# The 21-keypoint hand (MediaPipe Hands, FreiHAND, OneHand10K): 0 wrist, then per finger 4
# points from the palm out. Here (not in estimation/hands) so io/ and ros/ can name TF frames
# and draw bones without importing the estimator.
HAND_KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
# Parent keypoint of each (-1 for the wrist): every finger's first point hangs off the wrist.
HAND_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15,
                                 0, 17, 18, 19)
