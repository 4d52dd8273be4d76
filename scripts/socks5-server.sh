#!/usr/bin/env bash
# A real SOCKS5 server on loopback for tests/socks5_server.rs: microsocks (Debian package
# `microsocks`; it allows loopback destinations and RFC 1929 username/password), installed when
# missing.
#
#   scripts/socks5-server.sh start PORT [USER PASSWORD]
#       Starts microsocks on 127.0.0.1:PORT (PORT 0: a free port), requiring USER/PASSWORD when
#       given. Prints "PID PORT" once the server accepts connections.
#   scripts/socks5-server.sh bridge PATH PORT
#       The server on 127.0.0.1:PORT behind a Unix-domain socket, as Tor's `SocksPort
#       unix:PATH` is (microsocks listens on TCP only): socat (Debian package `socat`, installed
#       when missing) listens on PATH and carries each connection to 127.0.0.1:PORT.
#       PATH must not exist yet and holds no `:` or `,` (socat's syntax). Prints "PID" once
#       PATH accepts connections.
#   scripts/socks5-server.sh stop PID
#       Stops the server or bridge started with that PID (only if it is a microsocks or socat
#       process).
#
# The tests read the servers' addresses from BITCOIN_SOCK_SOCKS5 (no authentication) and
# BITCOIN_SOCK_SOCKS5_AUTH (with BITCOIN_SOCK_SOCKS5_USER / BITCOIN_SOCK_SOCKS5_PASSWORD, by
# default bitcoin-sock / socks5-test-password); natively they start servers with this script
# when those are unset. tests/unix.rs starts its bridges itself, in temporary directories.
set -euo pipefail

usage() {
    sed -n '2,24p' "$0" >&2
    exit 2
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Installs Debian package $1 (which provides the command $1) when the command is missing.
install_package() {
    local package=$1
    command -v "$package" >/dev/null 2>&1 && return 0
    echo "socks5-server.sh: installing $package" >&2
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet.
    if ! as_root apt-get install -y -q "$package" >&2; then
        as_root apt-get update -q >&2
        as_root apt-get install -y -q "$package" >&2
    fi
    command -v "$package" >/dev/null 2>&1 || {
        echo "socks5-server.sh: $package is still missing after apt-get install" >&2
        exit 1
    }
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Whether process $1 is one this script starts: microsocks or socat.
is_ours() {
    local pid=$1 comm
    if [ -r "/proc/$pid/comm" ]; then
        comm=$(cat "/proc/$pid/comm" 2>/dev/null)
    else
        comm=$(ps -p "$pid" -o comm= 2>/dev/null | xargs basename 2>/dev/null)
    fi
    [ "$comm" = microsocks ] || [ "$comm" = socat ]
}

# Whether process $1 has ended: gone, or a zombie its new parent has not reaped yet.
ended() {
    ! kill -0 "$1" 2>/dev/null && return 0
    [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

stop_server() {
    local pid=$1
    if ended "$pid"; then
        return 0
    fi
    if ! is_ours "$pid"; then
        echo "socks5-server.sh: $pid is not a microsocks or socat process; not stopping it" >&2
        exit 1
    fi
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        ended "$pid" && return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Starts microsocks on port $1 with the remaining arguments; prints its pid when it accepts
# connections, fails when it exits (e.g. the port is taken) or does not come up in 10 s.
try_start() {
    local port=$1
    shift
    local log pid
    log=$(mktemp)
    microsocks -i 127.0.0.1 -p "$port" "$@" </dev/null >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "socks5-server.sh: microsocks on port $port exited: $(cat "$log")" >&2
            rm -f "$log"
            return 1
        fi
        if listening "$port"; then
            # Its own socket, not another server's: it is still alive after binding.
            if kill -0 "$pid" 2>/dev/null; then
                rm -f "$log"
                echo "$pid"
                return 0
            fi
        fi
        sleep 0.05
    done
    echo "socks5-server.sh: microsocks on port $port did not accept connections in 10 s" >&2
    kill "$pid" 2>/dev/null || true
    rm -f "$log"
    return 1
}

start_server() {
    local port=$1
    shift
    local auth=()
    case $# in
        0) ;;
        2) auth=(-u "$1" -P "$2") ;;
        *) usage ;;
    esac
    install_package microsocks
    local pid
    if [ "$port" != 0 ]; then
        pid=$(try_start "$port" "${auth[@]}")
        echo "$pid $port"
        return 0
    fi
    for _ in $(seq 20); do
        port=$((20000 + RANDOM % 40000))
        listening "$port" && continue
        if pid=$(try_start "$port" "${auth[@]}"); then
            echo "$pid $port"
            return 0
        fi
    done
    echo "socks5-server.sh: found no free port for microsocks" >&2
    exit 1
}

# Starts socat on the path $1, bridging to 127.0.0.1:$2; prints its pid when the path accepts
# connections, fails when socat exits or the path does not come up in 10 s.
start_bridge() {
    local path=$1 port=$2
    case $path in
        *:* | *,*) usage ;;
    esac
    install_package socat
    local log pid
    log=$(mktemp)
    socat "UNIX-LISTEN:$path,fork" "TCP4:127.0.0.1:$port" </dev/null >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "socks5-server.sh: socat on $path exited: $(cat "$log")" >&2
            rm -f "$log"
            exit 1
        fi
        # The file appears at bind(2), a moment before listen(2): a probe connection tells.
        if [ -S "$path" ] && socat -u /dev/null "UNIX-CONNECT:$path" 2>/dev/null; then
            rm -f "$log"
            echo "$pid"
            return 0
        fi
        sleep 0.05
    done
    echo "socks5-server.sh: socat on $path did not accept connections in 10 s" >&2
    kill "$pid" 2>/dev/null || true
    rm -f "$log"
    exit 1
}

case ${1:-} in
    bridge)
        [ $# -eq 3 ] || usage
        start_bridge "$2" "$3"
        ;;
    start)
        [ $# -ge 2 ] || usage
        shift
        start_server "$@"
        ;;
    stop)
        [ $# -eq 2 ] || usage
        stop_server "$2"
        ;;
    *) usage ;;
esac
