"""mocap_ros: camera images in, human body motion a robot can follow out.

The core (``mocap_ros.pipeline`` and friends) runs without rclpy. The generated ROS
messages (``mocap_ros.msg``) live in the colcon install tree; ``extend_path`` lets the
source checkout and that tree contribute to one ``mocap_ros`` package.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
