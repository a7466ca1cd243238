"""The console's 3D view (viser): the robot posed from joint_states, the commanded pose as a
ghost, and the operator's skeleton. Geoms are drawn from the same MuJoCo model teleop uses
(mocap_ros.robots.model), posed by MuJoCo's own forward kinematics."""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np
import trimesh
import viser

from mocap_ros.core.skeleton import PARENTS
from mocap_ros.robots.model import RobotModel

ROBOT_COLOR = (230, 120, 30)
GHOST_COLOR = (60, 170, 255)
GHOST_OPACITY = 0.35
OPERATOR_COLOR = (40, 200, 60)
# Where the operator's skeleton stands in the robot's world (metres): in front of the robot,
# facing it, pelvis at hip height. Only the pose is the operator's, not the place.
OPERATOR_PELVIS = np.array([1.4, 0.0, 1.0])
# camera optical frame (x right, y down, z forward) -> a world seen from the robot looking
# at the operator (x forward, y left, z up): the camera stands where the robot is
OPTICAL_TO_WORLD = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def geom_mesh(m: mujoco.MjModel, g: int) -> trimesh.Trimesh | None:
    """One geom as a mesh in its own frame; None for planes and kinds not drawn."""
    kind = int(m.geom_type[g])
    size = m.geom_size[g]
    t = mujoco.mjtGeom
    if kind == t.mjGEOM_BOX:
        return trimesh.creation.box(extents=2.0 * size)
    if kind == t.mjGEOM_SPHERE:
        return trimesh.creation.icosphere(subdivisions=2, radius=float(size[0]))
    if kind == t.mjGEOM_CAPSULE:
        return trimesh.creation.capsule(height=2.0 * float(size[1]), radius=float(size[0]),
                                        count=[12, 12])
    if kind == t.mjGEOM_CYLINDER:
        return trimesh.creation.cylinder(radius=float(size[0]), height=2.0 * float(size[1]),
                                         sections=16)
    if kind == t.mjGEOM_ELLIPSOID:
        s = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        s.apply_scale(size)
        return s
    if kind == t.mjGEOM_MESH:
        mid = int(m.geom_dataid[g])
        va, vn = int(m.mesh_vertadr[mid]), int(m.mesh_vertnum[mid])
        fa, fn = int(m.mesh_faceadr[mid]), int(m.mesh_facenum[mid])
        return trimesh.Trimesh(m.mesh_vert[va:va + vn].copy(), m.mesh_face[fa:fa + fn].copy(),
                               process=False)
    return None


class _Posed:
    """One set of the robot's geoms in the view, posed by forward kinematics."""

    def __init__(self, server: viser.ViserServer, robot: RobotModel, name: str,
                 color: tuple[int, int, int], opacity: float | None) -> None:
        self.robot = robot
        self.data = mujoco.MjData(robot.model)
        self.data.qpos[:] = robot.home
        self._index: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self.handles: list[tuple[int, viser.MeshHandle]] = []
        m = robot.model
        for g in range(m.ngeom):
            mesh = geom_mesh(m, g)
            if mesh is None:
                continue
            h = server.scene.add_mesh_simple(
                f"/{name}/geom{g}", np.asarray(mesh.vertices, np.float32),
                np.asarray(mesh.faces, np.uint32), color=color, opacity=opacity,
                cast_shadow=False, receive_shadow=False)
            self.handles.append((g, h))
        self.visible = True

    def pose(self, names: Sequence[str], positions: Sequence[float]) -> None:
        key = tuple(names)
        if key not in self._index:
            known = [(i, self.robot.qpos_indices([n])[0]) for i, n in enumerate(names)
                     if mujoco.mj_name2id(self.robot.model, mujoco.mjtObj.mjOBJ_JOINT, n) >= 0]
            self._index[key] = (np.array([i for i, _ in known], int),
                                np.array([q for _, q in known], int))
        src, dst = self._index[key]
        q = np.asarray(positions, np.float64)
        if src.size == 0 or q.size < len(names) or not np.all(np.isfinite(q[src])):
            return
        self.data.qpos[dst] = q[src]
        mujoco.mj_kinematics(self.robot.model, self.data)
        quat = np.empty(4)
        for g, h in self.handles:
            mujoco.mju_mat2Quat(quat, self.data.geom_xmat[g])
            h.position = self.data.geom_xpos[g].copy()
            h.wxyz = quat.copy()

    def show(self, visible: bool) -> None:
        if visible != self.visible:
            for _, h in self.handles:
                h.visible = visible
            self.visible = visible


class ConsoleScene:
    def __init__(self, server: viser.ViserServer, robot: RobotModel | None) -> None:
        self.server = server
        server.scene.set_up_direction("+z")
        server.scene.add_grid("/ground", width=3.0, height=2.0, cell_size=0.25,
                              position=(0.7, 0.0, 0.0))
        # from the side: the robot on the left, the operator facing it on the right
        server.initial_camera.position = (0.9, -2.3, 1.3)
        server.initial_camera.look_at = (0.7, 0.0, 0.6)
        self.measured = _Posed(server, robot, "robot", ROBOT_COLOR, None) if robot else None
        self.command = _Posed(server, robot, "command", GHOST_COLOR, GHOST_OPACITY) \
            if robot else None
        if self.command is not None:
            self.command.show(False)
        self._operator_shown = False

    def set_measured(self, names: Sequence[str], positions: Sequence[float]) -> None:
        if self.measured is not None:
            with self.server.atomic():
                self.measured.pose(names, positions)

    def set_command(self, names: Sequence[str], positions: Sequence[float] | None) -> None:
        if self.command is None:
            return
        with self.server.atomic():
            if positions is None or len(positions) == 0:
                self.command.show(False)
                return
            self.command.pose(names, positions)
            self.command.show(True)

    def set_operator(self, joints_optical: np.ndarray | None) -> None:
        """The operator's 3D joints (camera optical frame, SMPL order); None hides them."""
        if joints_optical is None or joints_optical.shape != (len(PARENTS), 3) \
                or not np.all(np.isfinite(joints_optical)):
            if self._operator_shown:
                self.server.scene.remove_by_name("/operator")
                self._operator_shown = False
            return
        world = (joints_optical - joints_optical[0]) @ OPTICAL_TO_WORLD.T + OPERATOR_PELVIS
        bones = np.array([[world[p], world[j]] for j, p in enumerate(PARENTS) if p >= 0],
                         np.float32)
        self.server.scene.add_line_segments("/operator", bones, colors=OPERATOR_COLOR,
                                            line_width=4.0)
        self._operator_shown = True
