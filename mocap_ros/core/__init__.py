"""Core types every other package shares: the SMPL skeleton, the pose result, the
Estimator protocol, configuration dataclasses and the cache folder. Imports nothing of
mocap_ros and no torch, cv2 or rclpy: everything else builds on it.
"""
