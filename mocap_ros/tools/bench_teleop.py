"""Teleop latency benchmark: how late, and how much of the motion, does a robot command follow?

The TeleopController runs in simulated time (no ROS, no wall clock): poses at `POSE_HZ`
stamped when they are taken and received at once (so only teleop's own lag is measured, not
the estimator's), control steps at the controller's rate. Two standard motions of the
operator's right elbow (every other angle at rest):

* ``ramp``: 90 degrees over 3 s (0.52 rad/s), held before and after;
* ``wave``: 1 Hz, +-25 degrees about 70 degrees of flexion.

The ideal target is the joint map's command for the clean motion, continuous in time. Lag is
the time shift that best lays a signal onto it (least RMS, 1 ms steps) over the moving part:
  * ``filter``   -- the filter's output at the pose times (`TeleopController.target`);
  * ``period``   -- what sampling adds: the output of the same controller with the rate
                    limits lifted, minus the filter's lag (30 Hz poses held for 50 Hz steps);
  * ``limits``   -- the rest, up to the real output's lag (velocity/acceleration limits).
The wave's amplitude ratio is the output's peak-to-peak over the ideal's (1.0: full motion).

Jitter: the same motions plus Gaussian noise (`NOISE_RAD` on the elbow angle, several seeds);
the reduction is the RMS second difference of the noise in the input over that left in the
filter's output (filtered noisy run minus filtered clean run), i.e. on the noise alone, so a
signal's own curvature does not count as jitter. Filters are compared first on their own
(candidates below), then the controller is measured with the default and the chosen ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from mocap_ros.teleop.angles import ANGLE_NAMES, angles_to_local_rotations
from mocap_ros.teleop.controller import MAX_PREDICTION_S, TeleopController
from mocap_ros.teleop.filters import (
    KalmanParams,
    OneEuroParams,
    RateLimiter,
    make_filter,
)
from mocap_ros.teleop.retarget import RobotJointMap
from mocap_ros.tools.machine import cpu_model

POSE_HZ = 30.0
NOISE_RAD = 0.03
SEEDS = (0, 1, 2, 3, 4)
ROBOTS = ("fr3", "g1")
ANGLE = "right_elbow_flexion"
MAX_SHIFT_S = 0.5
GOAL_FILTER_LAG_MS = 30.0
GOAL_JITTER_REDUCTION = 5.0
GOAL_G1_TOTAL_MS = 60.0
GOAL_FR3_TOTAL_MS = 100.0
GOAL_WAVE_AMPLITUDE = 0.9

FilterParams = OneEuroParams | KalmanParams


@dataclass(frozen=True)
class Variant:
    """Controller options compared in one run (issue 24): the target predicted forward by
    the pose's age and the filtered command's speed fed forward to the rate limiter, or
    neither (the controller before); `acceleration_scale`: per robot, the YAML's top-level
    field replaced (None: as shipped)."""

    name: str
    feedforward: bool
    max_prediction_s: float
    acceleration_scale: tuple[tuple[str, float], ...] = ()

    def scale_for(self, robot: str) -> float | None:
        return dict(self.acceleration_scale).get(robot)


VARIANTS = (
    # as before issue 24: no prediction or feed-forward, the G1 arms at 10 rad/s^2
    Variant("before", False, 0.0, (("fr3", 0.2), ("g1", 0.5))),
    Variant("after", True, MAX_PREDICTION_S),
)


@dataclass(frozen=True)
class Motion:
    name: str
    duration: float
    fit_window: tuple[float, float]  # seconds over which lag is fitted
    angle: Callable[[np.ndarray], np.ndarray]


def _ramp(t: np.ndarray) -> np.ndarray:
    s = np.clip((t - 1.0) / 3.0, 0.0, 1.0)
    return 0.3 + 0.5 * math.pi * s


def _wave(t: np.ndarray) -> np.ndarray:
    return math.radians(70.0) + math.radians(25.0) * np.sin(2.0 * math.pi * t)


MOTIONS = (
    Motion("ramp", 5.5, (1.0, 4.8), _ramp),
    Motion("wave", 7.0, (2.0, 7.0), _wave),
)


def _map_path(robot: str) -> Path:
    return Path(__file__).resolve().parents[2] / "config" / f"teleop_{robot}.yaml"


def load_map(robot: str, acceleration_scale: float | None = None) -> RobotJointMap:
    if acceleration_scale is None:
        return RobotJointMap.from_yaml(_map_path(robot))
    data = yaml.safe_load(_map_path(robot).read_text())
    data["acceleration_scale"] = acceleration_scale
    for key in ("model", "task", "retarget", "hands"):  # the joint map alone
        data.pop(key, None)
    return RobotJointMap.from_dict(data, str(_map_path(robot)))


def _joint_index(jmap: RobotJointMap) -> int:
    for i, (name, _) in enumerate(jmap.sources):
        if name == ANGLE:
            return i
    raise ValueError(f"{jmap.robot}: no joint follows {ANGLE}")


def best_shift(t: np.ndarray, y: np.ndarray, ideal: Callable[[np.ndarray], np.ndarray],
               window: tuple[float, float]) -> float:
    """Seconds (1 ms steps) by which `y` best trails `ideal` over `window`."""
    sel = (t >= window[0]) & (t <= window[1])
    ts, ys = t[sel], y[sel]
    shifts = np.arange(0.0, MAX_SHIFT_S + 1e-9, 0.001)
    err = [float(np.mean((ys - ideal(ts - s)) ** 2)) for s in shifts]
    return float(shifts[int(np.argmin(err))])


def _angles(value: float) -> dict[str, float]:
    a = dict.fromkeys(ANGLE_NAMES, 0.0)
    a[ANGLE] = float(value)
    return a


def run_controller(jmap: RobotJointMap, motion: Motion, params: FilterParams | None, *,
                   noise: np.ndarray | None = None, unlimited: bool = False,
                   rate_hz: float = 50.0, variant: Variant | None = None
                   ) -> dict[str, np.ndarray]:
    """Drive the controller through `motion`; pose and step traces of the elbow joint."""
    j = _joint_index(jmap)
    v = variant or VARIANTS[-1]
    ctrl = TeleopController(jmap, rate_hz=rate_hz, filter_params=params,
                            feedforward=v.feedforward, max_prediction_s=v.max_prediction_s)
    if unlimited:
        big = np.full(len(jmap), 1e6)
        ctrl.limiter = RateLimiter(jmap.lower, jmap.upper, big, big)
    pose_t = np.arange(0.0, motion.duration, 1.0 / POSE_HZ)
    ang = motion.angle(pose_t) + (0.0 if noise is None else noise[: pose_t.size])
    step_t = np.arange(0.0, motion.duration, 1.0 / rate_hz) + 0.5 / rate_hz
    start = jmap.command(_angles(float(motion.angle(np.array([0.0]))[0])))
    ctrl.enable(0.0, start)
    targets, outs = np.full(pose_t.size, np.nan), np.full(step_t.size, np.nan)
    k = 0
    for i, ts in enumerate(step_t):
        while k < pose_t.size and pose_t[k] <= ts:
            q = angles_to_local_rotations(_angles(ang[k]))
            d = ctrl.on_pose(pose_t[k], pose_t[k], True, 1.0, q)
            if not d.accept:
                raise RuntimeError(f"pose refused at {pose_t[k]:.3f} s: {d.reason}")
            targets[k] = ctrl.target[j]
            k += 1
        out = ctrl.step(ts)
        assert out is not None
        outs[i] = out.positions[j]
    return {"pose_t": pose_t, "target": targets, "step_t": step_t, "output": outs}


def _ideal(jmap: RobotJointMap, motion: Motion) -> Callable[[np.ndarray], np.ndarray]:
    j = _joint_index(jmap)
    scale, offset = jmap.scale[j], jmap.offset[j]
    lo, hi = jmap.lower[j], jmap.upper[j]

    def f(t: np.ndarray) -> np.ndarray:
        return np.clip(scale * motion.angle(t) + offset, lo, hi)

    return f


def jitter(x: np.ndarray) -> float:
    """RMS second difference."""
    return float(np.sqrt(np.mean(np.diff(x, 2) ** 2)))


# ------------------------------------------------------------------ filters on their own
def filter_trace(params: FilterParams, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    f = make_filter(1, params)
    return np.array([f(np.array([xi]), ti)[0] for xi, ti in zip(x, t, strict=True)])


def evaluate_filter(params: FilterParams) -> dict[str, float]:
    """Filter lag per motion (ms) and the worst noise reduction over motions and seeds."""
    out: dict[str, float] = {}
    reductions = []
    for m in MOTIONS:
        t = np.arange(0.0, m.duration, 1.0 / POSE_HZ)
        clean = m.angle(t)
        y = filter_trace(params, t, clean)
        out[f"{m.name}_lag_ms"] = 1e3 * best_shift(t, y, m.angle, m.fit_window)
        for seed in SEEDS:
            n = np.random.default_rng(seed).normal(0.0, NOISE_RAD, t.size)
            yn = filter_trace(params, t, clean + n)
            skip = int(POSE_HZ)  # the filter's start-up
            reductions.append(jitter(n[skip:]) / max(jitter((yn - y)[skip:]), 1e-12))
    out["lag_ms"] = max(out[f"{m.name}_lag_ms"] for m in MOTIONS)
    out["jitter_reduction"] = float(min(reductions))
    return out


def candidates() -> list[FilterParams]:
    c: list[FilterParams] = [OneEuroParams()]
    for order in (1, 2, 3):
        for mc in (1.0, 1.5, 2.0, 3.0, 4.0, 5.25, 7.0):
            for beta in (0.05, 0.3, 1.0, 3.0):
                c.append(OneEuroParams(min_cutoff=mc, beta=beta, order=order))
    for q in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0):
        c.append(KalmanParams(measurement_noise=0.03, process_noise=q))
    return c


def describe(p: FilterParams | None) -> str:
    if p is None or isinstance(p, OneEuroParams):
        p = p or OneEuroParams()
        return f"one_euro(order={p.order}, min_cutoff={p.min_cutoff:g}, beta={p.beta:g})"
    return f"kalman(measurement_noise={p.measurement_noise:g}, process_noise={p.process_noise:g})"


def choose(results: list[tuple[FilterParams, dict[str, float]]], kind: type
           ) -> tuple[FilterParams, dict[str, float]] | None:
    """Least lag among the candidates of `kind` that reach the jitter goal."""
    ok = [(p, r) for p, r in results
          if isinstance(p, kind) and r["jitter_reduction"] >= GOAL_JITTER_REDUCTION]
    return min(ok, key=lambda pr: pr[1]["lag_ms"]) if ok else None


# ------------------------------------------------------------------ controller
def measure_robot(robot: str, params: FilterParams | None,
                  variant: Variant | None = None) -> dict[str, object]:
    v = variant or VARIANTS[-1]
    jmap = load_map(robot, v.scale_for(robot))
    rows: dict[str, object] = {}
    for m in MOTIONS:
        ideal = _ideal(jmap, m)
        real = run_controller(jmap, m, params, variant=v)
        free = run_controller(jmap, m, params, unlimited=True, variant=v)
        lag_f = best_shift(real["pose_t"], real["target"], ideal, m.fit_window)
        lag_free = best_shift(free["step_t"], free["output"], ideal, m.fit_window)
        lag_total = best_shift(real["step_t"], real["output"], ideal, m.fit_window)
        row = {"filter_ms": 1e3 * lag_f, "period_ms": 1e3 * (lag_free - lag_f),
               "limits_ms": 1e3 * (lag_total - lag_free), "total_ms": 1e3 * lag_total}
        if m.name == "wave":
            sel = real["step_t"] >= m.fit_window[0]
            ts = real["step_t"][sel]
            want = np.ptp(ideal(ts))
            row["amplitude_ratio"] = float(np.ptp(real["output"][sel]) / want)
            row["amplitude_ratio_unlimited"] = float(np.ptp(free["output"][sel]) / want)
        rows[m.name] = {k: round(v, 3) for k, v in row.items()}
        # the search ends at MAX_SHIFT_S: a lag there means "at least", not a measurement
        rows[m.name]["total_at_search_limit"] = bool(lag_total >= MAX_SHIFT_S - 1e-9)
    return rows


def controller_jitter(robot: str, params: FilterParams | None, variant: Variant) -> float:
    """Worst noise reduction of the controller's output (rate limits lifted, so only the
    filter, the sampling and the prediction act): the input noise held for each control
    step over the noise left in the output (noisy run minus clean run), as RMS second
    differences, over both motions and `SEEDS`. Prediction extrapolates the noise too:
    this is the number that shows what it costs."""
    jmap = load_map(robot, variant.scale_for(robot))
    j = _joint_index(jmap)
    worst = math.inf
    for m in MOTIONS:
        clean = run_controller(jmap, m, params, unlimited=True, variant=variant)
        pose_t, step_t = clean["pose_t"], clean["step_t"]
        skip = step_t.size * 1000 // int(1000 * m.duration)  # the first second: start-up
        for seed in SEEDS:
            n = np.random.default_rng(seed).normal(0.0, NOISE_RAD, pose_t.size)
            noisy = run_controller(jmap, m, params, noise=n, unlimited=True, variant=variant)
            held = n[np.searchsorted(pose_t, step_t, side="right") - 1] * jmap.scale[j]
            left = noisy["output"] - clean["output"]
            worst = min(worst, jitter(held[skip:]) / max(jitter(left[skip:]), 1e-12))
    return worst


def run(json_path: str | None = None, quick: bool = False) -> dict[str, object]:
    cands = candidates() if not quick else [OneEuroParams(), KalmanParams()]
    results = [(p, evaluate_filter(p)) for p in cands]
    default = results[0]
    best_euro = choose(results, OneEuroParams)
    best_kalman = choose(results, KalmanParams)
    print(f"Teleop latency benchmark ({cpu_model()}); poses {POSE_HZ:g} Hz, noise "
          f"{NOISE_RAD} rad on {ANGLE}, seeds {list(SEEDS)}")
    print(f"\nFilters alone ({len(results)} candidates; goal: lag <= {GOAL_FILTER_LAG_MS:g} ms "
          f"with jitter reduction >= {GOAL_JITTER_REDUCTION:g}x):")
    print(f"{'filter':<58} {'ramp ms':>8} {'wave ms':>8} {'jitter x':>9}")
    shown = [("default", default)]
    if best_euro:
        shown.append(("best one_euro", best_euro))
    if best_kalman:
        shown.append(("best kalman", best_kalman))
    for label, (p, r) in shown:
        print(f"{label + ': ' + describe(p):<58} {r['ramp_lag_ms']:8.1f} {r['wave_lag_ms']:8.1f}"
              f" {r['jitter_reduction']:9.2f}")
    picks = [("default", default[0])]
    if best_euro:
        picks.append(("best one_euro", best_euro[0]))
    if best_kalman:
        picks.append(("best kalman", best_kalman[0]))
    robots: dict[str, object] = {}
    print("\nController (50 Hz steps; lag in ms split filter + period + limits = total;")
    print(" variants in one run: " + "; ".join(
        f"{v.name}: feed-forward {'on' if v.feedforward else 'off'}, prediction <= "
        f"{1e3 * v.max_prediction_s:g} ms, acceleration_scale "
        f"{dict(v.acceleration_scale) or 'as shipped'}" for v in VARIANTS) + "):")
    print(f"{'robot':<5} {'filter':<14} {'variant':<7} {'motion':<5} {'filter':>7} "
          f"{'period':>7} {'limits':>7} {'total':>7} {'amplitude':>9} {'(no limits)':>11}")
    for robot in ROBOTS:
        per: dict[str, object] = {}
        for label, p in picks:
            per[label] = {"filter": describe(p)}
            for variant in VARIANTS:
                rows = measure_robot(robot, p, variant)
                if label == "default":
                    rows["jitter_reduction"] = round(controller_jitter(robot, p, variant), 2)
                per[label][variant.name] = rows  # type: ignore[index]
                for mname, row in rows.items():
                    if not isinstance(row, dict):
                        continue
                    amp = (f"{row['amplitude_ratio']:9.2f} "
                           f"{row['amplitude_ratio_unlimited']:11.2f}"
                           if "amplitude_ratio" in row else "")
                    cap = ">=" if row["total_at_search_limit"] else "  "
                    print(f"{robot:<5} {label:<14} {variant.name:<7} {mname:<5} "
                          f"{row['filter_ms']:7.1f} {row['period_ms']:7.1f} "
                          f"{row['limits_ms']:7.1f} {cap}{row['total_ms']:5.0f} {amp}")
        robots[robot] = per
    print("\nOutput noise reduction, default filter (input noise held per step over the "
          "noise in the output, rate limits lifted; the filter alone at the pose times: "
          f"{default[1]['jitter_reduction']:.2f}x):")
    for robot in ROBOTS:
        d = robots[robot]["default"]  # type: ignore[index]
        print(f"  {robot}: " + ", ".join(f"{v.name} {d[v.name]['jitter_reduction']:.2f}x"
                                        for v in VARIANTS))
    goals = {"g1": GOAL_G1_TOTAL_MS, "fr3": GOAL_FR3_TOTAL_MS}
    print("\nGoals (issue 24): ramp lag, default filter, variant "
          f"'{VARIANTS[-1].name}'; wave amplitude >= {GOAL_WAVE_AMPLITUDE:g} where the limits "
          "allow:")
    for robot in ROBOTS:
        after = robots[robot]["default"][VARIANTS[-1].name]  # type: ignore[index]
        lag, amp = after["ramp"]["total_ms"], after["wave"]["amplitude_ratio"]
        print(f"  {robot}: ramp {lag:.0f} ms (goal <= {goals[robot]:g}: "
              f"{'met' if lag <= goals[robot] else 'MISSED'}), wave amplitude {amp:.2f}")
    report = {
        "cpu": cpu_model(), "pose_hz": POSE_HZ, "noise_rad": NOISE_RAD, "seeds": list(SEEDS),
        "filters": [{"filter": describe(p), "params": {"type": type(p).__name__, **asdict(p)},
                     **{k: round(v, 3) for k, v in r.items()}} for p, r in results],
        "default": describe(default[0]),
        "best_one_euro": describe(best_euro[0]) if best_euro else None,
        "best_kalman": describe(best_kalman[0]) if best_kalman else None,
        "robots": robots,
    }
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
        print(f"\nJSON: {json_path}")
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--quick", action="store_true", help="default and Kalman filters only")
    a = ap.parse_args(argv)
    run(a.json, a.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
