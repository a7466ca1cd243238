"""Pure metrics of a teleoperation loop against a known operator (issue 19): how far the
robot hand trails the operator's wrist (lag), whether it moves the same way at each hold
(fidelity), whether it comes back home, and how hard the commands accelerate.

No ROS, no models: arrays in, numbers out, so that `mocap-ros bench-loop`, the demo and
tests share one implementation. Conventions:

* times are seconds on one clock (the image stamps: the operator's truth carries its
  frame's stamp, robot samples the stamp of the joint state);
* ``*_disp`` are (N, 3) displacements from rest / home, metres, in frames whose axes mean
  the same (the operator's body frame and the robot's base frame are both REP-103: x
  forward, y left, z up), so a cosine between them is meaningful;
* amplitudes differ (a robot arm is not a human arm), so the lag compares signals each
  normalised by its own RMS magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

FloatArray = np.ndarray
# camera_node's ground truth of a synthetic operator (BodyPose; reason "phase=... holding=0|1")
TRUTH_TOPIC = "/synthetic/truth"


def parse_phase(reason: str) -> tuple[str, bool]:
    """The truth's ``reason``, ``"phase=hold_side holding=1"`` -> ("hold_side", True)."""
    fields = dict(part.split("=", 1) for part in reason.split() if "=" in part)
    return fields.get("phase", ""), fields.get("holding", "0") in ("1", "true", "True")


def _as_series(t: ArrayLike, x: ArrayLike) -> tuple[FloatArray, FloatArray]:
    tt = np.asarray(t, np.float64).reshape(-1)
    xx = np.asarray(x, np.float64)
    if xx.ndim == 1:
        xx = xx[:, None]
    if xx.shape[0] != tt.shape[0]:
        raise ValueError(f"{tt.shape[0]} times but {xx.shape[0]} samples")
    keep = np.isfinite(tt) & np.all(np.isfinite(xx), axis=1)
    tt, xx = tt[keep], xx[keep]
    order = np.argsort(tt, kind="stable")
    tt, xx = tt[order], xx[order]
    if tt.size:  # duplicate stamps: keep the last sample of each
        last = np.append(tt[1:] != tt[:-1], True)
        tt, xx = tt[last], xx[last]
    return tt, xx


def resample(t: ArrayLike, x: ArrayLike, t_new: ArrayLike) -> FloatArray:
    """Linear interpolation of the (N, D) series ``x(t)`` at ``t_new`` (NaN outside it)."""
    tt, xx = _as_series(t, x)
    tn = np.asarray(t_new, np.float64).reshape(-1)
    out = np.full((tn.size, xx.shape[1]), np.nan)
    if tt.size < 2:
        return out
    inside = (tn >= tt[0]) & (tn <= tt[-1])
    for d in range(xx.shape[1]):
        out[inside, d] = np.interp(tn[inside], tt, xx[:, d])
    return out


@dataclass(frozen=True)
class LagResult:
    lag_s: float      # shift that best lays the follower onto the reference (>= 0: it trails)
    score: float      # cosine between the normalised reference and the shifted follower
    samples: int      # reference samples compared at that shift
    moved: bool       # both signals moved at all (else lag_s is NaN)


def best_lag(t_ref: ArrayLike, ref_disp: ArrayLike, t_follow: ArrayLike,
             follow_disp: ArrayLike, *, max_lag: float = 1.0, step: float = 0.005,
             min_motion: float = 1e-3, grid_dt: float = 0.01) -> LagResult:
    """The time shift ``s`` in [0, max_lag] (``step`` apart) maximising the cosine between
    ``ref(t)`` and ``follow(t + s)``, both flattened over time and axes and each divided by
    its RMS norm. ``ref`` is sampled on a regular ``grid_dt`` grid over its own span; only
    times where the shifted follower exists count. Signals whose RMS motion is under
    ``min_motion`` (their units) did not move: lag NaN, moved False."""
    tr, xr = _as_series(t_ref, ref_disp)
    tf, xf = _as_series(t_follow, follow_disp)
    if tr.size < 2 or tf.size < 2:
        return LagResult(float("nan"), float("nan"), 0, False)
    grid = np.arange(tr[0], tr[-1] + 1e-9, grid_dt)
    r = resample(tr, xr, grid)
    r_rms = float(np.sqrt(np.mean(np.sum(r * r, axis=1))))
    f_rms = float(np.sqrt(np.mean(np.sum(xf * xf, axis=1))))
    if not (r_rms >= min_motion and f_rms >= min_motion):
        return LagResult(float("nan"), float("nan"), 0, False)
    best = LagResult(float("nan"), -np.inf, 0, True)
    for s in np.arange(0.0, max_lag + step / 2, step):
        f = resample(tf, xf, grid + s)
        ok = np.all(np.isfinite(f), axis=1)
        if ok.sum() < max(10, grid.size // 4):
            continue
        a, b = r[ok].reshape(-1), f[ok].reshape(-1)
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na == 0 or nb == 0:
            continue
        c = float(a @ b / (na * nb))
        if c > best.score + 1e-12:
            best = LagResult(float(round(s, 6)), c, int(ok.sum()), True)
    if not np.isfinite(best.score):
        return LagResult(float("nan"), float("nan"), 0, True)
    return best


@dataclass(frozen=True)
class HoldScore:
    start: float
    end: float
    cosine: float          # NaN when either displacement is under min_disp
    operator_m: float      # |mean operator displacement| over the window
    robot_m: float         # |mean robot displacement| over the window
    label: str = ""


def hold_windows(t: ArrayLike, holding: ArrayLike, labels: list[str] | None = None,
                 min_duration: float = 0.2) -> list[tuple[float, float, str]]:
    """Contiguous runs of ``holding`` true, as (start, end, label) (label: the first
    sample's), runs shorter than ``min_duration`` dropped."""
    tt = np.asarray(t, np.float64).reshape(-1)
    h = np.asarray(holding, bool).reshape(-1)
    out: list[tuple[float, float, str]] = []
    i = 0
    while i < tt.size:
        if not h[i]:
            i += 1
            continue
        j = i
        while j + 1 < tt.size and h[j + 1]:
            j += 1
        if tt[j] - tt[i] >= min_duration:
            out.append((float(tt[i]), float(tt[j]), labels[i] if labels else ""))
        i = j + 1
    return out


def hold_fidelity(windows: list[tuple[float, float, str]], t_op: ArrayLike,
                  op_disp: ArrayLike, t_robot: ArrayLike, robot_disp: ArrayLike, *,
                  settle_fraction: float = 0.5, min_disp: float = 0.02) -> list[HoldScore]:
    """Per hold window: cosine between the mean robot displacement and the mean operator
    displacement over the window's last ``1 - settle_fraction`` (the robot had the first
    part to get there). Holds where the operator is within ``min_disp`` of rest are
    skipped (no direction to compare); a robot that did not move gives cosine NaN, which
    callers must count as a failure."""
    to, xo = _as_series(t_op, op_disp)
    tr, xr = _as_series(t_robot, robot_disp)
    out: list[HoldScore] = []
    for start, end, label in windows:
        a = start + settle_fraction * (end - start)
        mo, mr = (to >= a) & (to <= end), (tr >= a) & (tr <= end)
        if not mo.any():
            continue
        o = xo[mo].mean(axis=0)
        if float(np.linalg.norm(o)) < min_disp:
            continue
        r = xr[mr].mean(axis=0) if mr.any() else np.zeros(xo.shape[1])
        no, nr = float(np.linalg.norm(o)), float(np.linalg.norm(r))
        cos = float(o @ r / (no * nr)) if nr >= min_disp * 0.1 else float("nan")
        out.append(HoldScore(start, end, cos, no, nr, label))
    return out


def distance_after(t: ArrayLike, disp: ArrayLike, t0: float, after_s: float = 3.0) -> float:
    """|disp| at ``t0 + after_s`` (linear interpolation; the last sample when the record
    ends earlier, NaN when it ends before t0)."""
    tt, xx = _as_series(t, disp)
    if tt.size == 0 or tt[-1] < t0:
        return float("nan")
    at = min(t0 + after_s, float(tt[-1]))
    x = resample(tt, xx, [at])[0] if tt.size > 1 else xx[0]
    return float(np.linalg.norm(x))


def max_acceleration_ratio(t: ArrayLike, velocities: ArrayLike, limits: ArrayLike,
                           *, min_dt: float = 1e-3) -> tuple[float, int]:
    """Largest |dv/dt| / limit over joints and consecutive command pairs (velocities as
    commanded, t their stamps; pairs closer than ``min_dt`` are skipped as duplicates), and
    the joint where it happened. (0.0, -1) with fewer than two commands."""
    tt, vv = _as_series(t, velocities)
    lim = np.abs(np.asarray(limits, np.float64).reshape(-1))
    if tt.size < 2:
        return 0.0, -1
    if vv.shape[1] != lim.size:
        raise ValueError(f"{vv.shape[1]} joints but {lim.size} limits")
    dt = np.diff(tt)
    ok = dt >= min_dt
    if not ok.any():
        return 0.0, -1
    acc = np.abs(np.diff(vv, axis=0)[ok]) / dt[ok, None] / lim
    k = int(np.argmax(acc))
    return float(acc.reshape(-1)[k]), int(k % lim.size)


def percentile(values: ArrayLike, q: float) -> float:
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if v.size else float("nan")
