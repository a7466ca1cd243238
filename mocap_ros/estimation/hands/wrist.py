"""The body's wrists from the observed hands: the SMPL wrist/hand rotation becomes the palm's.

Both backends estimate the wrist's rotation poorly: BlazePose sees only two knuckle
landmarks (twist from index - pinky, flexion and deviation from their midpoint), HMR regresses
it from a 224 px body crop. When a hand is valid its palm frame
(:func:`~mocap_ros.estimation.hands.geometry.palm_frame`, built to equal the SMPL hand
joint's rest axes: x along the hand, signed per side like SMPL's arm, y out of the back of
the hand, z to the thumb) IS the hand's global rotation in the camera frame, so
:func:`apply_hand_orientation` sets, per valid side:

* global rotation of the wrist joint (20/21) and of the hand joint (22/23) = the palm frame
  (the landmarks IK already gives the hand joint the wrist's rotation; SMPL's hand joint has
  no child in the 24-joint tree);
* local rotation of the wrist = G_elbow^T G_palm (flexion, deviation and twist relative to
  the forearm, now observed), of the hand = identity;
* the hand joint's position: the wrist -> hand bone turned with the wrist
  (``p_hand = p_wrist + G_new G_old^T (p_hand - p_wrist)``), so forward kinematics of the
  local rotations still reproduces ``joints_cam``; its pixel keypoint moves by the change of
  its pinhole projection.

Everything else (the arm, the elbow, the other joints, HMR's mesh vertices) is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mocap_ros.geometry.camera import project
from mocap_ros.geometry.rotations import matrix_to_quat, quat_to_matrix

if TYPE_CHECKING:
    from mocap_ros.core.result import BodyPoseResult, HandResult
    from mocap_ros.geometry.camera import Intrinsics

# SMPL joints per side: (elbow, wrist, hand)
SMPL_HAND_CHAIN = {"left": (18, 20, 22), "right": (19, 21, 23)}


def apply_hand_orientation(result: BodyPoseResult, hands: dict[str, HandResult],
                           K: Intrinsics) -> list[str]:
    """Put each valid hand's palm orientation into ``result``'s wrist and hand joints (module
    doc), in place. Returns the sides that were applied (invalid/non-finite hands: none)."""
    applied = []
    for side, (elb, wri, hnd) in SMPL_HAND_CHAIN.items():
        hand = hands.get(side)
        if hand is None or not hand.valid:
            continue
        q = np.asarray(hand.orientation, np.float64)
        if q.shape != (4,) or not np.isfinite(q).all() or np.linalg.norm(q) < 0.5:
            continue
        R = quat_to_matrix(q / np.linalg.norm(q))
        G = quat_to_matrix(np.asarray(result.global_rotations, np.float64)[[elb, wri]])
        G_elb, G_old = G[0], G[1]
        joints = np.asarray(result.joints_cam, np.float64)
        bone = R @ G_old.T @ (joints[hnd] - joints[wri])
        new_hand = joints[wri] + bone
        local_wri = G_elb.T @ R
        quats = matrix_to_quat(np.stack((R, local_wri)))
        ident = np.array([0.0, 0.0, 0.0, 1.0])
        shift = project(new_hand, K) - project(joints[hnd], K)
        if not (np.isfinite(quats).all() and np.isfinite(new_hand).all()
                and np.isfinite(shift).all() and new_hand[2] > 0):
            continue
        f32 = np.float32
        result.global_rotations[wri] = quats[0].astype(f32)
        result.global_rotations[hnd] = quats[0].astype(f32)
        result.local_rotations[wri] = quats[1].astype(f32)
        result.local_rotations[hnd] = ident.astype(f32)
        result.joints_cam[hnd] = new_hand.astype(f32)
        result.keypoints_2d[hnd] = (np.asarray(result.keypoints_2d[hnd], np.float64)
                                    + shift).astype(f32)
        applied.append(side)
    return applied

