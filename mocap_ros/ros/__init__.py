"""The ROS 2 edge of mocap_ros: nodes and message conversions (needs rclpy)."""
