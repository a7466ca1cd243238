"""Rotation conversions used by the pipeline (torch, batched, float32 by design).

All functions keep float32 even under fp16 autocast: F.normalize's eps (1e-12) underflows
in fp16, which turns nearly-degenerate 6D vectors into NaNs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mocap_ros.core.skeleton import PARENTS


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """HMR/SPIN 6D representation (..., 6) -> rotation matrices (..., 3, 3).

    The 6 numbers of a joint are read as a 3x2 matrix (row-major, as SPIN's view(-1, 3, 2));
    its two columns are Gram-Schmidt orthonormalised into b1, b2 and b3 = b1 x b2 completes
    a right-handed frame. The result has [b1 b2 b3] as columns.
    """
    m = x.float().reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Inverse of rot6d_to_rotmat for orthonormal input: the first two columns, row-major."""
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def rotmat_to_quat(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as (x, y, z, w), w >= 0.

    Shepperd's method: pick the largest of (w, x, y, z) to divide by, so no branch divides
    by a number near zero.
    """
    R = R.float()
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    trace = m00 + m11 + m22
    cands = torch.stack(
        (1.0 + trace, 1.0 + m00 - m11 - m22, 1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22),
        dim=-1,
    )
    best = cands.argmax(dim=-1, keepdim=True)
    s = torch.sqrt(cands.gather(-1, best).clamp_min(1e-12)).squeeze(-1) * 2.0  # = 4 * |q_k|
    r21m12 = R[..., 2, 1] - R[..., 1, 2]
    r02m20 = R[..., 0, 2] - R[..., 2, 0]
    r10m01 = R[..., 1, 0] - R[..., 0, 1]
    r01p10 = R[..., 0, 1] + R[..., 1, 0]
    r02p20 = R[..., 0, 2] + R[..., 2, 0]
    r12p21 = R[..., 1, 2] + R[..., 2, 1]
    # rows: (x, y, z, w) for each choice of pivot
    q_w = torch.stack((r21m12, r02m20, r10m01, s * s / 4.0), dim=-1)
    q_x = torch.stack((s * s / 4.0, r01p10, r02p20, r21m12), dim=-1)
    q_y = torch.stack((r01p10, s * s / 4.0, r12p21, r02m20), dim=-1)
    q_z = torch.stack((r02p20, r12p21, s * s / 4.0, r10m01), dim=-1)
    allq = torch.stack((q_w, q_x, q_y, q_z), dim=-2) / s[..., None, None]
    q = allq.gather(-2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., 3:4] < 0, -q, q)


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Quaternions (..., 4) as (x, y, z, w) -> rotation matrices (..., 3, 3)."""
    q = F.normalize(q.float(), dim=-1)
    x, y, z, w = q.unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors (..., 3) -> rotation matrices (..., 3, 3) (Rodrigues)."""
    aa = aa.float()
    angle = aa.norm(dim=-1, keepdim=True)
    axis = aa / angle.clamp_min(1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=-1).reshape(*aa.shape[:-1], 3, 3)
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(K)
    return eye + s * K + (1 - c) * (K @ K)


def local_to_global(local: torch.Tensor, parents: tuple[int, ...]) -> torch.Tensor:
    """Parent-relative rotations (B, J, 3, 3) -> global rotations, walking the tree."""
    out = [local[:, 0]]
    for j in range(1, local.shape[1]):
        out.append(out[parents[j]] @ local[:, j])
    return torch.stack(out, dim=1)


def global_to_local(glob: torch.Tensor, parents: tuple[int, ...]) -> torch.Tensor:
    """Global rotations (B, J, 3, 3) -> parent-relative ones: R_local = R_parent^T R_global."""
    par = torch.tensor([max(p, 0) for p in parents], device=glob.device)
    rel = glob[:, par].transpose(-1, -2) @ glob
    return torch.cat((glob[:, :1], rel[:, 1:]), dim=1)


def forward_kinematics(local_rotmat: torch.Tensor, rest_joints: torch.Tensor,
                       parents: tuple[int, ...] = PARENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Local rotations (B, J, 3, 3) on rest joints (B, J, 3) -> (global rotmats, joints).

    Joint j is placed at parent position + R_parent_global @ (rest_j - rest_parent), the root
    at its rest position rotated by nothing (SMPL keeps the root joint fixed; the global
    orientation turns the body about it).
    """
    glob = [local_rotmat[:, 0]]
    pos = [rest_joints[:, 0]]
    for j in range(1, local_rotmat.shape[1]):
        p = parents[j]
        glob.append(glob[p] @ local_rotmat[:, j])
        offset = rest_joints[:, j] - rest_joints[:, p]
        pos.append(pos[p] + (glob[p] @ offset.unsqueeze(-1)).squeeze(-1))
    return torch.stack(glob, dim=1), torch.stack(pos, dim=1)
