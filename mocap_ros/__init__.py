"""mocap_ros: camera images in, human body motion a robot can follow out.

Sub-packages by role, imports pointing down this list (checked by import-linter):
``cli`` -> ``tools`` -> ``ros``/``offline`` -> ``estimation``/``teleop`` -> ``assets`` ->
``io`` -> ``geometry`` -> ``core``. Only ``ros``, ``tools`` and ``cli`` import rclpy. The
generated ROS messages (``mocap_ros.msg``) live in the colcon install tree; ``extend_path`` lets the
source checkout and that tree contribute to one ``mocap_ros`` package.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
