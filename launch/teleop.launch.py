"""mocap_node + teleop_node (+ a camera): a camera drives a robot's joints.

  ros2 launch mocap_ros teleop.launch.py camera:=mocap_ros robot_config:=fr3 \
      assets_dir:=/path/to/extra_data output_type:=joint_trajectory \
      command_topic:=/fr3_arm_controller/joint_trajectory

robot_config: a path, a file name in the package's config/ folder, or a robot (fr3, g1).
teleop_node starts DISABLED; arm it with
  ros2 service call /teleop_node/enable std_srvs/srv/SetBool "{data: true}"
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from mocap_ros.ros.bringup import required, robot_config_path, teleop_bringup

HERE = os.path.dirname(os.path.abspath(__file__))
SHARE = os.path.dirname(HERE)
# Forwarded unchanged to mocap.launch.py (the one beside this file); bbox_mode and
# operator_lock go through teleop_bringup (mocap_ros/ros/bringup.py), as for mocap-ros up.
MOCAP_ARGS = ("camera", "source", "camera_config", "video_device", "image_width",
              "image_height", "image_topic", "camera_info_topic", "assets_dir", "device",
              "n_iter", "precision", "body_model", "loop", "rep155")
# teleop_node parameters settable here; empty = the node's own default (TeleopSettings), so no
# default is written twice.
TELEOP_ARGS = {"output_type": (str, "joint_state | joint_trajectory | float64_multi_array"),
               "rate_hz": (float, "command rate (Hz)"),
               "hold_mode": (str, "hold | safe_pose"),
               "min_confidence": (float, "poses below are refused")}


def _console_node(context):
    """console_node when console:=true: ROS topics only (joint_states from the real robot
    or sim_robot), the image mocap_node reads, the robot model of robot_config."""
    def value(name):
        return LaunchConfiguration(name).perform(context)

    if value("console").lower() != "true":
        return []
    # the same resolution as teleop_node's (fr3, teleop_fr3.yaml, a path); a bad one is
    # refused by _bringup before anything starts
    robot = str(robot_config_path(value("robot_config"), os.path.join(SHARE, "config")))
    return [Node(package="mocap_ros", executable="console_node", name="console",
                 output="screen", parameters=[{"robot_config": robot}],
                 remappings=[("image_raw", value("image_topic"))])]


def generate_launch_description():
    args = [
        DeclareLaunchArgument("robot_config",
                              default_value=os.path.join(SHARE, "config", "teleop_generic.yaml"),
                              description="joint map YAML: a path, a file name in the "
                              "package's config/ (teleop_fr3.yaml) or a robot (fr3, g1)"),
        DeclareLaunchArgument("command_topic", default_value="joint_commands"),
        *(DeclareLaunchArgument(name, default_value="", description=f"{text} (empty: the "
                                "node's default)") for name, (_, text) in TELEOP_ARGS.items()),
        DeclareLaunchArgument("camera", default_value="none",
                              description="none | mocap_ros | usb_cam | v4l2_camera"),
        DeclareLaunchArgument("source", default_value=""),
        DeclareLaunchArgument("camera_config",
                              default_value=os.path.join(SHARE, "config", "camera.yaml")),
        DeclareLaunchArgument("video_device", default_value="/dev/video0"),
        DeclareLaunchArgument("image_width", default_value=""),
        DeclareLaunchArgument("image_height", default_value=""),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw"),
        # the operator console, after the arguments it reads (robot_config, image_topic)
        DeclareLaunchArgument("console", default_value="false",
                              description="true: also the operator console (console_node: a "
                              "web page on http://127.0.0.1:8090/ to watch and arm teleop)"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info"),
        DeclareLaunchArgument("loop", default_value=""),
        *(DeclareLaunchArgument(name, default_value="")
          for name in ("assets_dir", "device", "n_iter", "precision", "body_model")),
        DeclareLaunchArgument("operator_lock", default_value="false",
                              description="true: the robot follows only the person who "
                              "armed it (mocap_node operator_lock + teleop's lock service)"),
        DeclareLaunchArgument("rep155", default_value="false",
                              description="true: also publish the bodies on REP-155's topics "
                              "(hri_bridge, docs/rep155.md)"),
        DeclareLaunchArgument("bbox_mode", default_value="",
                              description="mocap_node person box (empty: detector, the "
                              "teleop default) | track | full_frame | roi"),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_bringup)])


def _bringup(context, *_, **__):
    """teleop_node's arguments are checked before anything starts (mocap.launch.py checks
    its own the same way)."""
    def value(name):
        return LaunchConfiguration(name).perform(context)

    try:
        robot = robot_config_path(value("robot_config"), os.path.join(SHARE, "config"))
    except ValueError as exc:
        raise ValueError(f"launch argument robot_config: {exc}") from None
    params = {}
    for name, (cast, _) in TELEOP_ARGS.items():
        text = value(name)
        if text == "":
            continue
        try:
            params[name] = cast(text)
        except ValueError:
            raise ValueError(f"launch argument {name}:={text!r} is not a number") from None
    lock = value("operator_lock").lower()
    if lock not in ("true", "false"):
        raise ValueError(f"launch argument operator_lock:={lock!r} is not true or false")
    wiring = teleop_bringup(robot, operator_lock=lock == "true",
                            bbox_mode=value("bbox_mode") or None, teleop=params)
    forwarded = {name: LaunchConfiguration(name) for name in MOCAP_ARGS}
    forwarded.update({k: str(v).lower() if isinstance(v, bool) else str(v)
                      for k, v in wiring.mocap.items()})
    mocap = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(HERE, "mocap.launch.py")),
        launch_arguments=forwarded.items())
    teleop = Node(package="mocap_ros", executable="teleop_node", name="teleop_node",
                  output="screen", parameters=[wiring.teleop],
                  remappings=[("joint_commands", value("command_topic"))])
    # the console last: it starts only once every argument above has been accepted
    return [mocap, *required(teleop), *_console_node(context)]
