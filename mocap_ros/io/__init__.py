"""File and message formats: ROS image decoding (images), SMPL model files behind a
restricted unpickler (smpl_file), FrankMocap checkpoints (checkpoint), BodyPose/TF content
as plain data (messages) and rosbag2 reading/writing (bags/). No estimation, no rclpy.
"""
