"""Rendered scenes with known truth: the synthetic operator (:mod:`.operator`), a human figure
drawn off-screen with MuJoCo that performs scripted arm motions with exactly known SMPL joints.

Why a role package at the ``assets | robots`` layer: camera_node (ros/) streams it like a
camera and the demo, tests and benchmarks (tools/) measure the loop against its truth, so it
must sit below ros/ and tools/; it needs only core/ (the SMPL tree) and MuJoCo, and nothing
in estimation/ or teleop/ may depend on a rendered figure.
"""
