#!/usr/bin/env bash
# Make sure a Docker engine answers before the tests (or the lab) run.
#
#   scripts/engine.sh              use the running engine, or install and start one (needs root)
#   scripts/engine.sh --optional   same, but never fail: print a note and exit 0 without an engine
#   scripts/engine.sh --check      only report: exit 0 if an engine answers, 1 if not
#
# The socket is the one in DOCKER_HOST when that is unix://..., else /var/run/docker.sock. An
# engine is only ever started for the default socket (see /work/shared/RECIPES.md, "A Docker
# engine"); a static busybox (package busybox-static) is installed too, for the demo images.
set -euo pipefail

DEFAULT_SOCK=/var/run/docker.sock
DOCKERD_LOG=/var/log/opskit-dockerd.log
APT_LOG=/var/log/opskit-apt.log
START_TIMEOUT=60

mode=start
case "${1:-}" in
    --optional) mode=optional ;;
    --check) mode=check ;;
    "") ;;
    *) echo "usage: $0 [--optional|--check]" >&2; exit 2 ;;
esac

sock=$DEFAULT_SOCK
if [[ "${DOCKER_HOST:-}" == unix://* ]]; then
    sock=${DOCKER_HOST#unix://}
fi

ping_engine() {
    if command -v curl >/dev/null; then
        [[ "$(curl -s --max-time 2 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" == OK ]]
    else # a minimal Debian has no curl; the docker client will do
        timeout 5 docker -H "unix://$sock" version >/dev/null 2>&1
    fi
}

# Without an engine: fail, or (--optional) say so and succeed.
give_up() {
    if [[ $mode == optional ]]; then
        echo "engine: no usable Docker engine at $sock ($1); continuing without one"
        exit 0
    fi
    echo "engine: no usable Docker engine at $sock: $1" >&2
    exit 1
}

busybox_is_static() {
    [[ -x /bin/busybox ]] || return 1
    if command -v readelf >/dev/null; then
        local headers
        headers=$(readelf -l /bin/busybox 2>/dev/null) || return 1
        ! grep -q 'program interpreter' <<<"$headers"
    else # a dynamic binary names its loader (ld-linux...) in its first bytes
        ! grep -aq 'ld-linux' < <(head -c 4096 /bin/busybox)
    fi
}

apt_updated=no
apt_install() {
    if [[ $apt_updated == no ]]; then
        apt-get update >>"$APT_LOG" 2>&1
        apt_updated=yes
    fi
    echo "engine: installing $* (log: $APT_LOG)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$APT_LOG" 2>&1
}

# The demo images COPY a static /bin/busybox; check it whatever the engine's state.
if ! busybox_is_static; then
    if [[ $mode != check && $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        apt_install busybox-static || echo "engine: could not install busybox-static" >&2
    else
        echo "engine: warning: /bin/busybox is missing or not static (apt-get install busybox-static)" >&2
    fi
fi

if ping_engine; then
    echo "engine: using the running engine at $sock"
    exit 0
fi
[[ $mode == check ]] && give_up "it does not answer /_ping"
[[ $sock == "$DEFAULT_SOCK" ]] || give_up "DOCKER_HOST names a socket this script does not start engines on"
[[ -S $sock && ! -w $sock ]] && give_up "no permission to use its socket (join the docker group?)"
[[ $EUID -eq 0 ]] || give_up "starting one needs root"

if ! command -v dockerd >/dev/null; then
    command -v apt-get >/dev/null || give_up "dockerd is not installed and apt-get is missing"
    apt_install docker.io || give_up "apt-get install docker.io failed, see $APT_LOG"
fi

# A service manager may have started the engine during the install; if not, start it here.
if ! ping_engine && ! { [[ -s /var/run/docker.pid ]] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; }; then
    echo "engine: starting dockerd (log: $DOCKERD_LOG)"
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    dockerd_pid=$!
fi

deadline=$((SECONDS + START_TIMEOUT))
until ping_engine; do
    if ((SECONDS >= deadline)) || { [[ -n ${dockerd_pid:-} ]] && ! kill -0 "$dockerd_pid" 2>/dev/null; }; then
        echo "engine: dockerd did not answer on $sock; last lines of $DOCKERD_LOG:" >&2
        tail -n 20 "$DOCKERD_LOG" >&2 || true
        give_up "dockerd did not come up"
    fi
    sleep 0.5
done
echo "engine: started dockerd; it answers at $sock"
