"""The ROS 2 edge (needs rclpy): mocap_node and teleop_node, message conversion
(convert), declared parameters from the config dataclasses (params), the shared entry point
with clean SIGINT (run), the newest-frame slot (latest) and bag replay over DDS (replay)."""
