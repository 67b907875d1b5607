#!/usr/bin/env bash
# Set up the vla_ros workspace on this machine; safe to run again (it only redoes what changed).
#
#   1. Debian packages for headless MuJoCo rendering (EGL + Mesa), installed when missing and
#      running as root, otherwise named with the command that installs them.
#   2. .venv: with a sourced ROS 2 distribution (Humble, Jazzy, Kilted ...) a venv on top of it
#      (--system-site-packages) with vla_ros's Python dependencies; without one, Python 3.11 and
#      the ROS 2 core from PyPI wheels, with the fix-ups their CMake files need.
#   3. colcon build of src/ (the interface package, vla_core, the nodes, the bring-up).
#
# Afterwards `source env.sh` gives a shell where the nodes, `vla` and vla_msgs work.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
REQ="$ROOT/requirements"
# Debian packages for headless MuJoCo rendering; override with VLA_APT_PACKAGES (space-separated)
# on distributions that name them differently.
read -r -a APT_PACKAGES <<< "${VLA_APT_PACKAGES:-libegl1 libegl-mesa0 libgl1-mesa-dri}"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

install_debian_packages() {
    if ! command -v dpkg-query >/dev/null; then
        log "not a Debian/Ubuntu system: make sure EGL and Mesa (${APT_PACKAGES[*]}) are installed for MuJoCo rendering"
        return
    fi
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            die "missing Debian packages for headless MuJoCo rendering: ${missing[*]}.
         Not root and no password-less sudo, so they cannot be installed from here. Run:
             sudo apt-get update && sudo apt-get install -y ${missing[*]}
         then run this set-up again."
        fi
    fi
    log "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A Python 3.11 interpreter that can make venvs: $VLA_PYTHON, python3.11, or python3 if it is 3.11.
find_python311() {
    local candidate
    for candidate in ${VLA_PYTHON:-} python3.11 python3; do
        candidate=$(command -v "$candidate" 2>/dev/null) || continue
        if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
}

# Which ROS 2 to use: a sourced distribution with an importable rclpy, or the PyPI wheels.
detect_ros_mode() {
    if [ -n "${ROS_DISTRO:-}" ] && python3 -c "import rclpy" 2>/dev/null; then
        ROS_MODE="system-$ROS_DISTRO"
        BASE_PYTHON=$(command -v python3)
        log "using the sourced ROS 2 $ROS_DISTRO ($BASE_PYTHON)"
    else
        [ -n "${ROS_DISTRO:-}" ] && log "ROS_DISTRO=$ROS_DISTRO is set but rclpy does not import: using ROS 2 from PyPI wheels"
        ROS_MODE="pypi"
        BASE_PYTHON=$(find_python311)
        if [ -z "$BASE_PYTHON" ]; then
            local found
            found=$(python3 --version 2>&1 || echo "no python3 on PATH")
            die "Python 3.11 with its venv module is required when no ROS 2 distribution is sourced
         (the ROS 2 and torch wheels this set-up installs are built for it), and none was found
         (python3.11 not on PATH; python3 is: $found).
         Install it (for example 'pyenv install 3.11', or 'apt-get install python3.11 python3.11-venv'),
         point VLA_PYTHON at one, or source a ROS 2 distribution (source /opt/ros/<distro>/setup.bash)
         and run this again."
        fi
        log "using ROS 2 from PyPI wheels with $BASE_PYTHON"
    fi
}

requirements_hash() {
    cat "$REQ"/*.txt "$ROOT/src/vla_core/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
    echo "$ROS_MODE ${VLA_TORCH_SPEC:-}"
}

make_venv() {
    local wanted
    wanted=$("$BASE_PYTHON" -c 'import sys; print(sys.version.split()[0])')
    if [ -x "$VENV/bin/python" ]; then
        local have_mode have_version
        have_mode=$(cat "$VENV/.vla-ros-mode" 2>/dev/null || echo unknown)
        have_version=$("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo broken)
        if [ "$have_mode" != "$ROS_MODE" ] || [ "$have_version" != "$wanted" ]; then
            log "stale .venv (made for ROS mode '$have_mode' with Python $have_version; now '$ROS_MODE' with $wanted): recreating it"
            rm -rf "$VENV"
        fi
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating .venv with Python $wanted"
        local flags=()
        [ "$ROS_MODE" != pypi ] && flags+=(--system-site-packages)
        "$BASE_PYTHON" -m venv "${flags[@]}" "$VENV"
        echo "$ROS_MODE" > "$VENV/.vla-ros-mode"
    fi
}

install_python_packages() {
    local stamp="$VENV/.vla-requirements"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$(requirements_hash)" ]; then
        log "Python packages up to date"
        return
    fi
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    "${pip[@]}" install --upgrade pip "setuptools>=64,<80"
    local files=(-r "$REQ/runtime.txt")
    [ "$ROS_MODE" = pypi ] && files=(-r "$REQ/ros-core.txt" "${files[@]}")
    local torch=()
    if [ -n "${VLA_TORCH_SPEC:-}" ]; then
        torch=("$VLA_TORCH_SPEC")
        # let the caller's torch build replace the pinned CPU one
        sed '/^torch==/d' "$REQ/runtime.txt" > "$VENV/.runtime-no-torch.txt"
        files=("${files[@]/#$REQ\/runtime.txt/$VENV/.runtime-no-torch.txt}")
    fi
    log "installing Python packages (a few minutes the first time)"
    "${pip[@]}" install -c "$REQ/lock.txt" "${files[@]}" "${torch[@]}"
    "${pip[@]}" install --no-deps -c "$REQ/lock.txt" -r "$REQ/no-deps.txt"
    requirements_hash > "$stamp"
}

# The ROS 2 wheels' CMake export files and ament parent-prefix entries name the paths of the
# machine they were built on; point them at this interpreter and this numpy.
fix_ros_wheel_paths() {
    [ "$ROS_MODE" = pypi ] || return 0
    local py_include numpy_include files
    py_include=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
    numpy_include=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
    files=$(grep -rl "/opt/python/cp3" "$VENV/share" 2>/dev/null || true)
    [ -z "$files" ] && return 0
    log "rewriting build-machine paths in $(echo "$files" | wc -l) ROS 2 wheel files"
    echo "$files" | xargs sed -i -E \
        -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_include#g" \
        -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$numpy_include#g" \
        -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+#$VENV#g"
}

# src/tf2_msgs stands in for the distribution's tf2_msgs where ROS 2 comes from PyPI wheels (they
# lack it). A ROS 2 installation that has its own must keep it: an overlay of a core interface
# package would shadow the one tf2_ros and RViz were built against. Prints colcon's skip option.
skip_provided_interfaces() {
    [ "$ROS_MODE" = pypi ] && return 0
    local prefix
    for prefix in ${AMENT_PREFIX_PATH//:/ }; do
        case "$prefix" in "$ROOT"/*) continue ;; esac
        if [ -f "$prefix/share/tf2_msgs/package.xml" ]; then
            echo "--packages-skip tf2_msgs"
            return 0
        fi
    done
}

build_workspace() {
    local build_id
    build_id="$ROS_MODE $("$VENV/bin/python" -c 'import sys; print(sys.prefix)')"
    if [ -d "$ROOT/install" ] && [ "$(cat "$ROOT/install/.vla-build-id" 2>/dev/null)" != "$build_id" ]; then
        log "stale build in install/ (built for '$(cat "$ROOT/install/.vla-build-id" 2>/dev/null || echo 'an unknown environment')', now '$build_id'): removing build/ and install/ and building again"
        rm -rf "$ROOT/build" "$ROOT/install" "$ROOT/log"
    fi
    mkdir -p "$ROOT/log"
    log "colcon build"
    (
        cd "$ROOT"
        # shellcheck source=../env.sh
        VLA_ENV_QUIET=1 source "$ROOT/env.sh"
        colcon build --symlink-install $(skip_provided_interfaces) \
            --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
            > "$ROOT/log/vla-build.log" 2>&1 \
            || { cat "$ROOT/log/vla-build.log" >&2; die "colcon build failed (full log above and in log/vla-build.log)"; }
        tail -n 3 "$ROOT/log/vla-build.log"
    )
    # The symlinked sources are never byte-compiled by an installer, and Python writes no bytecode
    # where PYTHONDONTWRITEBYTECODE is set (these machines set it): every `vla` command then compiled
    # each vla_core module it imports (about 0.05 CPU s of a `vla convert`). Compiled once here;
    # Python itself notices a .pyc older than its source.
    "$VENV/bin/python" -m compileall -q "$ROOT/src" >/dev/null || log "byte-compiling src/ failed (harmless: Python compiles on import)"
    echo "$build_id" > "$ROOT/install/.vla-build-id"
}

# ROS 2's launch system and command line (launch, launch_ros, ros2cli) are pure Python but not on
# PyPI. Where their upstream sources sit beside the workspace (../shared/ros2-python, or
# VLA_ROS2_PYTHON), install them into the venv with that folder's recipe, so `ros2 launch
# vla_bringup ...` and `ros2 node/param/lifecycle/service` run here as on a ROS install. Its
# composition_interfaces underlay lives in the venv; env.sh sources it.
install_ros2_cli() {
    [ "$ROS_MODE" = pypi ] || return 0  # a ROS distribution brings its own
    local src="${VLA_ROS2_PYTHON:-$ROOT/../shared/ros2-python}"
    [ -f "$src/install-into-venv.sh" ] || return 0
    local stamp="$VENV/.vla-ros2-cli" underlay="$VENV/ros2-python" id
    id=$(cat "$src/install-into-venv.sh" "$src/README.md" 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$id" ] && [ -f "$underlay/install/local_setup.bash" ]; then
        log "ros2 launch and the ros2 command line up to date"
        return
    fi
    log "installing ros2 launch and the ros2 command line from $src"
    bash "$src/install-into-venv.sh" "$ROOT" "$src" "$underlay" >/dev/null \
        || die "installing launch, launch_ros and ros2cli from $src failed"
    echo "$id" > "$stamp"
}

main() {
    install_debian_packages
    detect_ros_mode
    make_venv
    install_python_packages
    fix_ros_wheel_paths
    build_workspace
    install_ros2_cli
    log "ready: 'source env.sh' for a shell with the nodes, 'vla' and vla_msgs"
}

# sourced (the tests call single functions), nothing runs
[[ "${BASH_SOURCE[0]}" != "$0" ]] || main "$@"
