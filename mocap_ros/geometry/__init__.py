"""The math, once: numpy rotations and quaternions (rotations), their torch twins
(torch_rotations), forward kinematics (kinematics), the person-box crop window (crop) and
the camera model (camera). Pure functions, no I/O, no rclpy.
"""
