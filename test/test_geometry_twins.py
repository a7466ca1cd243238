"""One implementation of each piece of math, in numpy and in torch: the twins agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mocap_ros.core.skeleton import PARENTS, REST_JOINTS_APPROX
from mocap_ros.estimation.hmr.preprocess import window_grid
from mocap_ros.geometry.crop import crop_box_from_bbox, resize_source_coords
from mocap_ros.geometry.kinematics import forward_kinematics_np
from mocap_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_quat, quat_to_matrix
from mocap_ros.geometry.torch_rotations import (
    axis_angle_to_rotmat,
    forward_kinematics,
    rotmat_to_quat,
)


def _random_rotations(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0.0, np.pi, n)
    angle[:4] = (0.0, np.pi, np.pi - 1e-7, 1e-9)  # the branches of Shepperd's method
    return axis * angle[:, None]


def test_axis_angle_numpy_equals_torch():
    aa = _random_rotations(500)
    angle = np.linalg.norm(aa, axis=-1)
    axis = aa / np.maximum(angle, 1e-12)[:, None]
    R_np = axis_angle_to_matrix(axis, angle)
    R_t = axis_angle_to_rotmat(torch.from_numpy(aa)).double().numpy()
    np.testing.assert_allclose(R_np, R_t, atol=2e-6)
    eye = np.broadcast_to(np.eye(3), R_np.shape)
    np.testing.assert_allclose(R_np @ np.swapaxes(R_np, -1, -2), eye, atol=1e-12)


def test_matrix_to_quat_numpy_equals_torch_and_inverts():
    aa = _random_rotations(500, seed=1)
    angle = np.linalg.norm(aa, axis=-1)
    R = axis_angle_to_matrix(aa / np.maximum(angle, 1e-12)[:, None], angle)
    q_np = matrix_to_quat(R)
    q_t = rotmat_to_quat(torch.from_numpy(R).float()).double().numpy()
    # same sign convention (w >= 0); at w ~ 0 (angle pi) q and -q are the same rotation
    close = np.minimum(np.abs(q_np - q_t).max(-1), np.abs(q_np + q_t).max(-1))
    assert close.max() < 1e-5
    np.testing.assert_allclose(quat_to_matrix(q_np), R, atol=1e-9)
    assert matrix_to_quat(R[7]).shape == (4,)  # one matrix in, one quaternion out
    with pytest.raises(ValueError):
        matrix_to_quat(np.eye(4))


def test_forward_kinematics_numpy_equals_torch():
    rng = np.random.default_rng(2)
    aa = rng.normal(0.0, 0.6, (8, 24, 3))
    angle = np.linalg.norm(aa, axis=-1)
    L = axis_angle_to_matrix(aa / angle[..., None], angle)
    rest = np.broadcast_to(REST_JOINTS_APPROX, (8, 24, 3)).astype(np.float64)
    G_np, J_np = forward_kinematics_np(L, rest, PARENTS)
    G_t, J_t = forward_kinematics(torch.from_numpy(L), torch.from_numpy(rest.copy()), PARENTS)
    np.testing.assert_allclose(G_np, G_t.numpy(), atol=1e-12)
    np.testing.assert_allclose(J_np, J_t.numpy(), atol=1e-12)
    # identity rotations leave the rest pose where it is
    _, J0 = forward_kinematics_np(np.broadcast_to(np.eye(3), (24, 3, 3)), REST_JOINTS_APPROX)
    np.testing.assert_allclose(J0, REST_JOINTS_APPROX, atol=1e-12)


@pytest.mark.parametrize("bbox", [(230, 100, 250, 250), (-40.5, 12.25, 150.75, 260.125)])
def test_window_grid_reads_the_numpy_sample_positions(bbox):
    box = crop_box_from_bbox(bbox)
    x0, y0, x1, y1 = box.window
    H, W = 480, 640
    grid = window_grid(torch.tensor([box.window], dtype=torch.float64), H, W).double().numpy()
    u = (grid[0, 0, :, 0] + 1.0) * (W - 1) / 2.0  # back to pixel-centre coordinates
    v = (grid[0, :, 0, 1] + 1.0) * (H - 1) / 2.0
    np.testing.assert_allclose(u, resize_source_coords(x0, x1 - x0, 224), atol=1e-4)
    np.testing.assert_allclose(v, resize_source_coords(y0, y1 - y0, 224), atol=1e-4)
