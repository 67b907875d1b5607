# Source this file (bash): `source env.sh` gives a shell where the vla_ros nodes, the `vla`
# command line and the built vla_msgs work. Made by `make setup` (scripts/setup.sh).

_vla_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -x "$_vla_root/.venv/bin/python" ]; then
    echo "vla_ros: $_vla_root/.venv does not exist yet: run 'make setup' first" >&2
    return 1 2>/dev/null || exit 1
fi

# shellcheck source=/dev/null
source "$_vla_root/.venv/bin/activate"

if [ "$(cat "$VIRTUAL_ENV/.vla-ros-mode" 2>/dev/null)" = pypi ]; then
    # ROS 2 from PyPI wheels: their shared libraries sit in site-packages/ros_*.libs and
    # .venv/lib, and the loader must know before Python starts.
    _vla_site=$("$VIRTUAL_ENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    _vla_libs=$(find "$_vla_site" -maxdepth 1 -name '*.libs' -type d | sort | tr '\n' ':')
    case ":${LD_LIBRARY_PATH:-}:" in
        *":$VIRTUAL_ENV/lib:"*) ;;
        *) export LD_LIBRARY_PATH="${_vla_libs}$VIRTUAL_ENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
    esac
    case ":${AMENT_PREFIX_PATH:-}:" in
        *":$VIRTUAL_ENV:"*) ;;
        *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
    esac
    case ":${CMAKE_PREFIX_PATH:-}:" in
        *":$VIRTUAL_ENV:"*) ;;
        *) export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;;
    esac
    export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
    # The wheels' ros_wheels_bootstrapper.pth re-executes every Python process started without
    # this guard, only to put ros_*.libs and .venv/lib on LD_LIBRARY_PATH, which the lines above
    # did: the guard spares each python and vla command a second interpreter start (about 50 ms).
    export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
    unset _vla_site _vla_libs
fi

# Headless MuJoCo rendering on the CPU (Mesa llvmpipe through EGL).
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
# Nothing is downloaded from a model hub at run time.
export HF_HUB_OFFLINE=1

if [ -f "$_vla_root/install/setup.bash" ]; then
    # colcon's scripts read unset variables: allow that even when the caller runs with `set -u`
    case $- in *u*) set +u; _vla_nounset=1 ;; esac
    # shellcheck source=/dev/null
    source "$_vla_root/install/setup.bash"
    # composition_interfaces for launch_ros, where the set-up installed ros2 launch (scripts/setup.sh)
    if [ -f "$VIRTUAL_ENV/ros2-python/install/local_setup.bash" ]; then
        # shellcheck source=/dev/null
        source "$VIRTUAL_ENV/ros2-python/install/local_setup.bash"
    fi
    [ -n "${_vla_nounset:-}" ] && set -u
    unset _vla_nounset
elif [ -z "${VLA_ENV_QUIET:-}" ]; then
    echo "vla_ros: the workspace is not built (no install/setup.bash): run 'make setup'" >&2
fi
unset _vla_root
