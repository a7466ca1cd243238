"""Collision queries on a robot model: which geom pairs are (nearly) touching at q.

Checked pairs: every pair of collidable geoms (contype/conaffinity) except
* geoms of the same body, or of bodies welded together (no joint between them);
* adjacent links: one body is the parent of the other (also when the parent is welded to
  the world, e.g. a fixed robot base and link 1, which MuJoCo's own filter does not cover);
  geoms on the world body itself (floor, table) are checked against every moving link;
* body pairs listed in the model's ``<contact><exclude>`` (drive housings that overlap by
  construction) and in ``exclude_bodies``;
* static pairs: both geoms fixed to the world (floor vs. base).
`pair_groups` hands these pairs to mink's CollisionAvoidanceLimit (which itself also drops
world-body geoms against a link whose parent is welded to the world, e.g. floor vs. FR3
link 1: those stay covered by this checker's final guard).

Distances come from ``mj_geomDistance`` (signed: negative = penetration depth).

`safe_step` is the joint-mode guard: given the last commanded (safe) configuration and a
new command, return the furthest configuration along the straight joint-space step whose
whole path stays outside the margin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import mujoco
import numpy as np
from numpy.typing import ArrayLike

from mocap_ros.robots.model import RobotModel

# mj_geomDistance reports distmax for anything farther; large enough for any robot cell.
_FAR = 10.0


@dataclass(frozen=True)
class GeomPair:
    """Two geoms (by name) and their signed distance in metres."""

    geom1: str
    geom2: str
    distance: float

# m kept between any two checked geoms, unless a robot YAML's model.collision_margin says
# otherwise: the one default (TeleopRobot and its YAML loader take it from here)
COLLISION_MARGIN = 0.02


class CollisionChecker:
    """Self and environment distances of one model (owns a private MjData; not thread-safe)."""

    def __init__(
        self,
        robot: RobotModel | mujoco.MjModel,
        *,
        margin: float = COLLISION_MARGIN,
        exclude_bodies: Iterable[tuple[str, str]] = (),
    ) -> None:
        if not (math.isfinite(margin) and margin >= 0.0):
            raise ValueError(f"margin must be finite and >= 0, got {margin}")
        self.model: mujoco.MjModel = robot.model if isinstance(robot, RobotModel) else robot
        self.data = mujoco.MjData(self.model)
        self.margin = float(margin)
        m = self.model
        excluded = {int(s) for s in m.exclude_signature}
        for b1, b2 in exclude_bodies:
            i1 = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b1)
            i2 = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b2)
            if i1 < 0 or i2 < 0:
                raise ValueError(f"exclude_bodies: unknown body in {(b1, b2)!r}")
            excluded.add((min(i1, i2) << 16) + max(i1, i2))
        pairs: list[tuple[int, int]] = []
        for g1 in range(m.ngeom):
            for g2 in range(g1 + 1, m.ngeom):
                if self._checked(g1, g2, excluded):
                    pairs.append((g1, g2))
        self.pairs: np.ndarray = np.asarray(pairs, dtype=int).reshape(-1, 2)
        self._names = [
            (m.geom(int(a)).name or f"geom{a}", m.geom(int(b)).name or f"geom{b}")
            for a, b in self.pairs
        ]
        self._fromto = np.zeros(6)
        # Broadphase data (bounding spheres; planes by signed distance), as MuJoCo's own
        # mj_filterSphere: a pair farther apart than distmax skips the narrow phase.
        g1, g2 = self.pairs[:, 0], self.pairs[:, 1]
        rb = m.geom_rbound
        plane = m.geom_type == int(mujoco.mjtGeom.mjGEOM_PLANE)
        self._bounded = (rb[g1] > 0) & (rb[g2] > 0)
        self._plane_first = plane[g1] & (rb[g2] > 0)
        self._plane_second = plane[g2] & (rb[g1] > 0)
        self._rsum = rb[g1] + rb[g2]

    def _checked(self, g1: int, g2: int, excluded: set[int]) -> bool:
        m = self.model
        ct, ca = m.geom_contype, m.geom_conaffinity
        if not ((ct[g1] & ca[g2]) or (ct[g2] & ca[g1])):
            return False
        b1, b2 = int(m.geom_bodyid[g1]), int(m.geom_bodyid[g2])
        w1, w2 = int(m.body_weldid[b1]), int(m.body_weldid[b2])
        if w1 == w2:  # same body, welded together, or both static
            return False
        p1 = int(m.body_weldid[m.body_parentid[w1]])
        p2 = int(m.body_weldid[m.body_parentid[w2]])
        # Adjacent links (parent-child; a base welded to the world counts as the world).
        # Geoms on the world body itself (floor, table) are adjacent to nothing: a table may
        # well reach link 1.
        if b1 != 0 and b2 != 0 and (w1 == p2 or w2 == p1):
            return False
        return ((min(b1, b2) << 16) + max(b1, b2)) not in excluded and (
            (min(w1, w2) << 16) + max(w1, w2)
        ) not in excluded

    @property
    def pair_names(self) -> list[tuple[str, str]]:
        return list(self._names)

    def pair_groups(self) -> list[tuple[list[int], list[int]]]:
        """The checked pairs as mink CollisionAvoidanceLimit geom groups."""
        return [([int(a)], [int(b)]) for a, b in self.pairs]

    def _set(self, q: ArrayLike) -> None:
        qa = np.asarray(q, dtype=float).reshape(-1)
        if qa.shape != (self.model.nq,):
            raise ValueError(f"q must have {self.model.nq} entries, got {qa.shape}")
        if not np.all(np.isfinite(qa)):
            raise ValueError("q must be finite")
        self.data.qpos[:] = qa
        mujoco.mj_kinematics(self.model, self.data)

    def _candidates(self, distmax: float) -> np.ndarray:
        """Indices of pairs that may be closer than distmax (conservative)."""
        xpos, xmat = self.data.geom_xpos, self.data.geom_xmat
        g1, g2 = self.pairs[:, 0], self.pairs[:, 1]
        keep = ~(self._bounded | self._plane_first | self._plane_second)
        diff = xpos[g1] - xpos[g2]
        center = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        keep |= self._bounded & (center - self._rsum <= distmax)
        rb = self.model.geom_rbound
        for mask, plane, other in (
            (self._plane_first, g1, g2),
            (self._plane_second, g2, g1),
        ):
            if mask.any():
                normal = xmat[plane][:, [2, 5, 8]]
                height = np.einsum("ij,ij->i", normal, xpos[other] - xpos[plane])
                keep |= mask & (height - rb[other] <= distmax)
        return np.flatnonzero(keep)

    def distances(self, q: ArrayLike, distmax: float = _FAR) -> np.ndarray:
        """Signed distance of every checked pair (capped at distmax), in `pairs` order."""
        self._set(q)
        out = np.full(len(self.pairs), float(distmax))
        for k in self._candidates(distmax):
            a, b = self.pairs[k]
            out[k] = mujoco.mj_geomDistance(
                self.model, self.data, int(a), int(b), distmax, self._fromto
            )
        return out

    def min_distance(self, q: ArrayLike, distmax: float = _FAR) -> tuple[float, GeomPair | None]:
        """Smallest signed distance over the checked pairs and the pair that has it.

        With a smaller `distmax` the search is cheaper and anything farther reads as
        (distmax, None).
        """
        if len(self.pairs) == 0:
            return math.inf, None
        d = self.distances(q, distmax)
        k = int(np.argmin(d))
        if d[k] >= distmax:
            return float(distmax), None
        return float(d[k]), GeomPair(*self._names[k], float(d[k]))

    def collisions(self, q: ArrayLike, margin: float | None = None) -> list[GeomPair]:
        """Pairs closer than `margin` (default: the checker's), nearest first."""
        mg = self.margin if margin is None else float(margin)
        # Only pairs within the margin matter: a small distmax lets MuJoCo stop early.
        d = self.distances(q, distmax=max(mg, 0.0) + 1e-3)
        hits = [GeomPair(*self._names[k], float(d[k])) for k in np.flatnonzero(d < mg)]
        return sorted(hits, key=lambda p: p.distance)

    def is_free(self, q: ArrayLike, margin: float | None = None) -> bool:
        return not self.collisions(q, margin)


@dataclass(frozen=True)
class SafeStep:
    """Result of `safe_step`: the configuration to send and why."""

    q: np.ndarray
    scaled: bool  # True when the command was cut short (teleop status: ``collision``)
    fraction: float  # how much of the step was taken, 0..1
    nearest: GeomPair | None  # the offending pair when scaled, else None


def safe_step(
    checker: CollisionChecker,
    q_prev: ArrayLike,
    q_cmd: ArrayLike,
    *,
    margin: float | None = None,
    resolution: float = 0.02,
    tol: float = 1e-3,
) -> SafeStep:
    """Furthest point of the straight step q_prev -> q_cmd that stays outside the margin.

    The step is walked in sub-steps of at most `resolution` rad on any joint (so a thin
    geom cannot be tunnelled through between two checks), then the first unsafe sub-step
    is bisected down to `tol` of the step. If q_prev itself is inside the margin (e.g. the
    robot was started there) the step is allowed only where every sample is no closer than
    q_prev was, i.e. the robot may move out of contact but not deeper.
    """
    mg = checker.margin if margin is None else float(margin)
    a = np.asarray(q_prev, dtype=float).reshape(-1)
    b = np.asarray(q_cmd, dtype=float).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"q_prev and q_cmd differ in shape: {a.shape} vs {b.shape}")
    if not (math.isfinite(resolution) and resolution > 0):
        raise ValueError(f"resolution must be > 0, got {resolution}")
    # Only distances up to the margin matter: a small distmax keeps every check cheap.
    reach = mg + 1e-3
    start_d, _ = checker.min_distance(a, reach)
    floor = mg if start_d >= mg else start_d

    def ok(t: float) -> tuple[bool, GeomPair | None]:
        d, pair = checker.min_distance(a + t * (b - a), reach)
        return d >= floor, pair

    step = float(np.max(np.abs(b - a))) if a.size else 0.0
    n = max(1, math.ceil(step / resolution))
    last_safe = 0.0
    for i in range(1, n + 1):
        t = i / n
        good, pair = ok(t)
        if not good:
            lo, hi, bad_pair = last_safe, t, pair
            while hi - lo > tol:
                mid = 0.5 * (lo + hi)
                good_mid, pair_mid = ok(mid)
                if good_mid:
                    lo = mid
                else:
                    hi, bad_pair = mid, pair_mid
            return SafeStep(q=a + lo * (b - a), scaled=True, fraction=lo, nearest=bad_pair)
        last_safe = t
    return SafeStep(q=b.copy(), scaled=False, fraction=1.0, nearest=None)
