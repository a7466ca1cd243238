import numpy as np
import pytest
import smplx
import torch

from mocap_ros.core.skeleton import PARENTS, REST_JOINTS_APPROX
from mocap_ros.estimation.body_model import skeleton_body, smpl_body
from mocap_ros.geometry.torch_rotations import (
    axis_angle_to_rotmat,
    forward_kinematics,
    global_to_local,
)
from mocap_ros.io.smpl_file import smpl_data_struct


def random_pose(batch, scale=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return axis_angle_to_rotmat(torch.randn(batch, 24, 3, generator=g) * scale)


@pytest.fixture(scope="module")
def smplx_reference(synthetic_assets):
    path = synthetic_assets.smpl_model
    return smplx.SMPL(model_path=str(path), data_struct=smpl_data_struct(path), batch_size=3)


def test_fk_joints_equal_smplx_on_the_generated_smpl_file(synthetic_assets, smplx_reference):
    body = smpl_body(synthetic_assets.smpl_model)
    R = random_pose(3)
    betas = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    ours = body(R, betas)
    ref = smplx_reference(betas=betas, global_orient=R[:, :1], body_pose=R[:, 1:],
                          pose2rot=False)
    assert torch.allclose(ours.joints, ref.joints[:, :24], atol=1e-5)
    assert ours.vertices is None  # off by default: speed


def test_vertices_through_smplx_when_asked(synthetic_assets, smplx_reference):
    body = smpl_body(synthetic_assets.smpl_model, with_mesh=True)
    R, betas = random_pose(2, seed=3), torch.zeros(2, 10)
    out = body(R, betas, return_vertices=True)
    ref = smplx.SMPL(model_path=str(synthetic_assets.smpl_model),
                     data_struct=smpl_data_struct(synthetic_assets.smpl_model), batch_size=2)(
        betas=betas, global_orient=R[:, :1], body_pose=R[:, 1:], pose2rot=False)
    assert out.vertices.shape == (2, 6890, 3)
    assert torch.allclose(out.vertices, ref.vertices, atol=1e-5)


def test_local_and_global_rotations_are_consistent(synthetic_assets):
    body = smpl_body(synthetic_assets.smpl_model)
    R = random_pose(2, seed=4)
    out = body(R, torch.zeros(2, 10))
    assert torch.allclose(global_to_local(out.global_rotmat, PARENTS), R, atol=1e-5)
    # a bone's direction is its rest offset turned by the parent's global rotation
    rest = body.rest_joints(torch.zeros(2, 10))
    j, p = 18, 16  # left elbow under left shoulder
    expect = (out.global_rotmat[:, p] @ (rest[:, j] - rest[:, p]).unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(out.joints[:, j] - out.joints[:, p], expect, atol=1e-5)


def test_identity_pose_gives_rest_joints():
    body = skeleton_body()
    out = body(torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 10))
    assert np.allclose(out.joints[0].numpy(), REST_JOINTS_APPROX, atol=1e-6)
    assert not body.has_mesh
    with pytest.raises(ValueError, match="no mesh"):
        body(torch.eye(3).expand(1, 24, 3, 3), torch.zeros(1, 10), return_vertices=True)


def test_skeleton_bone_lengths_are_adult_sized():
    lengths = np.linalg.norm(np.diff(REST_JOINTS_APPROX[[16, 18, 20]], axis=0), axis=1)
    assert 0.25 < lengths[0] < 0.40 and 0.20 < lengths[1] < 0.32  # upper arm, forearm
    span = REST_JOINTS_APPROX[22, 0] - REST_JOINTS_APPROX[23, 0]
    assert 1.5 < span < 1.9  # arm span ~ stature


def test_fk_matches_a_hand_computed_chain():
    rest = torch.tensor(REST_JOINTS_APPROX)[None]
    R = torch.eye(3).repeat(1, 24, 1, 1)
    R[0, 16] = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, -np.pi / 2]))  # left arm down
    _, joints = forward_kinematics(R, rest)
    upper = rest[0, 18] - rest[0, 16]
    assert torch.allclose(joints[0, 18] - joints[0, 16],
                          torch.tensor([0.0, -float(upper[0]), 0.0]), atol=1e-6)
