"""mocap_node + teleop_node: a camera drives a robot's joints.

  ros2 launch mocap_ros teleop.launch.py \
      robot_config:=$(ros2 pkg prefix mocap_ros)/share/mocap_ros/config/teleop_fr3.yaml \
      assets_dir:=/path/to/extra_data camera:=usb_cam output_type:=joint_trajectory \
      command_topic:=/fr3_arm_controller/joint_trajectory

teleop_node starts DISABLED; arm it with
  ros2 service call /teleop_node/enable std_srvs/srv/SetBool "{data: true}"
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# Forwarded unchanged to mocap.launch.py.
MOCAP_ARGS = ("camera", "video_device", "image_topic", "camera_info_topic", "assets_dir",
              "device", "n_iter", "precision", "bbox_mode")


def generate_launch_description():
    share = get_package_share_directory("mocap_ros")
    arg = LaunchConfiguration
    args = [
        DeclareLaunchArgument("robot_config",
                              default_value=os.path.join(share, "config", "teleop_generic.yaml"),
                              description="joint map YAML (config/teleop_*.yaml)"),
        DeclareLaunchArgument("output_type", default_value="joint_state",
                              description="joint_state | joint_trajectory | float64_multi_array"),
        DeclareLaunchArgument("command_topic", default_value="joint_commands"),
        DeclareLaunchArgument("rate_hz", default_value="50.0"),
        DeclareLaunchArgument("hold_mode", default_value="hold", description="hold | safe_pose"),
        DeclareLaunchArgument("camera", default_value="none"),
        DeclareLaunchArgument("video_device", default_value="/dev/video0"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info"),
        DeclareLaunchArgument("assets_dir", default_value=""),
        DeclareLaunchArgument("device", default_value=""),
        DeclareLaunchArgument("n_iter", default_value=""),
        DeclareLaunchArgument("precision", default_value=""),
        # A robot follows only bodies a person detector confirmed (teleop_node's
        # require_person_check): with HMR, full_frame would report a body in an empty room.
        DeclareLaunchArgument("bbox_mode", default_value="detector",
                              description="mocap_node person box: detector (default for "
                              "teleop) | track | full_frame | roi"),
    ]
    mocap = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "mocap.launch.py")),
        launch_arguments={name: arg(name) for name in MOCAP_ARGS}.items(),
    )
    teleop = Node(
        package="mocap_ros", executable="teleop_node", name="teleop_node", output="screen",
        parameters=[{"robot_config": arg("robot_config"), "output_type": arg("output_type"),
                     "rate_hz": arg("rate_hz"), "hold_mode": arg("hold_mode")}],
        remappings=[("joint_commands", arg("command_topic"))],
    )
    return LaunchDescription([*args, mocap, teleop])
