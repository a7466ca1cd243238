"""rosbag2 type handling: topic/type constants, the typestore with BodyPose and TFMessage
registered (BodyPose stored with its full message definition and RIHS01 hash, so `ros2 bag`
and `rosbags` read our output without mocap_ros installed), message definitions copied
from input bags, and the serializer of our own messages."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mocap_ros.core.result import BodyPoseResult
from mocap_ros.io.bags.progress import ProcessSummary
from mocap_ros.io.messages import body_pose_content, transform_content

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)



IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
BODY_POSE_TYPE = "mocap_ros/msg/BodyPose"
HAND_POSE_TYPE = "mocap_ros/msg/HandPose"
TF_TYPE = "tf2_msgs/msg/TFMessage"
CLOCK_TYPE = "rosgraph_msgs/msg/Clock"
POSE_TOPIC = "/mocap/body_pose"  # mocap_node's relative mocap/body_pose, fully qualified
TF_TOPIC = "/tf"
STORAGES = ("mcap", "sqlite3")
BAG_VERSION = 8  # what Jazzy's rosbag2 writes (and reads)
_MSGDEF_SEP = "=" * 80 + "\n"


class BagError(RuntimeError):
    """A bag that cannot be processed or replayed; the message says why and what exists.

    ``summary`` is the :class:`ProcessSummary` of the work done before the error (the
    output bag, if one was started, is closed and readable), or None.
    """

    def __init__(self, message: str, summary: ProcessSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


# =========================================================================== types
def body_pose_msg_path(name: str = "BodyPose") -> Path:
    """``<name>.msg``: the checkout's ``msg/`` first, else an ament prefix's share folder."""
    candidates = [Path(__file__).resolve().parents[3] / "msg" / f"{name}.msg"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / "mocap_ros" / "msg" / f"{name}.msg")
    for path in candidates:
        if path.is_file():
            return path
    raise BagError(f"cannot find {name}.msg (looked in: "
                   + ", ".join(str(c) for c in candidates) + ")")


_TYPESTORE_LOCK = threading.Lock()
_TYPESTORE: Any = None


def bag_typestore() -> Any:
    """A rosbags typestore: ROS 2 Jazzy's standard types plus ``mocap_ros/msg/BodyPose``."""
    global _TYPESTORE
    with _TYPESTORE_LOCK:
        if _TYPESTORE is None:
            from rosbags.typesys import Stores, get_types_from_msg, get_typestore

            store = get_typestore(Stores.ROS2_JAZZY)
            # HandPose first: BodyPose refers to it
            store.register(get_types_from_msg(body_pose_msg_path("HandPose").read_text(),
                                              HAND_POSE_TYPE))
            store.register(get_types_from_msg(body_pose_msg_path().read_text(), BODY_POSE_TYPE))
            _TYPESTORE = store
        return _TYPESTORE


def body_pose_msgdef() -> tuple[str, str]:
    """(full message definition, RIHS01 hash) of BodyPose as rosbag2 stores them.

    The definition is the ``.msg`` text (comments kept) followed by one
    ``====...\\nMSG: pkg/Name`` section per dependency (std_msgs/Header, geometry_msgs/...).
    """
    store = bag_typestore()
    generated, _ = store.generate_msgdef(BODY_POSE_TYPE, ros_version=2)
    deps = generated.split(_MSGDEF_SEP)[1:]
    text = body_pose_msg_path().read_text().rstrip("\n") + "\n"
    full = text + "".join(_MSGDEF_SEP + d for d in deps)
    return full, store.hash_rihs01(BODY_POSE_TYPE)


class BagMessages:
    """rosbags message objects for BodyPose and TFMessage, filled from the shared content."""

    def __init__(self, store: Any) -> None:
        t = store.types
        self.store = store
        self.Header, self.Time = t["std_msgs/msg/Header"], t["builtin_interfaces/msg/Time"]
        self.Quaternion = t["geometry_msgs/msg/Quaternion"]
        self.Point = t["geometry_msgs/msg/Point"]
        self.Pose, self.Vector3 = t["geometry_msgs/msg/Pose"], t["geometry_msgs/msg/Vector3"]
        self.Transform = t["geometry_msgs/msg/Transform"]
        self.TransformStamped = t["geometry_msgs/msg/TransformStamped"]
        self.TFMessage, self.BodyPose = t[TF_TYPE], t[BODY_POSE_TYPE]
        self.HandPose = t[HAND_POSE_TYPE]

    def header(self, sec: int, nanosec: int, frame_id: str) -> Any:
        return self.Header(stamp=self.Time(sec=int(sec), nanosec=int(nanosec)),
                           frame_id=str(frame_id))

    def body_pose(self, result: BodyPoseResult, header: Any) -> bytes:
        c = body_pose_content(result)
        q, pt = self.Quaternion, self.Point
        msg = self.BodyPose(
            header=header, valid=c["valid"], reason=c["reason"], confidence=c["confidence"],
            joint_names=c["joint_names"],
            local_rotations=[q(x=x, y=y, z=z, w=w) for x, y, z, w in c["local_rotations"]],
            global_rotations=[q(x=x, y=y, z=z, w=w) for x, y, z, w in c["global_rotations"]],
            root_pose=self.Pose(position=pt(*c["root_position"]),
                                orientation=q(*c["root_orientation"])),
            joints=[pt(x=x, y=y, z=z) for x, y, z in c["joints"]],
            keypoints_2d=c["keypoints_2d"], betas=c["betas"], camera=c["camera"],
            bbox=c["bbox"], preprocess_ms=c["preprocess_ms"], inference_ms=c["inference_ms"],
            postprocess_ms=c["postprocess_ms"], total_ms=c["total_ms"], n_iter=c["n_iter"],
            precision=c["precision"], device=c["device"], backend=c["backend"],
            joint_confidence=c["joint_confidence"], person_check=c["person_check"],
            person_score=c["person_score"], track_id=c["track_id"],
            operator_match=c["operator_match"], operator_state=c["operator_state"],
            left_hand=self._hand(c["left_hand"]), right_hand=self._hand(c["right_hand"]),
        )
        return bytes(self.store.serialize_cdr(msg, BODY_POSE_TYPE))

    def _hand(self, c: dict[str, Any]) -> Any:
        q, pt = self.Quaternion, self.Point
        return self.HandPose(
            valid=c["valid"], reason=c["reason"], confidence=c["confidence"],
            keypoints=[pt(x=x, y=y, z=z) for x, y, z in c["keypoints"]],
            keypoints_2d=c["keypoints_2d"], orientation=q(*c["orientation"]),
            finger_curl=c["finger_curl"], aperture=c["aperture"])

    def tf(self, result: BodyPoseResult, header: Any, prefix: str) -> bytes:
        transforms = [
            self.TransformStamped(
                header=self.Header(stamp=header.stamp, frame_id=t["parent"]),
                child_frame_id=t["child"],
                transform=self.Transform(translation=self.Vector3(*t["translation"]),
                                         rotation=self.Quaternion(*t["rotation"])),
            )
            for t in transform_content(result, header.frame_id, prefix)
        ]
        return bytes(self.store.serialize_cdr(self.TFMessage(transforms=transforms), TF_TYPE))


def qos_of(conn: Any) -> list[Any]:
    ext = getattr(conn, "ext", None)
    return list(getattr(ext, "offered_qos_profiles", None) or [])


def definition_store(connections: Sequence[Any]) -> Any:
    """A typestore with Jazzy's types plus every definition stored in the input bag."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    typs: dict[str, Any] = {}
    for c in connections:
        if c.msgtype in store.types:
            continue
        try:
            if c.msgdef.format == MessageDefinitionFormat.MSG and c.msgdef.data:
                typs.update(get_types_from_msg(c.msgdef.data, c.msgtype))
            elif c.msgdef.format == MessageDefinitionFormat.IDL and c.msgdef.data:
                for part in c.msgdef.data.split(_MSGDEF_SEP):
                    if part.startswith("IDL: "):
                        part = part.split("\n", 1)[1]
                    if part.strip():
                        typs.update(get_types_from_idl(part))
        except Exception as exc:  # a broken stored definition: the type just stays unknown
            log.debug("cannot parse the definition of %s: %s", c.msgtype, exc)
    if typs:
        try:
            store.register(typs)
        except Exception as exc:
            log.debug("cannot register the bag's own types: %s", exc)
    return store


def copy_definition(conn: Any, store: Any) -> tuple[str, str] | None:
    """(msgdef, rihs01) to write for an input connection; None when none can be had."""
    from rosbags.interfaces import MessageDefinitionFormat

    data = conn.msgdef.data if conn.msgdef.format != MessageDefinitionFormat.NONE else ""
    digest = conn.digest or ""
    if data and digest:
        return data, digest
    if conn.msgtype in store.types:
        try:
            gen, _ = store.generate_msgdef(conn.msgtype, ros_version=2)
            return data or gen, digest or store.hash_rihs01(conn.msgtype)
        except Exception as exc:
            log.debug("cannot generate the definition of %s: %s", conn.msgtype, exc)
    return None


