#!/usr/bin/env bash
# Run a command in the project's environment: the venv (.venv, made by `make setup`)
# plus the colcon install tree (install/: mocap_ros.msg, tf2_msgs, control_msgs).
#
#   bash scripts/in_env.sh python -c "from mocap_ros.msg import BodyPose"
#   bash scripts/in_env.sh mocap_node          # also: teleop_node, mocap-ros
#
# Paths are resolved from this script's location, so it works from any cwd.
# Deliberately no `set -u`: the venv's activate and colcon's setup.bash read unset variables.
set -e
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ $# -eq 0 ]; then
    echo "usage: bash scripts/in_env.sh COMMAND [ARGS...]" >&2
    exit 2
fi
if [ ! -f "$ROOT/.venv/bin/activate" ] || [ ! -f "$ROOT/install/setup.bash" ]; then
    echo "in_env.sh: $ROOT/.venv or $ROOT/install is missing; run 'make setup' first" >&2
    exit 1
fi

set +eu
# shellcheck disable=SC1091
. "$ROOT/.venv/bin/activate"
# The venv is a ROS prefix too (share/ament_index, share/*/cmake): ament_index lookups
# (get_package_share_directory('std_msgs')) and CMake need it beside install/.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
# Prepends install/<pkg>/lib/python3.X/site-packages to PYTHONPATH, install/<pkg>/lib to
# LD_LIBRARY_PATH and install/<pkg> to AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH.
# shellcheck disable=SC1091
. "$ROOT/install/setup.bash" || {
    echo "in_env.sh: sourcing $ROOT/install/setup.bash failed" >&2
    exit 1
}
# The checkout first: `import mocap_ros` then runs the checkout's code as it is now (also
# modules added since the last build), and mocap_ros/__init__.py's pkgutil.extend_path adds
# install/'s mocap_ros folder, which holds the generated mocap_ros.msg.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# `ros2 run mocap_ros X` runs lib/mocap_ros/X; there is no ros2 CLI on PyPI, so put them on PATH.
export PATH="$ROOT/install/mocap_ros/lib/mocap_ros:$PATH"

exec "$@"
