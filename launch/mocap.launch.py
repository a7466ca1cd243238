"""mocap_node, optionally with a camera driver.

  ros2 launch mocap_ros mocap.launch.py camera:=mocap_ros                   # /dev/video0
  ros2 launch mocap_ros mocap.launch.py camera:=mocap_ros source:=clip.mp4   # or a folder of images
  ros2 launch mocap_ros mocap.launch.py camera:=usb_cam video_device:=/dev/video0
  ros2 launch mocap_ros mocap.launch.py image_topic:=/my_cam/image_raw       # camera:=none
  ros2 launch mocap_ros mocap.launch.py assets_dir:=/path/to/frankmocap/extra_data
  ros2 launch mocap_ros mocap.launch.py rep155:=true operator_lock:=true    # + REP-155 topics

camera:=mocap_ros starts this package's camera_node (OpenCV; a V4L2 camera, a video file or an
image folder) with config/camera.yaml (camera_config:=...); usb_cam and v4l2_camera are the
ROS drivers (not on PyPI: a ROS install).
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from mocap_ros.ros.bringup import required

# The package's share folder: this file's ../ (works installed and from a source checkout).
SHARE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMERAS = ("none", "mocap_ros", "usb_cam", "v4l2_camera")
# Launch arguments that override mocap_node parameters, with their types.
def _bool(text):
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


OVERRIDES = {"assets_dir": str, "device": str, "n_iter": int, "precision": str,
             "body_model": str, "bbox_mode": str, "operator_lock": _bool}
_CASTS = {int: "an integer", float: "a number", str: "a string", _bool: "true or false"}


class LaunchArgumentError(ValueError):
    """A launch argument with a value its parameter cannot take; the message names it."""


def cast_argument(name, value, cast):
    """``cast(value)``, or an error naming the launch argument (not int()'s bare message)."""
    try:
        return cast(value)
    except ValueError:
        raise LaunchArgumentError(f"launch argument {name}:={value!r} is not {_CASTS[cast]}") \
            from None


def generate_launch_description():
    args = [
        DeclareLaunchArgument("camera", default_value="none",
                              description="camera driver to start: " + " | ".join(CAMERAS)),
        DeclareLaunchArgument("source", default_value="",
                              description="camera:=mocap_ros: camera index, /dev/videoN, a video "
                              "file or an image folder (empty = video_device)"),
        DeclareLaunchArgument("camera_config",
                              default_value=os.path.join(SHARE, "config", "camera.yaml"),
                              description="camera:=mocap_ros: camera_node parameters file"),
        DeclareLaunchArgument("video_device", default_value="/dev/video0"),
        DeclareLaunchArgument("image_width", default_value="",
                              description="empty: 640 for usb_cam/v4l2_camera, camera_config's "
                              "for mocap_ros"),
        DeclareLaunchArgument("image_height", default_value=""),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic to estimate poses from"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info"),
        DeclareLaunchArgument("loop", default_value="",
                              description="camera:=mocap_ros, a video file or image folder: "
                              "true = start again at the end (empty: camera_config's)"),
        DeclareLaunchArgument("config", default_value=os.path.join(SHARE, "config", "mocap.yaml"),
                              description="mocap_node parameters file"),
        # Empty = keep the config file's value (so a custom YAML is not silently overridden).
        *(DeclareLaunchArgument(name, default_value="", description=f"override {name}")
          for name in OVERRIDES),
        DeclareLaunchArgument("rep155", default_value="false",
                              description="true: also start hri_bridge, the bodies on REP-155's "
                              "/humans/bodies/... topics (docs/rep155.md); with "
                              "operator_lock:=true every person in view is a body"),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_nodes)])


def _nodes(context, *_, **__):
    # Every argument is checked before any node is returned: a refusal after camera_node had
    # started left it running with parent 1. One OpaqueFunction instead of
    # LaunchConfigurationEquals conditions (deprecated in Jazzy): an unknown camera is refused
    # by name, and image_size reaches v4l2_camera as an integer array (a list of
    # substitutions would be joined into one string by launch_ros).
    def value(name):
        return LaunchConfiguration(name).perform(context)

    camera = value("camera")
    if camera not in CAMERAS:
        raise LaunchArgumentError(f"launch argument camera:={camera!r} is not one of "
                                  + ", ".join(CAMERAS))
    size = {}
    for key in ("image_width", "image_height"):
        if value(key) != "":
            size[key] = cast_argument(key, value(key), int)
    loop = cast_argument("loop", value("loop"), _bool) if value("loop") != "" else None
    overrides = {}
    for name, cast in OVERRIDES.items():
        if value(name) != "":
            overrides[name] = cast_argument(name, value(name), cast)
    rep155 = cast_argument("rep155", value("rep155"), _bool)
    actions = [] if camera == "none" else _camera(context, camera, size, loop)
    return [*actions, *required(_mocap_node(context, overrides)),
            *(_hri_bridge(context) if rep155 else [])]


def _camera(context, camera, size, loop):
    def value(name):
        return LaunchConfiguration(name).perform(context)

    image_topic, info_topic = value("image_topic"), value("camera_info_topic")
    remaps = [("image_raw", image_topic), ("camera_info", info_topic),
              ("image_raw/compressed", image_topic + "/compressed")]
    if camera == "mocap_ros":
        overrides = {"source": ParameterValue(value("source") or value("video_device"),
                                              value_type=str)}
        if "image_width" in size:
            overrides["width"] = size["image_width"]
        if "image_height" in size:
            overrides["height"] = size["image_height"]
        if loop is not None:
            overrides["loop"] = loop
        # name camera_node: the node name camera.yaml's parameters are filed under
        return required(Node(package="mocap_ros", executable="camera_node",
                             name="camera_node", output="screen",
                             parameters=[value("camera_config"), overrides],
                             remappings=remaps))
    width, height = size.get("image_width", 640), size.get("image_height", 480)
    if camera == "usb_cam":
        return [Node(package="usb_cam", executable="usb_cam_node_exe", name="camera",
                     parameters=[{"video_device": value("video_device"), "image_width": width,
                                  "image_height": height, "framerate": 30.0,
                                  "frame_id": "camera_optical_frame"}],
                     remappings=remaps[:2])]
    return [Node(package="v4l2_camera", executable="v4l2_camera_node", name="camera",
                 parameters=[{"video_device": value("video_device"), "image_size": [width, height],
                              "camera_frame_id": "camera_optical_frame"}],
                 remappings=remaps[:2])]


def _mocap_node(context, overrides):
    arg = LaunchConfiguration
    return Node(
        package="mocap_ros", executable="mocap_node", name="mocap_node", output="screen",
        parameters=[arg("config"), overrides],
        remappings=[("image_raw", arg("image_topic")),
                    ("image_raw/compressed", [arg("image_topic"), "/compressed"]),
                    ("camera_info", arg("camera_info_topic"))],
    )


def _hri_bridge(context):
    arg = LaunchConfiguration
    return [Node(
        package="mocap_ros", executable="hri_bridge", name="hri_bridge", output="screen",
        remappings=[("image_raw", arg("image_topic")),
                    ("image_raw/compressed", [arg("image_topic"), "/compressed"]),
                    ("camera_info", arg("camera_info_topic"))],
    )]
