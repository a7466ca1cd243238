"""Operator lock (issue 15) on real photos: selection, tracking, losing and re-acquiring.

Real people from ``/work/shared/real_images`` (``../shared/real_images`` from the repo; the
MMPose test pack, see its README): every annotated person of ``body/aic``, ``body/ochuman``,
``body/mpii`` and ``multi/crowdpose`` with enough labelled joints. Their ANNOTATED keypoints
stand in for the pose estimator (fast, and the detector is not what these tests check);
:func:`test_detector_people_selectable_and_tracked` uses MediaPipe's boxes and landmarks.

Frame sequences are built from the photos: a person's box crop pasted onto a plain canvas at a
chosen place and size ("placements"), with the annotated joints moved along and jittered
by a few pixels per frame (what a pose estimator's noise looks like).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mocap_ros.estimation.operator import (
    CANONICAL_JOINTS,
    OperatorLock,
    OperatorLockConfig,
    PersonCandidate,
    Signature,
    bone_ratios,
    box_iou,
    identity_score,
    observe,
    select_person,
)

from real_images_pack import RealPerson, load_people, pack_root, torso_length

# MPII 004645041 and 060754485: two frames of the same video, the same man (pack README)
SAME_PERSON_PAIRS = {frozenset({"004645041#0", "060754485#0"})}


@pytest.fixture(scope="module")
def real_people() -> list[RealPerson]:
    root = pack_root()
    if root is None:
        pytest.skip("real photo pack absent: /work/shared/real_images (or ../shared/"
                    "real_images, or $MOCAP_REAL_IMAGES) with index.json is needed")
    people = load_people(root)
    assert len(people) >= 12, f"only {len(people)} usable annotated people in {root}"
    return people


# --------------------------------------------------------------------------- frame times

DT = 0.1  # seconds between the frames of these sequences (FrameClock)


class FrameClock:
    """The lock's clock for a frame sequence: each call (one per lock() and update()) is
    the next frame, DT seconds later."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += DT
        return self.t


def _lost_after(frames: int) -> float:
    """lost_after such that the ``frames``-th frame since the last match is lost."""
    return (frames - 0.5) * DT


# --------------------------------------------------------------------------- placements

CANVAS = (480, 640)  # H, W


def _place(p: RealPerson, canvas: np.ndarray, x: float, y: float, height: float,
           rng: np.random.Generator | None = None, jitter: float = 0.01,
           brightness: float = 1.0) -> PersonCandidate:
    """Paste ``p``'s box crop onto ``canvas`` (in place) with its top-left at (x, y) and the
    given box height; the candidate carries the moved (and jittered) joints."""
    bx, by, bw, bh = p.box
    x0, y0 = int(bx), int(by)
    x1, y1 = math.ceil(bx + bw), math.ceil(by + bh)
    crop = p.image[y0:y1, x0:x1]
    s = height / crop.shape[0]
    w_new, h_new = max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))
    small = cv2.resize(crop, (w_new, h_new), interpolation=cv2.INTER_AREA)
    if brightness != 1.0:
        small = np.clip(small.astype(np.float32) * brightness, 0, 255).astype(np.uint8)
    H, W = canvas.shape[:2]
    xi, yi = round(x), round(y)
    cx0, cy0 = max(0, xi), max(0, yi)
    cx1, cy1 = min(W, xi + w_new), min(H, yi + h_new)
    canvas[cy0:cy1, cx0:cx1] = small[cy0 - yi:cy1 - yi, cx0 - xi:cx1 - xi]
    j = (p.joints - (x0, y0)) * s + (xi, yi)
    if rng is not None and jitter:
        j = j + rng.normal(0.0, jitter * torso_length(j), j.shape)
    return PersonCandidate(box=(cx0, cy0, cx1 - cx0, cy1 - cy0), joints_2d=j, image=canvas)


def _frame() -> np.ndarray:
    return np.full((*CANVAS, 3), 96, np.uint8)


def _signature_of(p: RealPerson, rng: np.random.Generator, n_sig: int = 5) -> Signature:
    """A signature of ``p`` from ``n_sig`` jittered placements (sizes 300-316 px)."""
    sig = Signature(n_sig)
    for k in range(n_sig):
        sig.add(observe(_place(p, _frame(), 100 + 5 * k, 60, 300 + 4 * k, rng)))
    return sig


@pytest.fixture(scope="module")
def similarity(real_people: list[RealPerson]) -> np.ndarray:
    """S[i, j]: identity score (body + appearance, no box continuity) of person j placed
    elsewhere at a smaller size (240 px), brightness 0.9, joints jittered, against person i's
    signature. The diagonal is the same person seen again."""
    rng = np.random.default_rng(5)
    sigs = [_signature_of(p, rng) for p in real_people]
    obs = [observe(_place(p, _frame(), 300, 100, 240, rng, brightness=0.9))
           for p in real_people]
    n = len(real_people)
    s = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ident, _ = identity_score(sigs[i], obs[j])
            s[i, j] = 0.0 if ident is None else ident
    return s


# --------------------------------------------------------------------------- tests


def test_selection_policies_on_a_real_photo(real_people: list[RealPerson]) -> None:
    """Without a lock, each stated policy picks the person it says it picks."""
    by_image: dict[str, list[RealPerson]] = {}
    for p in real_people:
        by_image.setdefault(p.image_key, []).append(p)
    multi = [ps for ps in by_image.values() if len(ps) >= 2]
    assert multi, "no photo with two usable annotated people"
    for ps in multi:
        cands = [p.candidate() for p in ps]
        areas = [c.box[2] * c.box[3] for c in cands]
        assert select_person(cands, "largest") == int(np.argmax(areas))
        shape = ps[0].image.shape
        centre = np.array([shape[1] / 2, shape[0] / 2])
        dist = [np.linalg.norm(c.box[:2] + c.box[2:] / 2 - centre) for c in cands]
        assert select_person(cands, "center", shape) == int(np.argmin(dist))
        for i, c in enumerate(cands):  # a region drawn around one person's box picks it
            # (region = that box itself: the others may overlap it, but less than fully)
            share_others = [_inside(o.box, c.box) for j, o in enumerate(cands) if j != i]
            if max(share_others, default=0.0) < 0.95:
                assert select_person(cands, "region", region=c.box) == i
    assert select_person([], "largest") is None
    with pytest.raises(ValueError):
        select_person([real_people[0].candidate()], "tallest")


def _inside(b: np.ndarray, r: np.ndarray) -> float:
    iw = max(0.0, min(b[0] + b[2], r[0] + r[2]) - max(b[0], r[0]))
    ih = max(0.0, min(b[1] + b[3], r[1] + r[3]) - max(b[1], r[1]))
    return float(iw * ih / (b[2] * b[3]))


def test_every_annotated_person_can_be_locked_and_tracked(
        real_people: list[RealPerson]) -> None:
    """In every photo with several people, each person can be locked and is the one
    followed over 20 frames (joints jittered each frame, everyone else still in view)."""
    rng = np.random.default_rng(0)
    by_image: dict[str, list[RealPerson]] = {}
    for p in real_people:
        by_image.setdefault(p.image_key, []).append(p)
    checked = 0
    for ps in by_image.values():
        if len(ps) < 2:
            continue
        for i in range(len(ps)):
            lock = OperatorLock()
            tid = lock.lock(ps[i].candidate())
            for _ in range(20):
                idx, score, state = lock.update([p.candidate(0.01, rng) for p in ps])
                assert (idx, state) == (i, "tracking"), (ps[i].name, score, lock.last)
                assert 0.0 <= score <= 1.0
                assert lock.track_id == tid
            checked += 1
    assert checked >= 8


def test_locked_person_kept_when_someone_larger_appears(real_people: list[RealPerson]
                                                         ) -> None:
    """Lock on a person; a different real person then stands beside, 1.6x as tall and
    nearer the image centre: the lock keeps following the first one (and 'largest' and
    'center' would have switched)."""
    rng = np.random.default_rng(1)
    a, b = real_people[0], next(p for p in real_people if p.image_key != real_people[0].image_key)
    lock = OperatorLock()
    canvas = _frame()
    lock.lock(_place(a, canvas, 40, 150, 200, rng))
    for k in range(30):
        canvas = _frame()
        ca = _place(a, canvas, 40 + k, 150, 200, rng)
        cands = [ca]
        if k >= 10:  # the bigger person walks in at frame 10
            cands.append(_place(b, canvas, 260, 20, 330, rng))
            assert select_person(cands, "largest") == 1
            assert select_person(cands, "center", canvas.shape) == 1
        idx, score, state = lock.update(cands[::-1] if k % 2 else cands)  # order must not matter
        expect = (len(cands) - 1) if k % 2 else 0
        assert (idx, state) == (expect, "tracking"), (k, score, lock.last)


def _cut_sequence(a: RealPerson, b: RealPerson, cfg: OperatorLockConfig,
                  rng: np.random.Generator) -> list[tuple[int | None, str]]:
    """20 frames of A, 20 of B in exactly A's place and size, then 20 of A again (the hard
    case for box continuity: only body and appearance can tell)."""
    lock = OperatorLock(cfg, clock=FrameClock())
    out = []
    canvas = _frame()
    lock.lock(_place(a, canvas, 200, 60, 320, rng))
    for k in range(60):
        canvas = _frame()
        who = b if 20 <= k < 40 else a
        c = _place(who, canvas, 200 + (k % 3), 60, 320, rng)
        idx, _, state = lock.update([c])
        out.append((idx, state))
    return out


def test_cut_to_another_person_loses_and_reacquires_only_the_operator(
        real_people: list[RealPerson], similarity: np.ndarray) -> None:
    """A stream cutting from one real person to another (same place, same size) and back.

    For every pair whose identity score lies under the threshold by 0.1 or more (the
    measured separable pairs, see test_signature_separation): the second person is never
    followed, the state is operator_lost at frame N_LOST of the cut, and the operator
    is followed again only after n_reacquire frames of being back. Pairs: each person with
    its 3 most similar others (the hardest cases); the pairs that are not clearly separable
    are run too and what the lock did is printed."""
    n_lost = 4
    cfg = OperatorLockConfig(lost_after=_lost_after(n_lost), n_reacquire=4)
    rng = np.random.default_rng(2)
    ran = 0
    near: list[str] = []
    for ia, a in enumerate(real_people):
        others = [ib for ib, b in enumerate(real_people) if b is not a
                  and frozenset({a.name, b.name}) not in SAME_PERSON_PAIRS]
        sims = similarity[ia, others]
        order = np.argsort(sims)[::-1]
        for j in order[:3]:
            b = real_people[others[j]]
            seq = _cut_sequence(a, b, cfg, rng)
            if sims[j] >= cfg.threshold - 0.1:
                # not (clearly) separable by the signature: report what the lock did
                followed = sum(i is not None for i, _ in seq[20:40])
                near.append(f"{a.name} -> {b.name}: identity {sims[j]:.2f}, second person "
                            f"followed in {followed}/20 frames, final state {seq[39][1]}")
                continue
            assert all(i == 0 and s == "tracking" for i, s in seq[:20]), (a.name, seq[:20])
            b_part = seq[20:40]
            assert all(i is None for i, _ in b_part), (a.name, b.name, b_part)
            assert [s for _, s in b_part[:n_lost - 1]] == ["uncertain"] * (n_lost - 1), b_part
            assert all(s == "operator_lost" for _, s in b_part[n_lost - 1:]), b_part
            back = seq[40:]
            assert all(i is None for i, _ in back[:cfg.n_reacquire - 1]), back
            assert back[cfg.n_reacquire - 1] == (0, "tracking"), (a.name, b.name, back)
            assert all(s == "tracking" for _, s in back[cfg.n_reacquire - 1:])
            ran += 1
    print(f"\nseparable hardest pairs checked: {ran}; not separable ({len(near)}):")
    print("\n".join(near))
    assert ran >= len(real_people), f"only {ran} separable pairs among the hardest ones"


def test_no_reacquire_without_new_lock(real_people: list[RealPerson]) -> None:
    """reacquire=False: once lost, even the operator coming back is not followed until a
    new lock() (= a new ~/enable), which gives a new track id."""
    rng = np.random.default_rng(3)
    a = real_people[0]
    cfg = OperatorLockConfig(lost_after=_lost_after(3), n_reacquire=3, reacquire=False)
    lock = OperatorLock(cfg, clock=FrameClock())
    tid = lock.lock(_place(a, _frame(), 100, 60, 300, rng))
    for _ in range(3):
        lock.update([])
    assert lock.state == "operator_lost" and lock.last is not None
    assert lock.last.reason == "operator_lost"
    for _ in range(10):
        idx, score, state = lock.update([_place(a, _frame(), 100, 60, 300, rng)])
        assert idx is None and state == "operator_lost"
        assert score >= cfg.threshold  # it IS the operator; the policy says wait for enable
    c = _place(a, _frame(), 100, 60, 300, rng)
    assert lock.lock(c) != tid
    assert lock.update([c])[0] == 0


def test_flickering_match_is_not_followed(real_people: list[RealPerson]) -> None:
    """The operator seen only every other frame (a match flickering around the threshold):
    after the first miss nothing is followed until n_confirm frames in a row match, and a
    miss lost_after seconds after the last confirmed match is operator_lost, unconfirmed
    matches in between notwithstanding."""
    rng = np.random.default_rng(7)
    a = real_people[2]
    cfg = OperatorLockConfig(lost_after=_lost_after(4), n_confirm=2)
    lock = OperatorLock(cfg, clock=FrameClock())
    lock.lock(_place(a, _frame(), 100, 60, 300, rng))
    out = []
    for k in range(10):
        cands = [_place(a, _frame(), 100, 60, 300, rng)] if k % 2 == 0 else []
        out.append(lock.update(cands)[::2])
    assert out[0] == (0, "tracking")
    assert all(i is None for i, _ in out[1:]), out
    # matched at frame 0; frame 4 is 4 frames later but a match (unconfirmed): uncertain;
    # frame 5, a miss 5 frames after the last confirmed match: lost
    assert [s for _, s in out[1:6]] == ["uncertain"] * 4 + ["operator_lost"], out


def test_uncertain_then_lost_when_out_of_view(real_people: list[RealPerson]) -> None:
    rng = np.random.default_rng(4)
    lock = OperatorLock(OperatorLockConfig(lost_after=_lost_after(5)), clock=FrameClock())
    lock.lock(_place(real_people[1], _frame(), 100, 60, 300, rng))
    states = [lock.update([])[2] for _ in range(6)]
    assert states == ["uncertain"] * 4 + ["operator_lost"] * 2
    assert lock.last is not None and lock.last.score == 0.0


def test_signature_separation(real_people: list[RealPerson], similarity: np.ndarray
                              ) -> None:
    """Measure: identity score (body + appearance, no box continuity) for the same person
    seen again (new placement, size, brightness 0.9, joint jitter; and the one real
    same-man pair, MPII 004645041 / 060754485) vs every pair of different people.
    Prints the distributions; asserts the separation the lock relies on."""
    n = len(real_people)
    same = np.diag(similarity).tolist()
    real_same, diff = [], []
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            pair = frozenset({real_people[i].name, real_people[j].name})
            (real_same if pair in SAME_PERSON_PAIRS else diff).append(similarity[i, j])
    thr = OperatorLockConfig().threshold
    q = [0, 5, 25, 50, 75, 95, 100]
    def pct(v: list[float]) -> list[float]:
        return np.round(np.percentile(v, q), 3).tolist()

    print(f"\npeople: {len(real_people)}  threshold: {thr}  percentiles {q}")
    print(f"same person (re-placed):   n={len(same)}  {pct(same)}")
    print(f"same man, 2 video frames:  {np.round(real_same, 3).tolist()}")
    print(f"different people:          n={len(diff)}  {pct(diff)}")
    print(f"different pairs >= threshold: {100 * np.mean(np.array(diff) >= thr):.1f} %   "
          f"same under threshold: {100 * np.mean(np.array(same) < thr):.1f} %")
    assert np.mean(np.array(same) >= thr) >= 0.95
    assert np.mean(np.array(diff) < thr) >= 0.8
    assert np.median(same) - np.median(diff) >= 0.3


def test_bone_ratios_are_scale_free(real_people: list[RealPerson]) -> None:
    j = real_people[0].joints
    r1, r2 = bone_ratios(j), bone_ratios(j * 2.7 + 13.0)
    ok = np.isfinite(r1)
    assert ok.sum() >= 3
    np.testing.assert_allclose(r1[ok], r2[ok], atol=1e-9)
    assert np.isnan(bone_ratios(np.full((len(CANONICAL_JOINTS), 2), np.nan))).all()


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="box"):
        PersonCandidate(box=(0, 0, -1, 5), joints_2d=np.zeros((12, 2)))
    with pytest.raises(ValueError, match="joints_2d"):
        PersonCandidate(box=(0, 0, 1, 5), joints_2d=np.zeros((17, 2)))
    with pytest.raises(ValueError, match="image"):
        PersonCandidate(box=(0, 0, 1, 5), joints_2d=np.zeros((12, 2)),
                        image=np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="threshold"):
        OperatorLockConfig(threshold=1.5)
    with pytest.raises(ValueError, match="region"):
        OperatorLockConfig(policy="region")
    # a candidate without joints or image: the lock falls back to box continuity only
    lock = OperatorLock()
    nan = np.full((12, 2), np.nan)
    lock.lock(PersonCandidate(box=(10, 10, 50, 100), joints_2d=nan))
    idx, score, state = lock.update([PersonCandidate(box=(12, 10, 50, 100), joints_2d=nan)])
    assert (idx, state) == (0, "tracking") and score > 0.9


def test_unlocked_track_id_changes_when_the_choice_switches(
        real_people: list[RealPerson]) -> None:
    rng = np.random.default_rng(6)
    a, b = real_people[0], real_people[1]
    lock = OperatorLock(OperatorLockConfig(policy="largest"))
    canvas = _frame()
    lock.update([_place(a, canvas, 40, 60, 300, rng), _place(b, canvas, 400, 60, 200, rng)])
    first = lock.track_id
    canvas = _frame()
    lock.update([_place(a, canvas, 42, 60, 300, rng), _place(b, canvas, 400, 60, 200, rng)])
    assert lock.track_id == first
    canvas = _frame()
    idx, score, state = lock.update([_place(a, canvas, 40, 60, 200, rng),
                                     _place(b, canvas, 330, 20, 400, rng)])
    assert (idx, score, state) == (1, 0.0, "unlocked") and lock.track_id != first


# --------------------------------------------------------------------------- with MediaPipe


def _match_detection(person: RealPerson, cands: list[PersonCandidate]) -> int | None:
    """The detected candidate whose joints agree with the person's annotation (median
    distance over joints seen in both < 0.2 x sqrt(annotated box area), >= 4 joints)."""
    scale = math.sqrt(person.box[2] * person.box[3])
    best, best_d = None, math.inf
    for i, c in enumerate(cands):
        ok = np.isfinite(c.joints_2d).all(-1) & np.isfinite(person.joints).all(-1)
        if ok.sum() < 4:
            continue
        d = float(np.median(np.linalg.norm(c.joints_2d[ok] - person.joints[ok], axis=1)))
        if d < 0.2 * scale and d < best_d:
            best, best_d = i, d
    return best


def _moved(p: RealPerson, shift: np.ndarray) -> RealPerson:
    return RealPerson(p.name, p.image, p.box + np.array([*shift, 0, 0]), p.joints + shift,
                      p.image_key)


def test_detector_people_selectable_and_tracked(real_people: list[RealPerson]) -> None:
    """MediaPipe on the multi-person photos (detect_people: every person it finds). Each
    annotated person that one of the detections matches (joints within 0.2 x box size of the
    annotation) is locked and then followed through 4 more frames -- the photo shifted by a
    few pixels each frame and detected afresh -- with everyone found still a candidate.
    Prints how many annotated people were found."""
    from mocap_ros.estimation.detector import MediaPipePose, mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe not installed (pip install --no-deps -r "
                    "requirements-mediapipe.txt)")
    from mocap_ros.estimation.operator import candidate_from_landmarks
    from mocap_ros.estimation.people import detect_people

    by_image: dict[str, list[RealPerson]] = {}
    for p in real_people:
        by_image.setdefault(p.image_key, []).append(p)
    pose = MediaPipePose(static_image_mode=True)
    found = total = tracked = by_region = 0
    lines = []
    try:
        def detect(img: np.ndarray) -> list[PersonCandidate]:
            return [candidate_from_landmarks(q.box, q.landmarks, img)
                    for q in detect_people(img, pose, max_people=4)]

        for key, ps in by_image.items():
            if len(ps) < 2 and not key.startswith("multi/"):
                continue
            img0 = ps[0].image
            frames = []
            for k in range(5):  # the photo moved by (3k, 2k) px: a person drifting
                m = np.float32([[1, 0, 3 * k], [0, 1, 2 * k]])
                img = cv2.warpAffine(img0, m, (img0.shape[1], img0.shape[0]),
                                     borderMode=cv2.BORDER_REPLICATE)
                frames.append((np.ascontiguousarray(img), np.array([3 * k, 2 * k])))
            dets = [detect(img) for img, _ in frames]
            for p in ps:
                total += 1
                i0 = _match_detection(p, dets[0])
                lines.append(f"{p.name}: {'found' if i0 is not None else 'NOT found'} among "
                             f"{len(dets[0])} detections")
                if i0 is None:
                    continue
                found += 1
                # "selectable" without a lock too: a region drawn on the person's box
                by_region += select_person(dets[0], "region", region=p.box) == i0
                lock = OperatorLock()
                lock.lock(dets[0][i0])
                missed = False
                for (_, shift), cands in zip(frames[1:], dets[1:], strict=True):
                    moved = _moved(p, shift)
                    expect = _match_detection(moved, cands)
                    idx, score, state = lock.update(cands)
                    missed = missed or idx is None
                    if expect is None:
                        # the detector has no joints matching this person in this frame: the
                        # lock may follow nobody, or a detection in the person's place, but
                        # never one that matches ANOTHER annotated person
                        if idx is not None:
                            others = [q for q in ps if q is not p]
                            assert all(_match_detection(_moved(q, shift), [cands[idx]])
                                       is None for q in others), (p.name, lock.last)
                            assert box_iou(cands[idx].box, moved.box) >= 0.3
                        continue
                    if idx is None and missed:
                        # after a miss the lock waits for n_confirm matching frames in a row
                        assert state == "uncertain", (p.name, lock.last)
                    else:
                        assert (idx, state) == (expect, "tracking"), (p.name, score,
                                                                      lock.last)
                    missed = missed or idx is None
                tracked += 1
    finally:
        pose.close()
    print(f"\nannotated people in multi-person photos: {total}, matched by a detection: "
          f"{found}, tracked over 5 shifted frames: {tracked}, chosen by policy 'region' "
          f"on its annotated box: {by_region}")
    print("\n".join(lines))
    assert found >= total // 2
    assert tracked == found


def test_real_video_frames_keep_the_locked_player() -> None:
    """PoseTrack video (5 consecutive real frames, several players; no annotations): lock on
    each player MediaPipe finds in frame 0 and run the lock on frames 1-4 with every
    detection as a candidate. For a player clear of the others (box IoU < 0.1) and detected
    in every frame, the followed detection must be that player's (box overlap chain). Prints
    each frame's match scores (same player vs others) for every player."""
    from mocap_ros.estimation.detector import MediaPipePose, mediapipe_available
    from mocap_ros.estimation.operator import candidate_from_landmarks
    from mocap_ros.estimation.people import detect_people

    root = pack_root()
    if root is None:
        pytest.skip("real photo pack absent (see real_people)")
    if not mediapipe_available():
        pytest.skip("mediapipe not installed (pip install --no-deps -r "
                    "requirements-mediapipe.txt)")
    paths = sorted((root / "video/posetrack18_000001_mpiinew_test").glob("*.jpg"))
    assert len(paths) == 5
    pose = MediaPipePose(static_image_mode=True)
    try:
        dets = []
        for path in paths:
            img = np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])
            dets.append([candidate_from_landmarks(q.box, q.landmarks, img)
                         for q in detect_people(img, pose, max_people=4)])
    finally:
        pose.close()
    def chain(i: int) -> list[int] | None:
        """The detection of player i in each frame by box overlap (IoU > 0.5), or None."""
        out, prev = [i], dets[0][i].box
        for cands in dets[1:]:
            ious = [box_iou(prev, c.box) for c in cands]
            if not ious or max(ious) <= 0.5:
                return None
            out.append(int(np.argmax(ious)))
            prev = cands[out[-1]].box
        return out

    clear = [i for i, c in enumerate(dets[0])
             if all(box_iou(c.box, o.box) < 0.1 for j, o in enumerate(dets[0]) if j != i)]
    tested = 0
    for i in range(len(dets[0])):
        expected = chain(i)
        lock = OperatorLock()
        lock.lock(dets[0][i])
        for t, cands in enumerate(dets[1:], 1):
            idx, _, state = lock.update(cands)
            assert lock.last is not None
            print(f"player {i} frame {t}: scores {np.round(lock.last.scores, 3).tolist()} "
                  f"followed {idx} (box track says {None if expected is None else expected[t]})"
                  f" {state}")
            if i in clear and expected is not None:
                assert (idx, state) == (expected[t], "tracking")
        tested += i in clear and expected is not None
    # the others (a tangle of two players in one box, missed in some frames) are printed
    assert tested >= 1, "no player both clear of the others and detected in all 5 frames"


def test_detect_people_finds_more_than_the_first(real_people: list[RealPerson]) -> None:
    """detect_people on a photo with three annotated people returns several distinct boxes,
    the first being the one PersonDetector alone returns; bad frames are clear errors."""
    from mocap_ros.estimation.detector import MediaPipePose, PersonDetector, mediapipe_available
    from mocap_ros.estimation.people import detect_boxes, detect_people

    if not mediapipe_available():
        pytest.skip("mediapipe not installed (pip install --no-deps -r "
                    "requirements-mediapipe.txt)")
    img = next(p.image for p in real_people if p.image_key.endswith("ff945ae2e729f24eea992814"
                                                                   "639d59b3bdec8bd8.jpg"))
    pose = MediaPipePose(static_image_mode=True)
    try:
        people = detect_people(img, pose)
        single = PersonDetector(pose=pose).detect(img)
        boxes = detect_boxes(img, pose, max_people=2)
        with pytest.raises(ValueError, match="RGB"):
            detect_people(img[:, :, 0], pose)
        with pytest.raises(ValueError, match="max_people"):
            detect_people(img, pose, max_people=0)
    finally:
        pose.close()
    assert len(people) >= 2
    assert [p.order for p in people] == list(range(len(people)))
    assert single is not None
    np.testing.assert_allclose(people[0].box, single, atol=1e-6)
    assert len(boxes) == 2
    for i in range(len(people)):
        for j in range(i):
            assert box_iou(people[i].box, people[j].box) < 0.5


def test_operator_detector_is_a_person_detector(real_people: list[RealPerson]) -> None:
    """OperatorDetector (PersonDetector's interface) on real photos: unlocked it returns the
    policy's person; armed on that person, a frame where another real person is larger still
    returns the operator; a frame without the operator returns None with operator_uncertain,
    then operator_lost."""
    from mocap_ros.estimation.detector import MediaPipePose, mediapipe_available
    from mocap_ros.estimation.people import OperatorDetector

    if not mediapipe_available():
        pytest.skip("mediapipe not installed (pip install --no-deps -r "
                    "requirements-mediapipe.txt)")
    # two single-person MPII photos side by side, as one frame
    a = next(p for p in real_people if p.name == "052475643#0")
    b = next(p for p in real_people if p.name == "051423444#0")
    rng = np.random.default_rng(8)

    def frame(with_b: bool, b_height: float) -> np.ndarray:
        canvas = _frame()
        _place(a, canvas, 30, 100, 300, rng)
        if with_b:
            _place(b, canvas, 330, 10, b_height, rng)
        return canvas

    pose = MediaPipePose(static_image_mode=True)
    cfg = OperatorLockConfig(lost_after=_lost_after(2), policy="largest")
    try:
        det = OperatorDetector(OperatorLock(cfg, clock=FrameClock()), pose=pose)
        box = det.detect(frame(False, 0))
        assert box is not None and box[0] < 320 and det.last.state == "unlocked"
        tid = det.arm()
        assert tid is not None and det.lock.locked
        for _ in range(3):
            box = det.detect(frame(True, 460))
            assert len(det.last_found) == 2, "MediaPipe should find both people"
            assert box is not None and box[0] < 320, (box, det.last)
            assert det.last.state == "tracking" and det.last.track_id == tid
        empty = _frame()
        _place(b, empty, 330, 10, 460, rng)
        assert det.detect(empty) is None and det.last.reason == "operator_uncertain"
        assert det.landmarks(empty) is None and det.last.reason == "operator_lost"
        det.disarm()
        assert det.detect(empty) is not None and det.last.state == "unlocked"
    finally:
        pose.close()


def test_lost_after_is_seconds_whatever_the_frame_rate(real_people: list[RealPerson]) -> None:
    """Issue 21 item 9: the operator out of view is lost after lost_after SECONDS: 5 frames
    at 10 fps, 2 at 2.5 fps, 20 at 40 fps -- not after a fixed number of frames (which made
    time-to-lost vary several fold with load)."""
    rng = np.random.default_rng(9)
    for fps, frames in ((10.0, 5), (2.5, 2), (40.0, 20)):
        t = [0.0]

        def clock(t=t, fps=fps) -> float:
            t[0] += 1.0 / fps
            return t[0]

        lock = OperatorLock(OperatorLockConfig(lost_after=0.5 - 1e-6), clock=clock)
        lock.lock(_place(real_people[1], _frame(), 100, 60, 300, rng))
        states = [lock.update([])[2] for _ in range(frames + 1)]
        assert states == ["uncertain"] * (frames - 1) + ["operator_lost"] * 2, (fps, states)
        assert lock.last is not None and lock.last.reason == "operator_lost"


def _dark_clothed(p: RealPerson) -> bool:
    """Torso median brightness V < 80 of 255: dark clothes, all in the colour histograms'
    few dark bins (bench/operator_separation.py uses the same rule)."""
    from mocap_ros.estimation.operator import region_polygons

    polys = region_polygons(p.joints)
    if "torso" not in polys:
        return False
    m = np.zeros(p.image.shape[:2], np.uint8)
    cv2.fillConvexPoly(m, np.round(polys["torso"][0]).astype(np.int32), 1)
    return float(np.median(cv2.cvtColor(p.image, cv2.COLOR_RGB2HSV)[m.astype(bool)][:, 2])) < 80


def test_dark_clothed_people_are_told_apart(real_people: list[RealPerson],
                                            similarity: np.ndarray) -> None:
    """Issue 21 item 8: different people in dark clothes. With colour, proportions and box
    alone, 8 of the 20 ordered pairs of the pack's 5 dark-clothed people scored over the
    threshold (0.62-0.72: the second person would be followed as the operator); the head
    region and the torso texture bring that to 2 (measured; bench/operator_separation.py),
    while each of them still matches themselves re-seen. What remains is documented
    (docs/operator_lock.md): it is an interlock, not identification."""
    thr = OperatorLockConfig().threshold
    dark = [i for i, p in enumerate(real_people) if _dark_clothed(p)]
    assert len(dark) >= 5, [real_people[i].name for i in dark]
    pairs = [(i, j) for i in dark for j in dark if i != j
             and frozenset({real_people[i].name, real_people[j].name}) not in SAME_PERSON_PAIRS]
    over = [(real_people[i].name, real_people[j].name, round(float(similarity[i, j]), 2))
            for i, j in pairs if similarity[i, j] >= thr]
    print(f"\ndark pairs over the threshold: {len(over)}/{len(pairs)} {over}")
    assert len(over) <= 0.15 * len(pairs), over
    assert all(similarity[i, i] >= thr for i in dark)
