"""rosbag2 without ROS: typestore and message definitions (types), reading with
truncated-MCAP recovery (reader), CameraInfo tracking (camera_info), CSV rows (csv) and
progress reporting (progress). Offline processing lives in mocap_ros.offline, DDS replay in
mocap_ros.ros.replay.
"""
