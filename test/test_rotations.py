import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mocap_ros.core.skeleton import PARENTS
from mocap_ros.geometry.torch_rotations import (
    axis_angle_to_rotmat,
    global_to_local,
    local_to_global,
    quat_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_quat,
    rotmat_to_rot6d,
)


def test_rot6d_gives_orthonormal_right_handed_matrices():
    x = torch.randn(1000, 24, 6, generator=torch.Generator().manual_seed(0)) * 3
    R = rot6d_to_rotmat(x)
    eye = torch.eye(3).expand_as(R)
    assert (R @ R.transpose(-1, -2) - eye).abs().max() < 1e-5
    assert (torch.linalg.det(R) - 1).abs().max() < 1e-5


def test_rot6d_matches_spin_gram_schmidt_definition():
    # SPIN reads the 6 numbers row-major as 3x2: column 0 is (x0, x2, x4).
    x = torch.tensor([[1.0, 0.3, 0.0, 2.0, 0.0, 0.1]])
    R = rot6d_to_rotmat(x)[0]
    a1 = torch.tensor([1.0, 0.0, 0.0])
    a2 = torch.tensor([0.3, 2.0, 0.1])
    b1 = a1 / a1.norm()
    b2 = a2 - (b1 @ a2) * b1
    b2 = b2 / b2.norm()
    assert torch.allclose(R[:, 0], b1) and torch.allclose(R[:, 1], b2, atol=1e-6)
    assert torch.allclose(R[:, 2], torch.linalg.cross(b1, b2), atol=1e-6)


def test_rot6d_round_trip_and_fp16_input_stays_fp32():
    R = rot6d_to_rotmat(torch.randn(50, 6))
    assert torch.allclose(rot6d_to_rotmat(rotmat_to_rot6d(R)), R, atol=1e-6)
    tiny = (torch.randn(50, 6) * 1e-4).half()
    out = rot6d_to_rotmat(tiny)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-4, 4), min_size=3, max_size=3))
def test_quaternion_round_trip(aa):
    R = axis_angle_to_rotmat(torch.tensor(aa, dtype=torch.float32))
    q = rotmat_to_quat(R)
    assert abs(float(q.norm()) - 1) < 1e-5 and float(q[3]) >= 0
    assert torch.allclose(quat_to_rotmat(q), R, atol=1e-5)


def test_quaternion_convention_is_xyzw():
    R = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, np.pi / 2]))
    q = rotmat_to_quat(R).numpy()
    assert np.allclose(q, [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)


def test_local_global_are_inverse():
    local = rot6d_to_rotmat(torch.randn(4, 24, 6))
    glob = local_to_global(local, PARENTS)
    assert torch.allclose(global_to_local(glob, PARENTS), local, atol=1e-5)
    # the left wrist's global rotation is the product along its chain
    chain = [0, 3, 6, 9, 13, 16, 18, 20]
    R = torch.eye(3).expand(4, 3, 3)
    for j in chain:
        R = R @ local[:, j]
    assert torch.allclose(glob[:, 20], R, atol=1e-5)
