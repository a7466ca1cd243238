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

`safe_step` is the last-resort guard: given the last commanded (safe) configuration and a
new command, return the furthest configuration along the straight joint-space step whose
whole path stays outside the margin.

`distance_rows` + `slide_velocity` are the guard proper (issue 24): the signed distances of
the pairs near enough to matter and their gradients with respect to the commanded joints,
and a small QP that changes a desired joint velocity as little as possible so that no
pair's distance shrinks faster than it can still be stopped at the margin within the
acceleration limits (a blocked step slides along the boundary; any step that increases
every distance is free; several pairs at once).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import mujoco
import numpy as np
import qpsolvers
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
        self._dofs: dict[bytes, np.ndarray] = {}
        self._pair_list = [(int(a), int(b)) for a, b in self.pairs]
        self._movable: dict[bytes, np.ndarray] = {}
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

    def distance_rows(self, q: ArrayLike, qpos_index: ArrayLike, distmax: float) -> DistanceRows:
        """Pairs closer than `distmax` that the joints `qpos_index` can move, with the
        gradient of each signed distance with respect to those joints (hinge/slide only).

        Separated pairs: analytic, n . (J2(p2) - J1(p1)) at MuJoCo's witness points (n the
        unit vector from p1 to p2). Touching or penetrating pairs (no well-defined n):
        central finite differences."""
        idx = np.asarray(qpos_index, dtype=int).reshape(-1)
        m = self.model
        key = idx.tobytes()
        dof = self._dofs.get(key)
        if dof is None:
            dof = np.array([int(m.jnt_dofadr[int(np.flatnonzero(m.jnt_qposadr == qi)[0])])
                            for qi in idx], dtype=int)
            self._dofs[key] = dof
            # pairs neither of whose geoms these joints move have no gradient: skip them
            moved = np.zeros(m.nbody, dtype=bool)
            for b in range(1, m.nbody):
                chain, x = [], b
                while x > 0:
                    chain.append(x)
                    x = int(m.body_parentid[x])
                moved[b] = any(int(m.jnt_bodyid[j]) in chain for j in range(m.njnt)
                               if int(m.jnt_dofadr[j]) in set(dof.tolist()))
            body = m.geom_bodyid
            self._movable[key] = moved[body[self.pairs[:, 0]]] | moved[body[self.pairs[:, 1]]]
        self._set(q)
        mujoco.mj_comPos(m, self.data)  # mj_jacBody needs cdof / subtree_com
        cand = self._candidates(distmax)
        cand = cand[self._movable[key][cand]]
        d_all = np.full(len(self.pairs), float(distmax))
        hits, dists, ends = [], [], []
        fromto = np.zeros(6)
        pairs = self._pair_list
        for k in cand.tolist():
            a, b = pairs[k]
            dist = mujoco.mj_geomDistance(m, self.data, a, b, distmax, fromto)
            if dist < distmax:
                hits.append(k)
                dists.append(dist)
                ends.append(fromto.copy())
        n = len(hits)
        if n == 0:
            return DistanceRows(np.zeros(0), np.zeros((0, idx.size)), [])
        sel = np.asarray(hits, dtype=int)
        dist_arr = np.asarray(dists)
        d_all[sel] = dist_arr
        ft = np.asarray(ends)
        p1, p2 = ft[:, :3], ft[:, 3:]
        gap = p2 - p1
        norm = np.linalg.norm(gap, axis=1)
        # Jacobians of the witness points from one body Jacobian per body:
        # J(p) = Jp(body) + Jr(body) x (p - body origin), columns of the joints in idx.
        bodies = m.geom_bodyid[self.pairs[sel]]  # (n, 2)
        uniq, inv = np.unique(bodies, return_inverse=True)
        inv = inv.reshape(bodies.shape)
        lin = np.empty((uniq.size, idx.size, 3))
        ang = np.empty((uniq.size, idx.size, 3))
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        for u, body in enumerate(uniq.tolist()):
            mujoco.mj_jacBody(m, self.data, jp, jr, body)
            lin[u], ang[u] = jp[:, dof].T, jr[:, dof].T
        origin = self.data.xpos[uniq]

        def point_jac(side: int, pts: np.ndarray) -> np.ndarray:
            u = inv[:, side]
            arm = pts - origin[u]  # (n, 3)
            return lin[u] + np.cross(ang[u], arm[:, None, :])

        unit = gap / np.where(norm > 1e-9, norm, 1.0)[:, None]
        grad = np.einsum("pdk,pk->pd", point_jac(1, p2) - point_jac(0, p1), unit)
        for r in np.flatnonzero((dist_arr <= 1e-6) | (norm <= 1e-9)).tolist():
            a, b = pairs[hits[r]]
            grad[r] = self._fd_gradient(q, idx, a, b, distmax)
        keep = np.flatnonzero(np.any(grad != 0.0, axis=1))
        return DistanceRows(
            distance=dist_arr[keep],
            gradient=grad[keep],
            names=[self._names[hits[r]] for r in keep.tolist()],
        )

    def _fd_gradient(self, q: ArrayLike, idx: np.ndarray, a: int, b: int,
                     distmax: float, h: float = 1e-5) -> np.ndarray:
        base = np.asarray(q, dtype=float).reshape(-1)
        g = np.zeros(idx.size)
        for k, qi in enumerate(idx):
            vals = []
            for sgn in (1.0, -1.0):
                qq = base.copy()
                qq[qi] += sgn * h
                self._set(qq)
                vals.append(mujoco.mj_geomDistance(self.model, self.data, a, b, distmax,
                                                   self._fromto))
            g[k] = (vals[0] - vals[1]) / (2.0 * h)
        self._set(base)  # the caller goes on with q's kinematics
        mujoco.mj_comPos(self.model, self.data)
        return g


@dataclass(frozen=True)
class DistanceRows:
    """`CollisionChecker.distance_rows`: distances (k,), gradients (k, n), pair names."""

    distance: np.ndarray
    gradient: np.ndarray
    names: list[tuple[str, str]]


@dataclass(frozen=True)
class Slide:
    """Result of `slide_velocity`."""

    velocity: np.ndarray
    changed: bool  # the constraints changed the desired velocity (teleop: "collision")
    feasible: bool  # every distance constraint held without slack
    nearest: tuple[str, str] | None  # the pair that bound the step most, when changed


def approach_speed_limit(clearance: np.ndarray, decel: np.ndarray, dt: float) -> np.ndarray:
    """Largest closing speed (m/s) from which a distance `clearance` above the margin can
    still be closed to zero braking at `decel` (m/s^2) with steps of `dt`: the same
    discrete bound as `RateLimiter` uses toward a position target (v^2/2a + v dt/2 plus
    a dt^2/8 of discretisation), never more than the clearance in one step."""
    c = np.maximum(clearance, 0.0)
    d_eff = np.maximum(c - decel * dt * dt / 8.0, 0.0)
    v = decel * (-0.5 * dt + np.sqrt(0.25 * dt * dt + 2.0 * d_eff / decel))
    return np.minimum(v, c / dt)


def slide_velocity(
    rows: DistanceRows,
    v_des: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    accel: ArrayLike,
    dt: float,
    margin: float,
    *,
    braking_share: float = 0.5,
) -> Slide:
    """The joint velocity closest to `v_des` within [lower, upper] (the acceleration,
    velocity and position-braking box of this step) whose distance rates keep every pair
    brakeable: ``grad_i . v >= -approach_speed_limit(d_i - margin, a_i)``, with a_i, the
    deceleration of pair i's distance the joints can always supply, `braking_share` of
    sum_k |grad_ik| accel_k (the rest is left for the pair's gradient turning and for
    other pairs). A pair already inside `margin` must move out (a fifth of the way a step).

    Only closing speeds are bounded: moving along the boundary (grad . v = 0) or away from
    it is free, so a blocked step slides. If the box cannot satisfy every constraint (a
    pair entered the activation distance too fast), the least-violating velocity in the
    box is returned with ``feasible=False``: the box (acceleration limit) always holds."""
    vd = np.asarray(v_des, dtype=float).reshape(-1)
    lo = np.asarray(lower, dtype=float).reshape(-1)
    hi = np.asarray(upper, dtype=float).reshape(-1)
    n = vd.size
    k = rows.distance.size
    v0 = np.clip(vd, lo, hi)
    if k == 0:
        return Slide(v0, bool(np.any(v0 != vd)), True, None)
    g = rows.gradient
    acc = np.broadcast_to(np.asarray(accel, dtype=float), (n,))
    decel = braking_share * (np.abs(g) @ acc)
    clearance = rows.distance - margin
    # Inside `margin` (the caller's aim, a few mm outside the hard margin): move back out
    # at a fraction of the way per step, so the aim is regained, never pressed on.
    bound = np.where(clearance > 0.0,
                     -approach_speed_limit(clearance, np.maximum(decel, 1e-9), dt),
                     -0.2 * clearance / dt)
    slack_rate = g @ v0 - bound
    if np.all(slack_rate >= 0.0):
        return Slide(v0, bool(np.any(v0 != vd)), True, None)
    # min |v - vd|^2 + w |s|^2  s.t.  g v + s >= bound, s >= 0, lo <= v <= hi
    w = 1e6
    p = np.zeros((n + k, n + k))
    p[:n, :n] = np.eye(n)
    p[n:, n:] = w * np.eye(k)
    c = np.concatenate([-vd, np.zeros(k)])
    gm = np.hstack([-g, -np.eye(k)])
    lb = np.concatenate([lo, np.zeros(k)])
    ub = np.concatenate([hi, np.full(k, 1e6)])
    x = qpsolvers.solve_qp(p, c, gm, -bound, lb=lb, ub=ub, solver="daqp")
    if x is None:  # numerically stuck: stopping as hard as the box allows is the safe answer
        v = np.clip(np.zeros(n), lo, hi)
        return Slide(v, True, False, rows.names[int(np.argmin(slack_rate))])
    v = np.clip(x[:n], lo, hi)
    feasible = bool(np.all(g @ v - bound >= -1e-6))
    nearest = rows.names[int(np.argmin(g @ v - bound))]
    return Slide(v, True, feasible, nearest)


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
