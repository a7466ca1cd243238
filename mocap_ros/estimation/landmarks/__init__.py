"""The open landmarks backend: MediaPipe BlazePose landmarks (backend) and inverse
kinematics onto the SMPL 24-joint tree (ik).
"""
