"""Body models: SMPL 24-joint kinematics from an SMPL/SMPL-X file, or an approximate skeleton.

Joints come from our own forward kinematics on the regressed rest joints: for joints this is
exactly what smplx's LBS computes (pose blend shapes only move vertices), and it skips the
6890-vertex skinning that a teleoperator never sees. Vertices, when asked for, go through
smplx itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mocap_ros.core.skeleton import NUM_JOINTS, REST_JOINTS_APPROX
from mocap_ros.geometry.torch_rotations import forward_kinematics

# SMPL-X has 55 joints: 0-21 are SMPL's body joints; SMPL's hand joints (22, 23) sit near the
# knuckles, closest to SMPL-X's middle-finger bases (left 28, right 43).
SMPLX_FOR_SMPL_JOINTS = (*range(22), 28, 43)


@dataclass
class BodyOutput:
    joints: torch.Tensor  # (B, 24, 3) in the body model's frame, metres
    global_rotmat: torch.Tensor  # (B, 24, 3, 3)
    vertices: torch.Tensor | None  # (B, V, 3) or None


class KinematicBody(torch.nn.Module):
    """Shape-dependent rest joints J(betas) = J_template + J_shapedirs @ betas, then FK."""

    def __init__(self, j_template: np.ndarray, j_shapedirs: np.ndarray, name: str,
                 smplx_layer: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.name = name
        self.register_buffer("j_template", torch.as_tensor(j_template, dtype=torch.float32))
        self.register_buffer("j_shapedirs", torch.as_tensor(j_shapedirs, dtype=torch.float32))
        self.smplx_layer = smplx_layer

    @property
    def num_betas(self) -> int:
        return int(self.j_shapedirs.shape[-1])

    @property
    def has_mesh(self) -> bool:
        return self.smplx_layer is not None

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        b = betas.float()[:, : self.num_betas]
        return self.j_template + torch.einsum("jck,bk->bjc", self.j_shapedirs[..., : b.shape[1]], b)

    def forward(self, local_rotmat: torch.Tensor, betas: torch.Tensor,
                return_vertices: bool = False) -> BodyOutput:
        with torch.autocast(device_type=local_rotmat.device.type, enabled=False):
            local_rotmat = local_rotmat.float()
            glob, joints = forward_kinematics(local_rotmat, self.rest_joints(betas))
            verts = None
            if return_vertices:
                if self.smplx_layer is None:
                    raise ValueError(f"body model {self.name!r} has no mesh; use smpl or smplx")
                out = self.smplx_layer(
                    betas=betas.float()[:, : self.num_betas],
                    global_orient=local_rotmat[:, :1],
                    body_pose=local_rotmat[:, 1:22 if "smplx" in self.name else NUM_JOINTS],
                    pose2rot=False,
                )
                verts = out.vertices
        return BodyOutput(joints, glob, verts)


def skeleton_body() -> KinematicBody:
    """Approximate SMPL tree with anthropometric bone lengths (see skeleton.py); no mesh."""
    return KinematicBody(REST_JOINTS_APPROX, np.zeros((NUM_JOINTS, 3, 10), np.float32), "skeleton")


def smpl_body(model_path: str | Path, num_betas: int = 10, with_mesh: bool = False,
              smplx_model: bool = False) -> KinematicBody:
    """SMPL (or SMPL-X) from the original .pkl (no chumpy needed) or .npz file."""
    from mocap_ros.io.smpl_file import load_smpl_file, smpl_data_struct

    data = load_smpl_file(model_path)
    v_template = np.asarray(data["v_template"], np.float64)
    shapedirs = np.asarray(data["shapedirs"], np.float64)[:, :, :num_betas]
    j_reg = np.asarray(data["J_regressor"], np.float64)
    j_template = j_reg @ v_template
    j_shapedirs = np.einsum("jv,vck->jck", j_reg, shapedirs)
    if smplx_model:
        j_template = j_template[list(SMPLX_FOR_SMPL_JOINTS)]
        j_shapedirs = j_shapedirs[list(SMPLX_FOR_SMPL_JOINTS)]
    elif j_template.shape[0] != NUM_JOINTS:
        raise ValueError(f"{model_path}: J_regressor has {j_template.shape[0]} joints, SMPL has "
                         f"{NUM_JOINTS}; is this an SMPL-X file? (set body_model: smplx)")
    layer = None
    if with_mesh:
        from mocap_ros.io.smpl_file import build_smplx_layer

        common = {"num_betas": num_betas, "create_global_orient": False,
                  "create_body_pose": False, "create_betas": False, "create_transl": False}
        if smplx_model:
            # smplx.SMPLX takes no data_struct; this goes through our safe loader instead.
            layer = build_smplx_layer(model_path, use_pca=False, **common)
        else:
            import smplx

            layer = smplx.SMPL(model_path=str(model_path),
                               data_struct=smpl_data_struct(model_path), **common)
    name = "smplx" if smplx_model else "smpl"
    return KinematicBody(j_template.astype(np.float32), j_shapedirs.astype(np.float32), name,
                         layer)
