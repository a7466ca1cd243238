"""Per-joint confidence in [0, 1] (BodyPose.joint_confidence), for both backends.

Teleop gates on the joints a robot map follows (``teleop.angles.ANGLE_JOINTS``), so a joint
must score low exactly when its estimate cannot be trusted, whatever the rest of the body
does: an operator at a desk has no legs in view, and those must not hold the arms.

* landmarks: MediaPipe's per-landmark visibility, times "the landmark lies in the image" (a
  landmark MediaPipe places outside the frame is invented, however visible it claims to be);
  a joint takes the lowest score of the landmarks that place it. Joints no landmark places
  directly (pelvis, spine, neck, collars, head) take the landmarks that bound them.
* hmr: HMR has no learned per-joint confidence. A joint is trusted while its 2D keypoint lies
  inside both the image and the crop window the network saw, fading to 0 over ``ramp`` of the
  window at their edges (a joint outside the crop was extrapolated from the body's prior).
"""

from __future__ import annotations

import numpy as np

# SMPL joint -> the BlazePose landmarks that place it (indices into the 33 landmarks).
LANDMARKS_OF_JOINT: dict[int, tuple[int, ...]] = {
    0: (23, 24), 1: (23,), 2: (24,), 3: (23, 24, 11, 12), 4: (25,), 5: (26,),
    6: (23, 24, 11, 12), 7: (27,), 8: (28,), 9: (11, 12, 23, 24), 10: (31,), 11: (32,),
    12: (11, 12), 13: (11,), 14: (12,), 15: (0, 7, 8), 16: (11,), 17: (12,), 18: (13,),
    19: (14,), 20: (15,), 21: (16,), 22: (17, 19), 23: (18, 20),
}

# The same as a (24, 4) index array, each row padded by repeating its first landmark (the
# min is unchanged), so a frame costs one gather and one reduction (speed, issue 13).
_JOINT_LANDMARK_INDEX = np.array([(*lms, *(lms[0],) * (4 - len(lms)))
                                  for _, lms in sorted(LANDMARKS_OF_JOINT.items())])


def landmark_joint_confidence(visibility: np.ndarray, image_xy: np.ndarray,
                              image_shape: tuple[int, ...]) -> np.ndarray:
    """(24,) float32 from BlazePose's (33,) visibility and (33, 2) pixel positions."""
    vis = np.asarray(visibility, np.float64)
    # NaN -> 0, +-inf -> 1 / 0 (as nan_to_num + clip did), without nan_to_num's overhead
    vis = np.clip(np.where(np.isnan(vis), 0.0, vis), 0.0, 1.0)
    xy = np.asarray(image_xy, np.float64)
    h, w = image_shape[:2]
    x, y = xy[:, 0], xy[:, 1]
    # (NaN compares False, so a non-finite landmark is outside; +-inf fails a bound)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    per_landmark = vis * inside
    return per_landmark[_JOINT_LANDMARK_INDEX].min(-1).astype(np.float32)


def keypoint_joint_confidence(keypoints_2d: np.ndarray, window: tuple[int, int, int, int],
                              image_shape: tuple[int, ...], ramp: float = 0.05) -> np.ndarray:
    """(24,) float32 for HMR: 1 inside the image and the crop window ``(x0, y0, x1, y1)``,
    falling linearly to 0 over ``ramp`` times the window's height at their edges."""
    kp = np.asarray(keypoints_2d, np.float64)
    h, w = image_shape[:2]
    x0, y0, x1, y1 = (float(v) for v in window)
    lo = np.array([max(x0, 0.0), max(y0, 0.0)])
    hi = np.array([min(x1, float(w)), min(y1, float(h))])
    margin = np.minimum(kp - lo, hi - kp).min(-1)  # px to the nearest edge (<0: outside)
    scale = max(ramp * (y1 - y0), 1e-6)
    conf = np.clip(margin / scale, 0.0, 1.0)
    return np.where(np.isfinite(conf), conf, 0.0).astype(np.float32)
