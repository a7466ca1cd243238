"""Forward kinematics on a joint tree in numpy (any leading dimensions).

Joint j sits at its parent's position + R_parent_global @ (rest_j - rest_parent); the root
stays at its rest position (SMPL keeps the root joint fixed; the global orientation turns
the body about it). The torch version used on the device is
:func:`mocap_ros.geometry.torch_rotations.forward_kinematics`; the tests hold the two equal.
"""

from __future__ import annotations

import numpy as np

from mocap_ros.core.skeleton import PARENTS


def forward_kinematics_np(local_rotmats: np.ndarray, rest_joints: np.ndarray,
                          parents: tuple[int, ...] = PARENTS) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of :func:`mocap_ros.geometry.torch_rotations.forward_kinematics`
    (any leading dims):
    (global rotations (..., 24, 3, 3), joints (..., 24, 3)), root at rest_joints[0]."""
    L = np.asarray(local_rotmats, np.float64)
    rest = np.asarray(rest_joints, np.float64)
    G = np.empty_like(L)
    J = np.empty(L.shape[:-1])
    G[..., 0, :, :] = L[..., 0, :, :]
    J[..., 0, :] = rest[..., 0, :]
    for j in range(1, L.shape[-3]):
        p = parents[j]
        G[..., j, :, :] = G[..., p, :, :] @ L[..., j, :, :]
        bone = rest[..., j, :] - rest[..., p, :]
        J[..., j, :] = J[..., p, :] + np.einsum("...ij,...j->...i", G[..., p, :, :], bone)
    return G, J
