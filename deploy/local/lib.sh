# shellcheck shell=bash
#
# deploy/local/lib.sh — functions shared by deploy/local/up, down and test.
#
# Source it from a bash script that runs with `set -euo pipefail`. It defines functions
# and a few variables (ET_ROOT, ET_PACKAGES_FILE) and starts nothing by itself.
# Servers always listen on 127.0.0.1 only. Every function is idempotent: starting what
# already runs reuses it, stopping what does not run is fine.
#
# Works as root or as a user with sudo. As root, PostgreSQL runs as the `postgres` OS user
# (the server refuses to run as root); as any other user it runs as that user.

ET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
ET_PACKAGES_FILE=$ET_ROOT/deploy/packages.txt
ET_APT_UPDATED=0

# --- messages --------------------------------------------------------------------------

# One progress line on stderr, so that stdout stays clean for values a function prints.
et_log() {
    printf '==> %s\n' "$*" >&2
}

et_warn() {
    printf 'warning: %s\n' "$*" >&2
}

# Print one clear error line and stop the script.
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (run as root, or install sudo)"
    fi
}

# --- packages ---------------------------------------------------------------------------

# Print the package names of a package list (default deploy/packages.txt), one a line,
# without comments and blank lines.
read_package_list() {
    local file=${1:-$ET_PACKAGES_FILE} line word words
    [[ -r $file ]] || die "package list not found: $file"
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        read -ra words <<<"$line"
        for word in "${words[@]}"; do
            printf '%s\n' "$word"
        done
    done <"$file"
}

# True when Debian package $1 is installed.
package_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == "install ok installed" ]]
}

# Install the packages of deploy/packages.txt that are missing, with apt-get (through
# sudo when not root). `apt-get update` runs once, and only when something is missing.
# EXECTIME_SKIP_PACKAGES=1 skips the check (for machines set up some other way).
ensure_packages() {
    local file=$ET_PACKAGES_FILE pkg missing=()
    if [[ ${EXECTIME_SKIP_PACKAGES:-0} == 1 ]]; then
        et_log "skipping the package check (EXECTIME_SKIP_PACKAGES=1)"
        return 0
    fi
    command -v dpkg-query >/dev/null 2>&1 ||
        die "dpkg-query not found: these scripts need Debian 12 (or install the packages of $file by hand and set EXECTIME_SKIP_PACKAGES=1)"
    while IFS= read -r pkg; do
        package_installed "$pkg" || missing+=("$pkg")
    done < <(read_package_list "$file")
    if ((${#missing[@]} == 0)); then
        et_log "Debian packages: all present"
        return 0
    fi
    et_log "installing missing Debian packages: ${missing[*]}"
    if ((ET_APT_UPDATED == 0)); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update ||
            die "apt-get update failed"
        ET_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
    # We want prometheus's promtool only; under systemd its package also starts a server on
    # :9090, which a developer's machine did not ask for.
    if [[ " ${missing[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]]; then
        as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
        et_log "prometheus installed for promtool only: its service is disabled"
    fi
}

# --- build ------------------------------------------------------------------------------

# build DIR [MESON_OPTION...]: configure DIR with meson (a fresh setup, or a reconfigure
# with the given options when DIR was set up before) and compile it with ninja.
build() {
    local dir=$1
    shift
    [[ $dir == /* ]] || dir=$ET_ROOT/$dir
    if [[ -f $dir/meson-private/coredata.dat ]]; then
        et_log "reconfiguring $dir ($*)"
        meson setup --reconfigure "$@" "$dir" "$ET_ROOT" ||
            die "meson reconfigure of $dir failed (see above; if the directory is stale, remove it and run again)"
    else
        et_log "configuring $dir ($*)"
        meson setup "$@" "$dir" "$ET_ROOT" || die "meson setup of $dir failed (see above)"
    fi
    et_log "building $dir"
    ninja -C "$dir" || die "the build in $dir failed (see above)"
}

# The widget needs Node.js 20 or newer with npm (the machine's own; Debian 12's nodejs is
# older). Dies with a clear line when they are missing.
ensure_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        die "the dashboard widget needs Node.js >= 20 and npm on PATH"
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    ((major >= 20)) || die "the dashboard widget needs Node.js >= 20 (found $(node --version))"
}

# build_widget: installs the widget's locked npm packages when the lock file changed since
# the last install, then builds ui-widget/dist (the bundle and dashboard.html).
build_widget() {
    local dir=$ET_ROOT/ui-widget
    ensure_node
    if [[ ! -d $dir/node_modules || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
        et_log "installing the widget's npm packages (npm ci)"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in ui-widget failed (see above)"
    fi
    et_log "building the widget (ui-widget/dist)"
    (cd "$dir" && npm run --silent build) || die "the widget build failed (see above)"
}

# --- processes ----------------------------------------------------------------------------

# True when process $1 exists and is not a zombie.
pid_alive() {
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# pidfile_pid PIDFILE PATTERN: print the pid recorded in PIDFILE when that process is
# alive and its command line contains PATTERN (so a reused pid is never taken for ours).
pidfile_pid() {
    local file=$1 pattern=$2 pid cmdline
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    pid=${pid//[^0-9]/}
    pid_alive "$pid" || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *"$pattern"* ]] || return 1
    printf '%s\n' "$pid"
}

# stop_pid PID NAME [TIMEOUT_S]: SIGTERM, wait up to TIMEOUT_S (default
# EXECTIME_STOP_TIMEOUT or 20 s), then SIGKILL.
stop_pid() {
    local pid=$1 name=$2 timeout=${3:-${EXECTIME_STOP_TIMEOUT:-20}} i
    pid_alive "$pid" || return 0
    et_log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    et_warn "$name (pid $pid) still runs after ${timeout} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    die "$name (pid $pid) did not exit after SIGKILL"
}

# proc_stop PIDFILE PATTERN NAME: stop the process recorded in PIDFILE (see pidfile_pid)
# and remove the pid file. Fine when nothing runs.
proc_stop() {
    local file=$1 pattern=$2 name=$3 pid
    if pid=$(pidfile_pid "$file" "$pattern"); then
        stop_pid "$pid" "$name"
    fi
    rm -f "$file"
}

# proc_start PIDFILE LOGFILE COMMAND...: start COMMAND in the background in its own
# session (it outlives the script and the terminal), stdin from /dev/null, stdout and
# stderr appended to LOGFILE, pid written to PIDFILE. Prepend `env K=V ...` for variables;
# the marker line written to LOGFILE leaves them out (they may hold secrets).
proc_start() {
    local file=$1 log=$2 pid word shown=()
    shift 2
    for word in "$@"; do
        [[ $word == env || $word =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || shown+=("$word")
    done
    printf '\n--- %s: starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${shown[*]}" >>"$log"
    setsid "$@" </dev/null >>"$log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$file"
}

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_http URL [TIMEOUT_S] [PID]: wait until GET URL answers 2xx (default 30 s).
# Returns 1 on timeout, or at once when process PID (if given) has exited.
wait_http() {
    local url=$1 timeout=${2:-30} pid=${3:-} deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
            return 0
        fi
        if [[ -n $pid ]] && ! pid_alive "$pid"; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# --- PostgreSQL ----------------------------------------------------------------------------

# Print the directory of the PostgreSQL server binaries (EXECTIME_PG_BIN, else the newest
# /usr/lib/postgresql/*/bin). Returns 1 when there is none.
pg_bin() {
    local dir
    if [[ -n ${EXECTIME_PG_BIN:-} ]]; then
        printf '%s\n' "$EXECTIME_PG_BIN"
        return 0
    fi
    dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [[ -x $dir/pg_ctl ]] || return 1
    printf '%s\n' "$dir"
}

# Run a command as the OS user that owns the PostgreSQL servers: `postgres` when we are
# root, ourselves otherwise. From / so that an unreadable working directory is no bother.
as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# pg_datadir STATE_DIR: print the data directory that belongs to STATE_DIR, deciding it on
# first use and recording it in STATE_DIR/datadir. As root it is STATE_DIR/data owned by
# `postgres` when that user can reach it (every parent traversable); otherwise, e.g. for
# a clone under /root, /var/lib/postgresql/exectime-<hash of STATE_DIR>/data.
pg_datadir() {
    local state=$1 record=$1/datadir dir hash
    if [[ -s $record ]]; then
        cat "$record"
        return 0
    fi
    mkdir -p "$state"
    dir=$state/data
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || die "OS user postgres not found (is the postgresql package installed?)"
        install -d -m 700 "$dir"
        chown postgres:postgres "$dir"
        if ! runuser -u postgres -- test -w "$dir" -a -x "$dir"; then
            rmdir "$dir"
            hash=$(printf '%s' "$state" | sha256sum)
            dir=/var/lib/postgresql/exectime-${hash:0:12}/data
            et_log "user postgres cannot reach $state; the data directory goes to $dir"
            install -d -o postgres -g postgres -m 700 "${dir%/data}" "$dir"
        fi
    else
        install -d -m 700 "$dir"
    fi
    printf '%s\n' "$dir" >"$record"
    printf '%s\n' "$dir"
}

# pg_start STATE_DIR PORT: initialise (once) and start a private PostgreSQL cluster for
# STATE_DIR on 127.0.0.1:PORT, trust authentication, superuser `postgres`, its Unix socket
# in the data directory, log in DATADIR/server.log. Reuses a running cluster; restarts it
# when it runs on another port. Returns once it accepts connections.
pg_start() {
    local state=$1 port=$2 bin datadir locale socket_dir running_port i
    mkdir -p "$state"
    state=$(cd "$state" && pwd -P)
    bin=$(pg_bin) || die "PostgreSQL server binaries not found under /usr/lib/postgresql (install the postgresql package)"
    datadir=$(pg_datadir "$state")

    if [[ ! -d $datadir ]]; then
        if ((EUID == 0)); then
            install -d -o postgres -g postgres -m 700 "$datadir"
        else
            install -d -m 700 "$datadir"
        fi
    fi
    if [[ ! -s $datadir/PG_VERSION ]]; then
        if [[ -n $(as_pg find "$datadir" -mindepth 1 -maxdepth 1 -print -quit 2>/dev/null) ]]; then
            die "$datadir is neither empty nor a PostgreSQL cluster (an interrupted initdb?); remove it and run again"
        fi
        locale=C
        if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
            locale=C.UTF-8
        fi
        et_log "initialising PostgreSQL cluster in $datadir"
        as_pg "$bin/initdb" -D "$datadir" -U postgres --auth=trust --encoding=UTF8 \
            --locale="$locale" >"$state/initdb.log" 2>&1 ||
            { tail -n 20 "$state/initdb.log" >&2; die "initdb failed (log: $state/initdb.log)"; }
    fi

    # Settings of ours live in one file, rewritten on every start, so a changed port applies.
    # A Unix socket path has a length limit (107 bytes): past it, TCP only.
    socket_dir=$datadir
    if ((${#datadir} + 16 > 100)); then
        socket_dir=
    fi
    as_pg tee "$datadir/exectime.conf" >/dev/null <<EOF
# Written by deploy/local/lib.sh (pg_start) at every start: change it there.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$socket_dir'
EOF
    if ! as_pg grep -qxF "include_if_exists = 'exectime.conf'" "$datadir/postgresql.conf"; then
        printf "\ninclude_if_exists = 'exectime.conf'\n" | as_pg tee -a "$datadir/postgresql.conf" >/dev/null
    fi

    if as_pg "$bin/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
        running_port=$(as_pg sed -n 4p "$datadir/postmaster.pid" 2>/dev/null || true)
        if [[ $running_port == "$port" ]] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            et_log "PostgreSQL already running on 127.0.0.1:$port ($datadir)"
            return 0
        fi
        et_log "PostgreSQL in $datadir runs on port ${running_port:-?}; restarting it on $port"
        as_pg "$bin/pg_ctl" -D "$datadir" -m fast -w -t 60 stop >/dev/null ||
            die "could not stop PostgreSQL in $datadir"
    fi

    if port_in_use "$port"; then
        die "127.0.0.1:$port is taken by another program; choose another PostgreSQL port (EXECTIME_LOCAL_PG_PORT / EXECTIME_TEST_PG_PORT)"
    fi
    et_log "starting PostgreSQL on 127.0.0.1:$port (data: $datadir, log: $datadir/server.log)"
    if ! as_pg "$bin/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 start >/dev/null; then
        as_pg tail -n 20 "$datadir/server.log" >&2 || true
        die "PostgreSQL did not start (log: $datadir/server.log)"
    fi
    for ((i = 0; i < 300; i++)); do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            return 0
        fi
        sleep 0.1
    done
    die "PostgreSQL on 127.0.0.1:$port does not accept connections (log: $datadir/server.log)"
}

# pg_stop STATE_DIR: stop the cluster of STATE_DIR (fast shutdown). Fine when none runs.
pg_stop() {
    local state=$1 bin datadir
    if [[ ! -s $state/datadir ]]; then
        et_log "PostgreSQL ($state): never started here"
        return 0
    fi
    datadir=$(<"$state/datadir")
    if ! bin=$(pg_bin); then
        et_log "PostgreSQL ($state): not installed, so not running"
        return 0
    fi
    if [[ -d $datadir ]] && as_pg "$bin/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
        et_log "stopping PostgreSQL ($datadir)"
        as_pg "$bin/pg_ctl" -D "$datadir" -m fast -w -t 60 stop >/dev/null ||
            die "could not stop PostgreSQL in $datadir"
    else
        et_log "PostgreSQL ($datadir): not running"
    fi
}

# pg_url_with_db URL DBNAME: URL (postgresql://user@host:port/db?params) with its database
# replaced by DBNAME.
pg_url_with_db() {
    local url=$1 db=$2 re='^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$'
    [[ $url =~ $re ]] || die "not a postgresql:// URL: $url"
    printf '%s/%s%s\n' "${BASH_REMATCH[1]}" "$db" "${BASH_REMATCH[4]}"
}

# psql_run URL [PSQL_ARG...]: psql without ~/.psqlrc, stopping at the first error, quiet,
# unaligned tuples-only output.
psql_run() {
    local url=$1 bin
    shift
    bin=$(pg_bin) || die "psql not found (install the postgresql package)"
    "$bin/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$url" "$@"
}

# setup_database ADMIN_URL [DBNAME] [ROLE]: on the cluster of superuser URL ADMIN_URL (its
# database part is ignored), create database DBNAME (default exectime) and login role ROLE
# (default exectime_agent) when missing. The migrations create the NOLOGIN roles
# exectime_writer and exectime_reader; grant them with grant_agent_roles after migrating.
setup_database() {
    local admin=$1 db=${2:-exectime} role=${3:-exectime_agent} maint
    maint=$(pg_url_with_db "$admin" postgres)
    et_log "ensuring database $db and login role $role"
    psql_run "$maint" -v db="$db" -v role="$role" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
SQL
}

# grant_agent_roles ADMIN_URL [ROLE]: GRANT exectime_writer, exectime_reader TO ROLE
# (default exectime_agent). Run after `exectime-agent migrate`, which creates both.
grant_agent_roles() {
    local admin=$1 role=${2:-exectime_agent} maint count
    maint=$(pg_url_with_db "$admin" postgres)
    count=$(psql_run "$maint" -c \
        "SELECT count(*) FROM pg_roles WHERE rolname IN ('exectime_writer', 'exectime_reader')")
    [[ $count == 2 ]] ||
        die "roles exectime_writer and exectime_reader do not exist: did the migrations run?"
    et_log "granting exectime_writer, exectime_reader to $role"
    psql_run "$maint" -v role="$role" <<'SQL'
SET client_min_messages = warning;
SELECT format('GRANT exectime_writer, exectime_reader TO %I', :'role')\gexec
SQL
}

# --- Redis ------------------------------------------------------------------------------------

# redis_cli PORT ARG...: redis-cli against 127.0.0.1:PORT.
redis_cli() {
    local port=$1
    shift
    redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# redis_start DIR PORT: start a private Redis on 127.0.0.1:PORT with its files (AOF, pid,
# log) in DIR; append-only, no RDB snapshots. Reuses the one of DIR when it already
# answers on PORT; restarts it when it runs on another port. Returns once it answers PING.
redis_start() {
    local dir=$1 port=$2 pid info_pid i
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found (install the redis-server package)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if pid=$(pidfile_pid "$dir/redis.pid" redis-server); then
        info_pid=$(redis_cli "$port" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p' || true)
        if [[ $info_pid == "$pid" ]]; then
            et_log "Redis already running on 127.0.0.1:$port ($dir)"
            return 0
        fi
        et_log "Redis of $dir does not answer on port $port; restarting it"
        redis_stop "$dir"
    fi
    if port_in_use "$port"; then
        die "127.0.0.1:$port is taken by another program; choose another Redis port (EXECTIME_LOCAL_REDIS_PORT / EXECTIME_TEST_REDIS_PORT)"
    fi
    et_log "starting Redis on 127.0.0.1:$port (dir: $dir, log: $dir/redis.log)"
    redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$dir" \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --appendonly yes --save '' ||
        die "redis-server failed to start (log: $dir/redis.log)"
    for ((i = 0; i < 300; i++)); do
        if [[ $(redis_cli "$port" ping 2>/dev/null) == PONG ]]; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/redis.log" >&2 || true
    die "Redis on 127.0.0.1:$port does not answer PING (log: $dir/redis.log)"
}

# redis_stop DIR: stop the Redis whose pid file is in DIR. Fine when none runs.
redis_stop() {
    local dir=$1 pid
    if pid=$(pidfile_pid "$dir/redis.pid" redis-server); then
        stop_pid "$pid" "Redis ($dir)"
    else
        et_log "Redis ($dir): not running"
    fi
    rm -f "$dir/redis.pid"
}

# --- tokens -------------------------------------------------------------------------------------

# Base64url without padding, of stdin.
base64url() {
    openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# make_dev_jwt SECRET TENANT...: print an HS256 JWT signed with SECRET, with claims
# {"sub":"dev","role":"authenticated","tenant_ids":[TENANT...],"exp":now + 30 days}.
# For local development only: the secret passes on openssl's command line.
make_dev_jwt() {
    local secret=$1 tenant tenants='' header payload signature exp
    shift
    (($# > 0)) || die "make_dev_jwt: give at least one tenant id"
    [[ -n $secret ]] || die "make_dev_jwt: empty secret"
    for tenant in "$@"; do
        tenant=${tenant//\\/\\\\}
        tenant=${tenant//\"/\\\"}
        tenants+=${tenants:+,}\"$tenant\"
    done
    exp=$(($(date +%s) + 30 * 86400))
    header=$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | base64url)
    payload=$(printf '{"sub":"dev","role":"authenticated","tenant_ids":[%s],"exp":%d}' \
        "$tenants" "$exp" | base64url)
    signature=$(printf '%s.%s' "$header" "$payload" |
        openssl dgst -sha256 -mac HMAC -macopt "key:$secret" -binary | base64url)
    printf '%s.%s.%s\n' "$header" "$payload" "$signature"
}
