"""FrankMocap's model files: where they are, what is missing, and fetching the public
ones (files). Generated stand-ins in the same formats live in mocap_ros.tools.synthetic.
"""
