#!/usr/bin/env bash
# Build this repo's ROS 2 package (mocap_ros: the BodyPose message plus the Python
# package) into install/, against the ROS 2 Jazzy that pip installed into a venv.
#
#   VIRTUAL_ENV=/abs/path/to/.venv bash scripts/build_ros.sh     (make setup does this)
#
# Steps, all re-runnable:
#  1. Fix the wheels' CMake exports: they name the include folders of the machine the
#     wheels were built on (/opt/python/cp311-cp311/...), and CMake refuses imported
#     targets with non-existent include paths. Rewrite them to this interpreter's include
#     folder and numpy's (idempotent: a fixed file has no /opt/python left).
#  2. tf2_msgs, control_msgs and hri_msgs are not on PyPI: where `import tf2_msgs.msg`
#     (`import control_msgs.action`, `import hri_msgs.msg`) fails in the venv, build the
#     TFMessage-only (GripperCommand-only, REP-155-body-messages-only) stand-in in
#     scripts/ros_pkgs/ into install/ too.
#  3. colcon build --symlink-install (the stand-ins first, then mocap_ros): the Python files in
#     install/ are symlinks to the checkout, so edits take effect without a rebuild.
#     mocap_ros gets numpy's headers through a link in its install prefix, because CMake
#     will not export an include path inside the source tree, where .venv/ lives.
#
# Quiet on success; on failure prints why and the end of log/build_ros.log.
# On a normal ROS 2 workspace none of this is needed: plain `colcon build` works.
set -eo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LOG="$ROOT/log/build_ros.log"

fail() {
    echo "build_ros.sh: FAILED: $1" >&2
    if [ -s "$LOG" ]; then
        echo "---- last 150 lines of $LOG ----" >&2
        tail -n 150 "$LOG" >&2
        echo "---- end of $LOG ----" >&2
    fi
    exit 1
}

[ -n "${VIRTUAL_ENV:-}" ] || fail "set VIRTUAL_ENV to the venv's absolute path (make setup does)"
case "$VIRTUAL_ENV" in /*) ;; *) fail "VIRTUAL_ENV must be absolute, got '$VIRTUAL_ENV'" ;; esac
PY="$VIRTUAL_ENV/bin/python"
[ -x "$PY" ] || fail "no python at $PY"
[ -x "$VIRTUAL_ENV/bin/colcon" ] || fail "colcon is not in $VIRTUAL_ENV (pip install -r requirements-ros.txt)"
command -v cmake >/dev/null || fail "cmake not found (Debian: apt-get install cmake g++)"
command -v c++ >/dev/null || fail "no C++ compiler found (Debian: apt-get install g++)"

mkdir -p "$ROOT/log"
: >"$LOG"

# Build against the venv only: a sourced /opt/ros/* or another workspace must not leak in.
unset PYTHONPATH COLCON_PREFIX_PATH AMENT_CURRENT_PREFIX ROS_DISTRO ROS_VERSION ROS_PYTHON_VERSION
export VIRTUAL_ENV
export PATH="$VIRTUAL_ENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV"

# 1. The CMake include-path fix.
"$PY" - "$VIRTUAL_ENV" >>"$LOG" 2>&1 <<'EOF' || fail "could not fix the wheels' CMake files"
import glob
import re
import sys
import sysconfig

import numpy

venv = sys.argv[1]
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
# The wheels were built in a manylinux image: /opt/python/cp311-cp311/...
py_re = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
np_re = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_?core/include")
fixed = 0
for path in glob.glob(f"{venv}/share/*/cmake/*.cmake"):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if "/opt/python/" not in text:
        continue
    new = np_re.sub(lambda _: np_inc, py_re.sub(lambda _: py_inc, text))
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        fixed += 1
print(f"build_ros.sh: include paths fixed in {fixed} CMake files ({py_inc}, {np_inc})")
EOF

# 2. Stand-ins (tf2_msgs, control_msgs, hri_msgs): use the venv's where it has one, else build ours.
standins=()
for spec in "tf2_msgs:import tf2_msgs.msg" "control_msgs:import control_msgs.action" \
    "hri_msgs:import hri_msgs.msg"; do
    pkg=${spec%%:*}
    if "$PY" -c "${spec#*:}" >>"$LOG" 2>&1; then
        echo "build_ros.sh: $pkg found in the venv; not building scripts/ros_pkgs/$pkg" >>"$LOG"
        rm -rf "${ROOT:?}/install/$pkg" "${ROOT:?}/build/$pkg"
    else
        standins+=("$pkg")
    fi
done

# 3. colcon. --base-paths "$ROOT" finds only this package: colcon does not look inside a
# folder it has identified as a package, so .venv/, build/, scripts/ros_pkgs are not searched.
# One package at a time: the machines this runs on have 2 cores.
colcon_build() {  # PACKAGE_PATH [CMAKE_ARG...]
    local pkg_path=$1
    shift
    "$VIRTUAL_ENV/bin/colcon" --log-base "$ROOT/log" build \
        --base-paths "$pkg_path" \
        --build-base "$ROOT/build" \
        --install-base "$ROOT/install" \
        --symlink-install \
        --parallel-workers 1 \
        --event-handlers console_cohesion+ \
        --cmake-args -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$PY" -DPython3_FIND_VIRTUALENV=ONLY "$@" \
        >>"$LOG" 2>&1
}

for pkg in "${standins[@]}"; do
    colcon_build "$ROOT/scripts/ros_pkgs/$pkg" || fail "colcon build of $pkg failed"
done

# rosidl_generator_py exports numpy's include folder (PUBLIC include dir of the generated
# Python extension). With the venv inside this package's source tree (.venv/ in the repo
# root) CMake refuses that export ("... which is prefixed in the source directory"), unless
# the path lies in the install prefix. So hand CMake numpy's headers through a link there.
np_inc=$("$PY" -c "import numpy; print(numpy.get_include())") || fail "numpy does not import"
np_args=()
case "$np_inc/" in
    "$ROOT"/*)
        np_link="$ROOT/install/mocap_ros/opt/venv_numpy_include"
        mkdir -p "$(dirname "$np_link")"
        ln -sfn "$np_inc" "$np_link"
        np_args=("-DPython3_NumPy_INCLUDE_DIR=$np_link")
        ;;
esac
colcon_build "$ROOT" "${np_args[@]}" || fail "colcon build of mocap_ros failed"

[ -f "$ROOT/install/setup.bash" ] || fail "colcon left no install/setup.bash"
