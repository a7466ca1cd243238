"""mocap_node, optionally with a USB camera driver.

  ros2 launch mocap_ros mocap.launch.py assets_dir:=/path/to/frankmocap/extra_data
  ros2 launch mocap_ros mocap.launch.py camera:=usb_cam video_device:=/dev/video0
  ros2 launch mocap_ros mocap.launch.py image_topic:=/my_cam/image_raw camera:=none
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import LaunchConfigurationEquals
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# Launch arguments that override mocap_node parameters, with their types.
OVERRIDES = {"assets_dir": str, "device": str, "n_iter": int, "precision": str,
             "body_model": str, "bbox_mode": str}


def generate_launch_description():
    share = get_package_share_directory("mocap_ros")
    arg = LaunchConfiguration
    args = [
        DeclareLaunchArgument("camera", default_value="none",
                              description="camera driver to start: none | usb_cam | v4l2_camera"),
        DeclareLaunchArgument("video_device", default_value="/dev/video0"),
        DeclareLaunchArgument("image_width", default_value="640"),
        DeclareLaunchArgument("image_height", default_value="480"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic to estimate poses from"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info"),
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config", "mocap.yaml"),
                              description="mocap_node parameters file"),
        # Empty = keep the config file's value (so a custom YAML is not silently overridden).
        *(DeclareLaunchArgument(name, default_value="", description=f"override {name}")
          for name in OVERRIDES),
    ]
    camera_remaps = [("image_raw", arg("image_topic")), ("camera_info", arg("camera_info_topic"))]
    usb_cam = Node(
        package="usb_cam", executable="usb_cam_node_exe", name="camera",
        condition=LaunchConfigurationEquals("camera", "usb_cam"),
        parameters=[{"video_device": arg("video_device"), "image_width": arg("image_width"),
                     "image_height": arg("image_height"), "framerate": 30.0,
                     "frame_id": "camera_optical_frame"}],
        remappings=camera_remaps,
    )
    return LaunchDescription([*args, usb_cam, OpaqueFunction(function=_v4l2_camera),
                              OpaqueFunction(function=_mocap_node)])


def _v4l2_camera(context, *_, **__):
    # image_size must reach v4l2_camera as an integer array; a list of substitutions would
    # be joined into one string by launch_ros.
    arg = LaunchConfiguration
    if arg("camera").perform(context) != "v4l2_camera":
        return []
    size = [int(arg("image_width").perform(context)), int(arg("image_height").perform(context))]
    return [Node(
        package="v4l2_camera", executable="v4l2_camera_node", name="camera",
        parameters=[{"video_device": arg("video_device"), "image_size": size,
                     "camera_frame_id": "camera_optical_frame"}],
        remappings=[("image_raw", arg("image_topic")), ("camera_info", arg("camera_info_topic"))],
    )]


def _mocap_node(context, *_, **__):
    arg = LaunchConfiguration
    overrides = {}
    for name, cast in OVERRIDES.items():
        value = arg(name).perform(context)
        if value != "":
            overrides[name] = cast(value)
    return [Node(
        package="mocap_ros", executable="mocap_node", name="mocap_node", output="screen",
        parameters=[arg("config"), overrides],
        remappings=[("image_raw", arg("image_topic")),
                    ("image_raw/compressed", [arg("image_topic"), "/compressed"]),
                    ("camera_info", arg("camera_info_topic"))],
    )]
