"""IK step timing on this CPU: ``python -m mocap_ros.tools.bench_ik [--json out.json]``.

Prints the median and p99 of one `TaskIK.solve` call (mink QP + final collision guard)
for the FR3 with and without collision constraints, while the end effector tracks a
circle in front of the robot (100 Hz control, dt = 0.01 s). A table, not a test: timing
depends on the machine and its load. Variants, one run: "plain" is the issue-11 IK (weak
posture task, no escape), "shipped" adds the home pull and the home-seeded escape (issue
24; the circle's dip into the floor leaves the tool off target, so the escape's second
chain does run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from mocap_ros.tools.machine import cpu_model


def bench(robot_name: str, collision: bool, steps: int, dt: float,
          variant: str = "shipped") -> dict[str, object]:
    from mocap_ros.robots.model import add_environment, load_robot
    from mocap_ros.teleop.ik import IKParams, TaskIK

    robot = add_environment(load_robot(robot_name))
    params = IKParams(collision=collision)
    if variant == "plain":
        params = IKParams(collision=collision, rest_posture_cost=params.posture_cost,
                          escape=False)
    ik = TaskIK(robot, "tcp", params=params, elbow_body="fr3_link4")
    q = robot.home.copy()
    centre, _ = ik.site_pose(q)
    times = []
    scaled = 0
    for k in range(steps):
        a = 2.0 * math.pi * k / 200.0  # one circle every 2 s
        # dips 0.5 m below the home height, into the floor: exercises the constraints
        target = centre + np.array([0.1, 0.25 * math.cos(a), 0.25 * math.sin(a) - 0.25])
        t0 = time.perf_counter()
        q = ik.solve(q, target, None, dt)
        times.append(time.perf_counter() - t0)
        scaled += int(ik.last.scaled_back)
    ms = np.asarray(times[min(20, steps // 4):]) * 1e3  # skip warm-up (a quarter, at most 20)
    return {
        "robot": robot_name,
        "variant": variant,
        "collision": collision,
        "pairs": len(ik.checker.pairs),  # checked by the final guard in both rows
        "steps": len(ms),
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "guard_scaled_steps": scaled,
        "escapes": ik.escapes,
        "seed_steps": ik.seed_steps,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if args.steps < 4:
        ap.error("--steps must be at least 4 (a quarter, at most 20, is warm-up)")
    from importlib.metadata import version

    # interleaved (plain, shipped, plain, ...) would be fairer still; rows run back to back
    rows = [bench("fr3", c, args.steps, args.dt, v)
            for c, v in ((False, "shipped"), (True, "plain"), (True, "shipped"))]
    cpu = cpu_model()
    load = os.getloadavg()
    print(f"CPU: {cpu}   load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}   "
          f"mujoco {version('mujoco')}   mink {version('mink')}")
    print(f"{'robot':6} {'variant':8} {'QP coll.':9} {'pairs':>5} {'median ms':>10} "
          f"{'p99 ms':>8} {'max ms':>8} {'guard':>6} {'escapes':>8} {'seed QPs':>8}")
    for r in rows:
        print(f"{r['robot']:6} {r['variant']:8} {r['collision']!s:9} {r['pairs']:>5} "
              f"{r['median_ms']:>10.3f} {r['p99_ms']:>8.3f} {r['max_ms']:>8.3f} "
              f"{r['guard_scaled_steps']:>6} {r['escapes']:>8} {r['seed_steps']:>8}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "load_average": load, "rows": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
