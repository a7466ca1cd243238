"""One configuration dataclass for the whole core; the ROS node mirrors it as parameters.

Every field carries its description and allowed values in ``field(metadata=...)`` so that
the node can declare ROS parameters (with descriptors and ranges) from this single source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field
from typing import Any

DEVICES_HELP = "auto | cpu | cuda | cuda:N"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
BODY_MODELS = ("smpl", "smplx", "skeleton")
GENDERS = ("neutral", "male", "female")
BBOX_MODES = ("full_frame", "roi", "track", "detector")
BACKENDS = ("auto", "hmr", "landmarks")
RUNTIMES = ("torch", "onnxruntime")
HAND_MODELS = ("full", "lite")


def _f(default: Any, description: str, *, choices: tuple[str, ...] | None = None,
       min_value: float | None = None, max_value: float | None = None,
       auto: bool = False) -> Any:
    """``auto``: a number field that also takes the string "auto" (its range applies to the
    numbers)."""
    meta = {"description": description, "choices": choices, "min": min_value, "max": max_value,
            "auto": auto}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def default_of(cls: type, name: str) -> Any:
    """The declared default of field ``name`` of the dataclass ``cls``: the one place a
    default lives, for the code that takes the same value outside the node (SafetyParams,
    the grippers)."""
    f = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


@dataclass
class MocapConfig:
    backend: str = _f("auto", "Pose estimator: hmr (FrankMocap's regressor; needs its model "
                      "files), landmarks (MediaPipe BlazePose + IK; no licensed files), or auto "
                      "(hmr when model files are configured, else landmarks).", choices=BACKENDS)
    device: str = _f("auto", f"Where inference runs: {DEVICES_HELP}. auto = first CUDA GPU, "
                     "else CPU (logged once).")
    precision: str = _f("auto", "Network precision. auto = fp16 on CUDA, fp32 on CPU. Rotation "
                        "and body-model math always stay fp32.", choices=PRECISIONS)
    n_iter: int = _f(1, "HMR regressor iterations: 1 = fast, 3 = FrankMocap's original.",
                     min_value=1, max_value=5)
    assets_dir: str = _f("", "FrankMocap checkout or its extra_data/ folder holding the body "
                         "checkpoint, smpl_mean_params.npz and the SMPL model.")
    checkpoint: str = _f("", "Explicit path of FrankMocap's body checkpoint (.pt); overrides "
                         "assets_dir.")
    mean_params: str = _f("", "Explicit path of smpl_mean_params.npz; overrides assets_dir.")
    smpl_model: str = _f("", "Explicit path of the SMPL/SMPL-X model file (.pkl/.npz); "
                         "overrides assets_dir.")
    body_model: str = _f("smpl", "Kinematic model: smpl, smplx, or skeleton (approximate "
                         "bone lengths, no SMPL file needed, no mesh).", choices=BODY_MODELS)
    gender: str = _f("neutral", "SMPL model gender.", choices=GENDERS)
    return_vertices: bool = _f(False, "Also compute the mesh vertices (slower; off for speed).")
    bbox_mode: str = _f("full_frame", "Person box: full_frame (whole frame, padded to a "
                        "square), roi (fixed box), track (from the previous pose's joints, "
                        "re-found when lost) or detector (MediaPipe person detector).",
                        choices=BBOX_MODES)
    detector_every_n: int = _f(5, "bbox_mode detector/track: run the person detector on one "
                               "frame in n (in the background).", min_value=1, max_value=1000)
    roi: list[float] = _f([0.0, 0.0, 0.0, 0.0], "Fixed person box x, y, w, h in pixels for "
                          "bbox_mode=roi.")
    resize_short: int = _f(0, "Downscale frames whose short side exceeds this many pixels "
                           "before cropping (0 = off). Outputs stay in input pixels.",
                           min_value=0, max_value=4096)
    min_crop_px: float = _f(20.0, "Crops whose side is under this many pixels give an invalid "
                            "pose (FrankMocap skips them too).", min_value=1.0, max_value=1e4)
    focal_length: float = _f(0.0, "Focal length in pixels when no CameraInfo is known; 0 = from "
                             "fallback_hfov_deg.", min_value=0.0, max_value=1e5)
    fallback_hfov_deg: float = _f(60.0, "Horizontal field of view assumed when neither "
                                  "CameraInfo nor focal_length is given (typical USB webcam).",
                                  min_value=10.0, max_value=170.0)
    min_confidence: float = _f(0.0, "Poses whose confidence is below this are marked invalid.",
                               min_value=0.0, max_value=1.0)
    fast_path: bool = _f(True, "On CUDA: static buffers and a CUDA graph for crop + HMR + "
                         "kinematics (falls back to eager, logged, when capture fails). "
                         "Ignored on the CPU.")
    runtime: str = _f("torch", "Inference runtime for the HMR network: torch, or onnxruntime "
                      "(CPU only; exported from the same weights at start-up).",
                      choices=RUNTIMES)
    hands: bool = _f(False, "Also estimate both hands (MediaPipe's hand landmark model on ROIs "
                     "from the body's wrists): BodyPose left_hand/right_hand, and the SMPL "
                     "wrist rotation from the observed palm. Off: the hands say invalid, "
                     "reason 'disabled'. Costs one hand pass per visible hand.")
    hands_min_presence: float = _f(0.5, "hands: a hand whose presence score is below this is "
                                   "invalid (reason low_presence).", min_value=0.0,
                                   max_value=1.0)
    hands_min_wrist_visibility: float = _f(0.3, "hands: no hand pass for a wrist whose "
                                           "visibility (landmarks) or body confidence (hmr) is "
                                           "below this (reason no_wrist).", min_value=0.0,
                                           max_value=1.0)
    hands_min_roi_px: float = _f(24.0, "hands: no hand pass for a hand smaller than this "
                                 "(the side in pixels of the ROI it needs, 3.4 x palm; "
                                 "reason too_small). 24: below it the model misses most "
                                 "real hands and the rest miss PCK 0.85. 0: always try.",
                                 min_value=0.0)
    hands_model: str = _f("full", "hands: MediaPipe hand landmark model from the wheel: full, "
                          "or lite (about 2x faster per hand; same 2D accuracy on the real "
                          "hand photos, PCK@0.2 0.90 vs 0.91, but noisier 3D: finger curls "
                          "and aperture vary more between views).", choices=HAND_MODELS)

    def validate(self) -> MocapConfig:
        """Raise ValueError naming the field and its allowed values for anything out of range."""
        _validate_fields(self)
        if self.device != "auto" and self.device != "cpu" and not (
            self.device == "cuda" or (self.device.startswith("cuda:")
                                      and self.device[5:].isdigit())
        ):
            raise ValueError(f"device={self.device!r} is not one of {DEVICES_HELP}")
        if len(self.roi) != 4:
            raise ValueError(f"roi must have 4 numbers (x, y, w, h), got {self.roi!r}")
        if self.bbox_mode == "roi" and (self.roi[2] <= 0 or self.roi[3] <= 0):
            raise ValueError(f"roi={self.roi!r}: bbox_mode=roi needs a positive width and height")
        return self

    def replace(self, **changes: Any) -> MocapConfig:
        return dataclasses.replace(self, **changes).validate()

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MocapConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown configuration keys: {unknown}; known: {sorted(names)}")
        return cls(**values).validate()


IMAGE_TRANSPORTS = ("raw", "compressed")
IMAGE_RELIABILITY = ("best_effort", "reliable")
OPERATOR_POLICIES = ("largest", "center", "region")


@dataclass
class NodeSettings:
    """The ROS edge's own settings (topics are remapped, not configured)."""

    image_transport: str = _f("raw", "raw: subscribe sensor_msgs/Image on image_raw; compressed: "
                              "sensor_msgs/CompressedImage on image_raw/compressed.",
                              choices=IMAGE_TRANSPORTS)
    frame_prefix: str = _f("mocap_", "Prefix of the TF frames of the body's joints "
                           "(<prefix>pelvis, <prefix>left_hip, ...).")
    camera_frame: str = _f("camera_optical_frame", "Frame used for images whose header has "
                           "no frame_id (REP-103 optical frame: x right, y down, z forward).")
    publish_tf: bool = _f(True, "Broadcast the joint frames on /tf (valid poses only).")
    publish_markers: bool = _f(True, "Publish a MarkerArray skeleton on mocap/markers for RViz.")
    publish_debug_image: bool = _f(False, "Publish an overlay image on mocap/debug_image.")
    publish_hand_tf: bool = _f(False, "With hands on: also broadcast a TF frame per hand "
                               "keypoint (<prefix>left_hand_<keypoint>, parent: the camera "
                               "frame; valid hands only; 42 frames per pose).")
    process_every_n: int = _f(1, "Process one frame in n (the newest); the others are skipped.",
                              min_value=1, max_value=1000)
    max_image_pixels: int = _f(4096 * 4096, "Frames larger than this many pixels are dropped.",
                               min_value=1, max_value=1 << 30)
    diagnostics_period: float = _f(1.0, "Seconds between /diagnostics reports.",
                                   min_value=0.1, max_value=60.0)
    camera_timeout: float = _f(1.0, "Seconds without a frame after which diagnostics report the "
                               "camera as stalled.", min_value=0.05, max_value=600.0)
    image_reliability: str = _f("best_effort", "QoS reliability of the image subscription: "
                                "best_effort (sensor data; a lost frame is never resent) or "
                                "reliable (the publisher resends; for large raw images when "
                                "/diagnostics reports frames lost before the callback, with a "
                                "camera that publishes reliable).", choices=IMAGE_RELIABILITY)
    diagnostics_window: float = _f(10.0, "Seconds over which /diagnostics judges bad frames, "
                                   "errors and lost frames (totals are kept for the node's "
                                   "life).", min_value=0.5, max_value=3600.0)
    # --- operator lock (issue 15; mocap_ros.estimation.operator)
    operator_lock: bool = _f(False, "Find every person in view (MediaPipe, one pass per person "
                             "plus one) and follow one: by operator_policy while unlocked; "
                             "locked on to the followed person by the ~/lock service "
                             "(teleop_node calls it on ~/enable) and then only that person. "
                             "Losing them publishes valid=false, reason operator_lost. Both "
                             "backends; hmr then runs the detector on every frame, inline.")
    operator_policy: str = _f("largest", "Who is followed while unlocked (and locked on to): "
                              "largest box, center (box nearest the image centre) or region "
                              "(most inside operator_region).", choices=OPERATOR_POLICIES)
    operator_region: list[float] = _f([0.0, 0.0, 0.0, 0.0], "x, y, w, h pixels of the region "
                                      "for operator_policy region.")
    operator_threshold: float = _f(0.6, "Match score (body proportions, colour of clothing "
                                   "and head, torso texture, box continuity; 0..1) a person "
                                   "needs to count as the locked operator.",
                                   min_value=0.05, max_value=0.95)
    operator_lost_after: float = _f(0.5, "Seconds since the operator last matched after which "
                                    "a frame under operator_threshold makes them lost "
                                    "(reason operator_lost; before that: operator_uncertain, "
                                    "nobody followed).", min_value=0.01, max_value=60.0)
    operator_n_reacquire: int = _f(5, "operator_resume_same_operator: consecutive matching "
                                   "frames (one box track) before a lost operator is followed "
                                   "again.", min_value=1, max_value=1000)
    operator_max_people: int = _f(4, "Most people looked for per frame (each costs one "
                                  "MediaPipe pass).", min_value=1, max_value=16)
    operator_resume_same_operator: bool = _f(False, "Once lost, follow the operator again "
                                             "(same track id) when they match for "
                                             "operator_n_reacquire frames; false: only a new "
                                             "lock (teleop ~/enable) resumes.")

    def validate(self) -> NodeSettings:
        _validate_fields(self)
        if len(self.operator_region) != 4:
            raise ValueError(f"operator_region must have 4 numbers (x, y, w, h), got "
                             f"{self.operator_region!r}")
        if self.operator_policy == "region" and (self.operator_region[2] <= 0
                                                 or self.operator_region[3] <= 0):
            raise ValueError(f"operator_region={self.operator_region!r}: operator_policy "
                             "region needs a positive width and height")
        return self


def _validate_fields(obj: Any) -> Any:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        meta = f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"{f.name}={value!r} is not one of {list(meta['choices'])}")
        lo, hi = meta.get("min"), meta.get("max")
        if meta.get("auto") and value != "auto" and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{f.name}={value!r} is neither a number nor 'auto'")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
            (lo is not None and value < lo) or (hi is not None and value > hi)
        ):
            raise ValueError(f"{f.name}={value!r} is outside [{lo}, {hi}]")
    return obj


OUTPUT_TYPES = ("joint_state", "joint_trajectory", "float64_multi_array")
HOLD_MODES = ("hold", "safe_pose")
OPERATOR_RESUME = ("enable", "same_operator")
RETARGET_CHOICES = ("", "task", "joint")


@dataclass
class TeleopSettings:
    """teleop_node's parameters; safety thresholds are enforced in the node itself."""

    robot_config: str = _f("", "Joint map YAML (config/teleop_*.yaml). Empty = the installed "
                           "teleop_generic.yaml.")
    output_type: str = _f("joint_state", "joint_state (sensor_msgs/JointState), "
                          "joint_trajectory (for joint_trajectory_controller: one point, "
                          "positions only, time_from_start = the time the step covered) or "
                          "float64_multi_array (for forward_command_controller), published on "
                          "joint_commands.", choices=OUTPUT_TYPES)
    rate_hz: float = _f(50.0, "Command rate (Hz), independent of the camera's. The loop and "
                        "the velocity/acceleration limits run on the steady (wall) clock, also "
                        "under use_sim_time.", min_value=1.0, max_value=1000.0)
    hold_mode: str = _f("hold", "When a pose is refused: hold (brake to a stop and keep it) or "
                        "safe_pose (move to the map's safe pose at the limits).",
                        choices=HOLD_MODES)
    pose_timeout: float | str = _f(
        "auto", "Poses older than this (s, header stamp vs node clock) are stale and never "
        "become motion; when the newest pose is this old the status says stale, whatever else "
        "was wrong. auto: measured from the poses (p95 of their age on arrival + two pose "
        "periods, over the last 5 s) within [pose_timeout_min, pose_timeout_max]; teleop/"
        "status and /diagnostics show the budget in force and say estimator_too_slow when "
        "the estimator would need more than the cap.", min_value=0.01, max_value=5.0,
        auto=True)
    pose_timeout_max: float = _f(0.5, "pose_timeout auto: the hard cap (s). A dead estimator "
                                 "is reported stale at most this long after its last pose's "
                                 "capture.", min_value=0.01, max_value=5.0)
    pose_timeout_min: float = _f(0.2, "pose_timeout auto: the floor (s), so that a fast, "
                                 "steady estimator does not turn every late frame or late "
                                 "control step (a busy CPU) stale.",
                                 min_value=0.01, max_value=5.0)
    clock_skew_tolerance: float = _f(0.05, "Poses stamped further than this (s) in the future "
                                     "are refused.", min_value=0.0, max_value=5.0)
    require_person_check: bool = _f(True, "Follow only bodies a person detector confirmed in "
                                    "their frame (BodyPose.person_check == CONFIRMED): HMR "
                                    "regresses a body from an empty scene too. false accepts "
                                    "UNCHECKED poses (hmr with full_frame/roi boxes); "
                                    "NOT_FOUND is always refused. Refusals read 'unconfirmed'.")
    min_confidence: float = _f(0.5, "Poses with a lower confidence are refused. The "
                               "confidence is the lowest per-joint confidence "
                               "(BodyPose.joint_confidence) over the joints the robot map "
                               "follows; the whole-body confidence when a pose has none.",
                               min_value=0.0, max_value=1.0)
    max_jump: float = _f(0.8, "A followed angle changing by more than this (rad, wrapped) "
                         "between accepted poses, or a joint command by more than this times "
                         "its map scale, is a jump and refused.", min_value=0.01,
                         max_value=6.3)
    jump_window: float = _f(0.5, "Jumps are judged against a pose at most this old (s).",
                            min_value=0.01, max_value=10.0)
    filter_min_cutoff: float = _f(5.25, "One Euro filter minimum cutoff (Hz, per stage).",
                                  min_value=0.01, max_value=100.0)
    filter_beta: float = _f(0.05, "One Euro filter speed coefficient.", min_value=0.0,
                            max_value=100.0)
    filter_d_cutoff: float = _f(1.0, "One Euro filter derivative cutoff (Hz).",
                                min_value=0.01, max_value=100.0)
    filter_type: str = _f("one_euro", "Pose filter: one_euro (speed-adaptive low-pass) or "
                          "kalman (constant-velocity Kalman: ramps without lag, ~1.5 deg "
                          "overshoot when a fast motion stops). Numbers: bench/RESULTS.md.",
                          choices=("one_euro", "kalman"))
    filter_measurement_noise: float = _f(0.03, "Kalman filter: pose noise (rad, std).",
                                         min_value=1e-4, max_value=1.0)
    filter_process_noise: float = _f(0.1, "Kalman filter: acceleration noise density "
                                     "(rad^2/s^3); more follows faster and smooths less.",
                                     min_value=1e-4, max_value=1e4)
    joint_states_timeout: float = _f(0.5, "~/enable needs, for every joint of the map, a "
                                     "joint_states entry this recent (s; merged per joint "
                                     "across publishers): commands start from where the "
                                     "robot is.", min_value=0.0, max_value=60.0)
    retarget: str = _f("", "Override the robot YAML's retarget mode: task (operator wrist -> "
                       "end-effector IK with collision constraints) or joint (per-joint "
                       "maps, collision-checked when the YAML has a model); empty = the "
                       "YAML's.", choices=RETARGET_CHOICES)
    allow_enable_without_joint_states: bool = _f(
        False, "Let ~/enable start from the last command (or the safe pose) when no fresh "
        "joint_states names every joint. The first command can then be a step away from the "
        "robot's real position: for simulation, or controllers that ramp by themselves.")
    grippers: bool = _f(False, "Drive the robot YAML's `gripper` section from the operator's "
                        "hands (BodyPose.left_hand/right_hand: mocap_node needs hands: true): "
                        "finger joints published with the arm's, or control_msgs/"
                        "GripperCommand goals. Enabled and disabled with the arm; a stale, "
                        "invalid or low-confidence hand holds the gripper.")
    # --- one operator (issue 15): the robot follows the person who armed it, nobody else
    operator_lock_service: str = _f("", "mocap_node's operator lock service (mocap_ros/srv/"
                                    "LockOperator, e.g. /mocap_node/lock; mocap_node "
                                    "operator_lock: true). ~/enable then locks mocap_node on "
                                    "to the person it follows and answers only after the lock "
                                    "did (refused when the service is not up, nobody is in "
                                    "view, or no answer comes within operator_lock_timeout) "
                                    "and disable releases it. Empty: no lock is armed; a pose "
                                    "saying operator_lost, or a different track id than the "
                                    "first one followed, still holds (reason operator_lost).")
    operator_lock_timeout: float = _f(2.0, "Seconds ~/enable waits for the operator lock's "
                                      "answer; none by then: teleop stays (or is) disabled, "
                                      "teleop/status reason operator_lock_failed.",
                                      min_value=0.1, max_value=60.0)
    operator_resume: str = _f("enable", "After operator_lost: enable (only a new ~/enable "
                              "resumes, locking on afresh) or same_operator (also resume when "
                              "the armed track id is back in state tracking for "
                              "operator_resume_poses poses; needs mocap_node's "
                              "operator_resume_same_operator). Published as "
                              "teleop/status operator_resume.", choices=OPERATOR_RESUME)
    operator_resume_poses: int = _f(5, "operator_resume same_operator: consecutive poses of the "
                                    "armed operator, tracked, before following again.",
                                    min_value=1, max_value=1000)

    def validate(self) -> TeleopSettings:
        _validate_fields(self)
        if self.pose_timeout_min > self.pose_timeout_max:
            raise ValueError(f"pose_timeout_min={self.pose_timeout_min} exceeds "
                             f"pose_timeout_max={self.pose_timeout_max}")
        return self


# ---------------------------------------------------------------- camera_node
PIXEL_FORMATS = ("MJPG", "YUYV", "any")
ENCODINGS = ("rgb8", "bgr8")


@dataclass
class CameraSettings:
    source: str = _f("0", "What to play: a V4L2 camera by index (0) or device (/dev/video0), a "
                     "video file (clip.mp4), a folder of images (frames/), or "
                     "synthetic[:SCRIPT[:FIGURE]] (a rendered operator with known motion; "
                     "its truth on synthetic/truth).")
    pixel_format: str = _f("MJPG", "Pixel format asked of a camera: MJPG (compressed; most "
                           "webcams reach 30 fps at 720p only in it), YUYV (uncompressed), or "
                           "any (keep the camera's). What was granted is logged and on "
                           "/diagnostics.", choices=PIXEL_FORMATS)
    width: int = _f(640, "Image width asked of a camera (0 = the camera's own).",
                    min_value=0, max_value=16384)
    height: int = _f(480, "Image height asked of a camera (0 = the camera's own).",
                     min_value=0, max_value=16384)
    fps: float = _f(30.0, "Frame rate asked of a camera (0 = the camera's own); for an image "
                    "folder, the rate its images are played at. Video files play at their "
                    "own timestamps.", min_value=0.0, max_value=1000.0)
    frame_id: str = _f("camera_optical_frame", "frame_id of image_raw and camera_info (an "
                       "optical frame: x right, y down, z forward).")
    camera_info_url: str = _f("", "Calibration in ROS camera_calibration YAML (what "
                              "cameracalibrator saves): a path, file:///path or "
                              "package://pkg/path. Empty = a pinhole from fov_deg, said in "
                              "the log and on /diagnostics.")
    camera_name: str = _f("camera", "Camera name: ${NAME} in camera_info_url; a calibration "
                          "file for another camera name is reported.")
    fov_deg: float = _f(60.0, "Horizontal field of view (degrees) for camera_info when no "
                        "calibration file is given (typical USB webcam).",
                        min_value=10.0, max_value=170.0)
    loop: bool = _f(False, "Video file / image folder: start again at the end.")
    realtime: bool = _f(True, "Video file / image folder: release frames at their timestamps "
                        "(true) or as fast as they can be read (false).")
    publish_compressed: bool = _f(False, "Also publish image_raw/compressed: the camera's or "
                                  "file's own JPEG bytes when it delivers MJPG/JPEG (no "
                                  "re-encoding), else a JPEG encoded here.")
    jpeg_quality: int = _f(90, "Quality of JPEGs encoded here for image_raw/compressed.",
                           min_value=1, max_value=100)
    encoding: str = _f("rgb8", "image_raw encoding: rgb8 (mocap_node reads it without a "
                       "copy) or bgr8 (OpenCV's order).", choices=ENCODINGS)
    reopen_max_interval: float = _f(5.0, "Longest wait (s) between attempts to re-open a "
                                    "source that went away (attempts start 0.25 s apart "
                                    "and double).", min_value=0.25, max_value=600.0)
    diagnostics_period: float = _f(1.0, "Seconds between /diagnostics reports.",
                                   min_value=0.1, max_value=60.0)
    frame_timeout: float = _f(2.0, "Seconds without a frame while streaming after which "
                              "diagnostics report the stream as stalled.",
                              min_value=0.05, max_value=600.0)

    def validate(self) -> CameraSettings:
        _validate_fields(self)
        if not self.source.strip():
            raise ValueError("source is empty: give a camera index, /dev/videoN, a video file "
                             "or an image folder")
        if not self.frame_id.strip():
            raise ValueError("frame_id is empty: tf2 cannot use an image without a frame")
        return self


# ---------------------------------------------------------------- sim_robot
SIM_COMMAND_TYPES = OUTPUT_TYPES


@dataclass
class SimSettings:
    """sim_robot's parameters (MuJoCo robot under joint position control)."""

    robot: str = _f("fr3", "Robot model: a shipped name (fr3, g1; G1 with its base fixed) or "
                    "a path to an MJCF or URDF file.")
    limits_config: str = _f("", "Teleop joint map YAML whose enforced velocity/acceleration "
                            "limits commands are checked against (config/teleop_*.yaml). "
                            "Empty = teleop_<robot>.yaml for a shipped robot; joints it does "
                            "not name use the model's velocity limits and "
                            "default_acceleration_limit.")
    default_acceleration_limit: float = _f(10.0, "Acceleration limit (rad/s^2) for joints the "
                                           "limits config does not name.",
                                           min_value=0.01, max_value=1000.0)
    limit_tolerance: float = _f(0.02, "Relative margin before a command counts as exceeding "
                                "a limit (0.02 = 2 % over).", min_value=0.0, max_value=10.0)
    command_type: str = _f("joint_state", "Message type on joint_commands: joint_state, "
                           "joint_trajectory (interpolated through its points, honouring "
                           "time_from_start) or float64_multi_array (order: joint_order).",
                           choices=SIM_COMMAND_TYPES)
    joint_order: str = _f("", "Comma-separated joint names of a Float64MultiArray command. "
                          "Empty = the limits config's joint order (what teleop_node sends).")
    publish_rate_hz: float = _f(200.0, "joint_states rate (Hz); the physics (2 ms steps) is "
                                "advanced to the clock at every publish.",
                                min_value=100.0, max_value=1000.0)
    bandwidth_hz: float = _f(8.0, "Position-loop bandwidth of every joint (Hz): kp = I w^2, "
                             "kv = 2 zeta I w with I the joint's inertia at home.",
                             min_value=0.5, max_value=50.0)
    damping_ratio: float = _f(1.0, "Damping ratio zeta of the position loops.",
                              min_value=0.1, max_value=5.0)
    floor: bool = _f(True, "Add a floor plane (contacts with it are reported).")
    floor_height: float = _f(0.0, "Floor height (m) in the robot's base frame.",
                             min_value=-10.0, max_value=10.0)
    render_rate_hz: float = _f(0.0, "Publish sim/image (rgb8) at this rate; 0 = off. Needs an "
                               "off-screen OpenGL: MUJOCO_GL=egl or osmesa.",
                               min_value=0.0, max_value=30.0)
    render_width: int = _f(320, "sim/image width (px).", min_value=16, max_value=4096)
    render_height: int = _f(240, "sim/image height (px).", min_value=16, max_value=4096)
    diagnostics_period: float = _f(1.0, "Seconds between /diagnostics, sim/contacts and "
                                   "sim/limit_violations reports.",
                                   min_value=0.05, max_value=60.0)

    def validate(self) -> SimSettings:
        _validate_fields(self)
        if not self.robot.strip():
            raise ValueError("robot is empty: give fr3, g1 or a model file")
        return self


@dataclass
class HriBridgeSettings:
    """hri_bridge: mocap_node's output as REP-155 (ROS4HRI) body topics (docs/rep155.md)."""

    publish_cropped: bool = _f(False, "Publish /humans/bodies/<id>/cropped (sensor_msgs/Image, "
                               "the body's region of the source image; needs image_raw).")
    max_missed: int = _f(5, "Frames a person other than the followed one may go unseen before "
                         "their body id is retired (a new id if they come back later).",
                         min_value=0, max_value=1000)
    iou: float = _f(0.3, "Box overlap (IoU) with their last box that keeps a person's body id.",
                    min_value=0.01, max_value=1.0)
    publish_links: bool = _f(True, "Broadcast the body links' TF frames (<link>_<id> of "
                             "human_description's human-tpl.xacro, posed by joint_states), as "
                             "robot_state_publisher would; false when you run one per body.")
    body_height: float = _f(1.65, "Height (m) the link frames' lengths are scaled to "
                            "(human-tpl.xacro's default, what hri_fullbody instantiates).",
                            min_value=0.5, max_value=2.5)
    stale_s: float = _f(1.0, "Bodies are dropped from /humans/bodies/tracked when no frame came "
                        "for this long (seconds).", min_value=0.05, max_value=60.0)

    def validate(self) -> HriBridgeSettings:
        return _validate_fields(self)

# ---------------------------------------------------------------- console
@dataclass
class ConsoleSettings:
    """The operator console (console node, ``mocap-ros up --console``): a web page that shows
    the loop and arms/stops teleop through ``enable_service``."""

    host: str = _f("127.0.0.1", "Interface the console serves on. Anything but loopback "
                   "(e.g. 0.0.0.0) requires a token: one is generated and printed in the URL "
                   "when token is empty.")
    port: int = _f(8090, "Console page port (HTTP and WebSocket).", min_value=1,
                   max_value=65535)
    viewer_port: int = _f(0, "Port of the 3D view (viser), embedded in the page; 0 = port + 1.",
                          min_value=0, max_value=65535)
    token: str = _f("", "Token every page must present (?token=...). Empty: none on loopback, "
                    "a random one on any other interface.")
    heartbeat_timeout: float = _f(1.0, "Dead-man: seconds without a heartbeat from the page "
                                  "that armed teleop (closed, hidden, frozen, disconnected) "
                                  "before the console disables teleop.",
                                  min_value=0.2, max_value=10.0)
    enable_service: str = _f("/teleop_node/enable", "teleop_node's std_srvs/SetBool enable "
                             "service.")
    robot_config: str = _f("", "Teleop joint map YAML whose model is drawn (config/teleop_*"
                           ".yaml). Empty = teleop_node's default.")
    image_width: int = _f(320, "Width (px) the camera image is scaled down to for the page.",
                          min_value=64, max_value=1920)
    image_rate_hz: float = _f(5.0, "Camera images sent to the page per second (0 = none).",
                              min_value=0.0, max_value=30.0)
    image_quality: int = _f(70, "JPEG quality of the page's camera image.", min_value=10,
                            max_value=95)
    scene_rate_hz: float = _f(10.0, "3D view updates per second (robot, command, operator).",
                              min_value=1.0, max_value=60.0)
    state_rate_hz: float = _f(10.0, "Teleop state updates per second.", min_value=1.0,
                              max_value=60.0)

    def validate(self) -> ConsoleSettings:
        _validate_fields(self)
        if not self.host.strip():
            raise ValueError("host is empty: give 127.0.0.1 (default) or an interface address")
        return self
