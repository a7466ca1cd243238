"""How well the operator lock's signature separates people, on the shared photo pack.

    bash scripts/in_env.sh nice python bench/operator_separation.py [--out FILE.json]

Two signatures compared in ONE run (same placements, same random jitter):

* ``before``: issue 15's cues -- body proportions + colour histograms of torso and thighs;
* ``after``: + the head and hair region's colour and the torso's texture (issue 21 item 8).

Pairs (the photo pack's annotated people, ``test/real_images_pack.py``; annotated joints
stand in for the pose estimator, pasted on a plain canvas as in test_operator_lock):

* same person: each person's signature (5 placements) against the person re-placed (other
  place and size, brightness 0.9, joints jittered); the one real same-man pair (MPII
  004645041 / 060754485); the people MediaPipe finds in the PoseTrack video's frame 0
  against themselves in frames 1-4 (matched by box overlap; real pose change);
* different people: every ordered pair, and the DARK pairs among them (both with a torso
  median brightness V < 80 of 255: dark clothes, where colour histograms fall in the same
  few dark bins);
* cut-in: the lock's match score (identity x continuity ** 0.25) of person B pasted exactly
  where person A stood (same box) after 10 frames of A -- the case the issue reported.

Prints a table (median, 5th / 95th percentiles, share over the threshold) and the cost of
one candidate's cues (ms, both variants, the ratio), with the CPU model and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))

from test_operator_lock import SAME_PERSON_PAIRS, _frame, _place  # noqa: E402

from mocap_ros.estimation.operator import (  # noqa: E402
    MatchWeights,
    Observation,
    OperatorLockConfig,
    Signature,
    box_iou,
    candidate_from_landmarks,
    continuity_score,
    identity_score,
    observe,
    region_polygons,
)
from mocap_ros.tools.machine import cpu_model  # noqa: E402

from real_images_pack import load_people, pack_root  # noqa: E402

DARK_V = 80


def before(o: Observation) -> Observation:
    """The observation as issue 15's signature saw it: no head region, no texture."""
    return Observation(box=o.box, ratios_2d=o.ratios_2d, ratios_3d=o.ratios_3d,
                       hists={k: v for k, v in o.hists.items() if k != "head"}, texture=None)


VARIANTS = {"before": (before, MatchWeights(texture=0.0)),
            "after": (lambda o: o, MatchWeights())}


def dark(p) -> bool:
    m = np.zeros(p.image.shape[:2], np.uint8)
    cv2.fillConvexPoly(m, np.round(region_polygons(p.joints)["torso"][0]).astype(np.int32), 1)
    hsv = cv2.cvtColor(p.image, cv2.COLOR_RGB2HSV)[m.astype(bool)]
    return float(np.median(hsv[:, 2])) < DARK_V


def ident(sig: Signature, o: Observation, w: MatchWeights) -> float:
    v, _ = identity_score(sig, o, w)
    return 0.0 if v is None else v


def signature(obs: list[Observation]) -> Signature:
    sig = Signature(len(obs))
    for o in obs:
        sig.add(o)
    return sig


def stats(v: list[float], thr: float) -> dict[str, float]:
    a = np.asarray(v, float)
    return {"n": int(a.size), "p5": float(np.percentile(a, 5)),
            "median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "over_threshold": float(np.mean(a >= thr))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "operator_separation.json"))
    args = ap.parse_args()
    root = pack_root()
    if root is None:
        print("the shared photo pack is absent (see test/real_images_pack.py)")
        return 2
    thr = OperatorLockConfig().threshold
    people = load_people(root)
    is_dark = [dark(p) for p in people]
    n = len(people)
    rng = np.random.default_rng(5)
    # the same placements and jitter for both variants: observe once, strip for 'before'
    sig_obs = [[observe(_place(p, _frame(), 100 + 5 * k, 60, 300 + 4 * k, rng))
                for k in range(5)] for p in people]
    re_obs = [observe(_place(p, _frame(), 300, 100, 240, rng, brightness=0.9))
              for p in people]
    lock_obs = [[observe(_place(p, _frame(), 200 + k % 3, 60, 320, rng)) for k in range(10)]
                for p in people]
    cut_obs = [observe(_place(p, _frame(), 201, 60, 320, rng)) for p in people]
    # PoseTrack video: real frames of the same people (MediaPipe finds them)
    video: list[list[Observation]] = []
    try:
        from PIL import Image

        from mocap_ros.estimation.detector import MediaPipePose
        from mocap_ros.estimation.people import detect_people

        pose = MediaPipePose(static_image_mode=True)
        try:
            for f in sorted((root / "video").rglob("*.jpg")):
                rgb = np.asarray(Image.open(f).convert("RGB"))
                video.append([observe(candidate_from_landmarks(q.box, q.landmarks, rgb))
                              for q in detect_people(rgb, pose, 4)])
        finally:
            pose.close()
    except Exception as exc:  # no mediapipe: the video rows are left out, said so
        print(f"(video rows left out: {type(exc).__name__}: {exc})")

    dark_names = [p.name for p, d in zip(people, is_dark, strict=True) if d]
    out: dict[str, object] = {"threshold": thr, "people": n, "dark_people": dark_names,
                              "variants": {}}
    for name, (strip, w) in VARIANTS.items():
        sigs = [signature([strip(o) for o in obs]) for obs in sig_obs]
        same = [ident(sigs[i], strip(re_obs[i]), w) for i in range(n)]
        real_same, diff, dark_diff, cut, dark_cut = [], [], [], [], []
        for i in range(n):
            lock_sig = signature([strip(o) for o in lock_obs[i]])
            for j in range(n):
                if i == j:
                    continue
                s = ident(sigs[i], strip(re_obs[j]), w)
                if frozenset({people[i].name, people[j].name}) in SAME_PERSON_PAIRS:
                    real_same.append(s)
                    continue
                diff.append(s)
                c = ident(lock_sig, strip(cut_obs[j]), w) * continuity_score(
                    lock_obs[i][-1].box, cut_obs[j].box, 1) ** w.continuity
                cut.append(c)
                if is_dark[i] and is_dark[j]:
                    dark_diff.append(s)
                    dark_cut.append(c)
        vid_same = []
        for a in video[0] if video else []:
            sig = signature([strip(a)])
            for frame in video[1:]:
                vid_same += [ident(sig, strip(o), w) for o in frame
                             if box_iou(a.box, o.box) > 0.5]
        # cost of one candidate's cues (what observe() adds per person per frame)
        c0 = _place(people[0], _frame(), 200, 60, 320, rng)
        reps = 40
        t0 = time.perf_counter()
        for _ in range(reps):
            if name == "after":
                observe(c0)
            else:
                _observe_before(c0)
        ms = (time.perf_counter() - t0) / reps * 1e3
        out["variants"][name] = {  # type: ignore[index]
            "same_replaced": stats(same, thr), "same_man_mpii": real_same,
            "same_video": stats(vid_same, thr) if vid_same else None,
            "different": stats(diff, thr), "different_dark": stats(dark_diff, thr),
            "cut_in": stats(cut, thr), "cut_in_dark": stats(dark_cut, thr),
            "ms_per_candidate": ms}
    out["cpu"] = cpu_model()
    out["load_average"] = os.getloadavg()
    _print(out)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def _observe_before(c) -> Observation:
    """issue 15's cue extraction alone (no head region, no texture), for its cost."""
    from mocap_ros.estimation.operator import bone_ratios, region_histograms

    hists = region_histograms(c.image, c.joints_2d)
    hists.pop("head", None)  # computed here too: the 'before' cost is slightly high
    return Observation(box=c.box.copy(), ratios_2d=bone_ratios(c.joints_2d),
                       ratios_3d=None, hists=hists)


def _print(out: dict) -> None:
    v = out["variants"]
    rows = [("same person, re-placed", "same_replaced"), ("same people, PoseTrack video",
                                                          "same_video"),
            ("different people", "different"), ("different, both dark", "different_dark"),
            ("cut-in (same box)", "cut_in"), ("cut-in, both dark", "cut_in_dark")]
    print(f"\noperator signature separation, threshold {out['threshold']}, "
          f"{out['people']} people ({len(out['dark_people'])} dark-clothed); "
          f"CPU {out['cpu']}, load {out['load_average'][0]:.1f}")
    print("| pairs | n | before p5 / median / p95 | before >= thr | after p5 / median / p95 "
          "| after >= thr |")
    print("|---|---|---|---|---|---|")
    for label, key in rows:
        b, a = v["before"][key], v["after"][key]
        if b is None or a is None:
            continue
        print(f"| {label} | {b['n']} | {b['p5']:.2f} / {b['median']:.2f} / {b['p95']:.2f} | "
              f"{100 * b['over_threshold']:.0f} % | {a['p5']:.2f} / {a['median']:.2f} / "
              f"{a['p95']:.2f} | {100 * a['over_threshold']:.0f} % |")
    print(f"same man, two MPII video frames: before {np.round(v['before']['same_man_mpii'], 2)}"
          f", after {np.round(v['after']['same_man_mpii'], 2)}")
    mb, ma = v["before"]["ms_per_candidate"], v["after"]["ms_per_candidate"]
    print(f"cues per candidate: before {mb:.2f} ms, after {ma:.2f} ms (x{ma / mb:.2f})")


if __name__ == "__main__":
    sys.exit(main())
