#!/usr/bin/env bash
# A real single-node SLURM cluster for the tests, started without systemd, as root.
#
#   bash tests/slurm/cluster.sh start    # (re)start: wipes old state, waits for an idle node
#   bash tests/slurm/cluster.sh stop     # stops exactly the daemons `start` recorded
#   bash tests/slurm/cluster.sh status   # daemons and sinfo; non-zero unless all are up
#   bash tests/slurm/cluster.sh env      # prints `export SLURM_CONF=...` for a shell
#
# Everything lives in one state directory, $LMLAB_SLURM_DIR (default /tmp/lmlab-slurm):
# configs (etc/), logs (log/), pid and socket files (run/), the munge key, a private
# MariaDB data directory, slurmctld's state and slurmd's spool, and two fake GPU device
# files. Daemons: munged -> MariaDB -> slurmdbd -> slurmctld -> slurmd. slurmdbd is not
# optional: the Snakemake SLURM plugin polls `sacct` whenever the binary exists, and
# without a database `sacct` fails and Snakemake waits forever.
#
# Cluster shape: one node (lmlab-node) with the machine's real core count and memory
# (minus a margin), two fake GPUs, and two partitions on it: `cpu` (default) and `gpu`.
# Accounting knows cluster `lmlab`, account `lmlab` and user root (default account lmlab).
#
# Commands run against it need SLURM_CONF=$LMLAB_SLURM_DIR/etc/slurm.conf; when
# /etc/slurm/slurm.conf does not exist, `start` also links it there (and `stop` removes
# the link), so that a plain `sinfo` or `snakemake --profile slurm` finds the cluster.
#
# Ports (override by environment if they clash): slurmctld 6817, slurmd 6818,
# slurmdbd 6819, MariaDB 36306 (127.0.0.1 only).
set -Eeuo pipefail
trap 'echo "cluster.sh: ERROR: line $LINENO: \`$BASH_COMMAND\` failed" >&2' ERR

# The daemons live in /usr/sbin, which a non-login shell's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
D="${LMLAB_SLURM_DIR:-/tmp/lmlab-slurm}"
CTLD_PORT="${LMLAB_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${LMLAB_SLURMD_PORT:-6818}"
DBD_PORT="${LMLAB_SLURMDBD_PORT:-6819}"
DB_PORT="${LMLAB_SLURM_DB_PORT:-36306}"
START_TIMEOUT="${LMLAB_SLURM_START_TIMEOUT:-60}"
CLUSTER=lmlab
ACCOUNT=lmlab
NODE=lmlab-node
NGPUS=2
DB_USER=slurm
DB_PASS=lmlab-slurm-test # a throwaway database reachable only on 127.0.0.1

case "$D" in
/?*) ;;
*)
    echo "cluster.sh: LMLAB_SLURM_DIR must be an absolute path other than /, got '$D'" >&2
    exit 2
    ;;
esac

export SLURM_CONF="$D/etc/slurm.conf"
PIDS="$D/run/pids" # one "name pid starttime" line per daemon that start launched
ETC_LINK=/etc/slurm/slurm.conf
MUNGE_SOCKET=/run/munge/munge.socket.2

# mark NAME: appends "NAME=<ms since the last mark>" to the timing summary of start.
TIMES=""
LAST_NS=$(date +%s%N)
mark() {
    local now
    now=$(date +%s%N)
    TIMES="$TIMES $1=$(((now - LAST_NS) / 1000000))ms"
    LAST_NS=$now
}

die() {
    echo "cluster.sh: ERROR: $*" >&2
    exit 1
}

log_tails() {
    local f
    for f in "$D"/log/*.log; do
        [ -s "$f" ] || continue
        echo "----- $f (last 15 lines) -----" >&2
        tail -n 15 "$f" >&2
    done
}

need() {
    local missing=() b
    for b in "$@"; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
    [ "${#missing[@]}" -eq 0 ] ||
        die "missing programs: ${missing[*]} (run: bash tests/system_deps.sh, as root)"
}

# Start time (clock ticks since boot) of a PID; with the PID it names one process for good.
starttime() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # drop "pid (comm) ": comm may contain spaces
    local f
    read -ra f <<<"$stat" # f[0] is field 3 (state), f[19] field 22 (starttime)
    echo "${f[19]}"
}

# True if PID $1 is alive and is still the process started at time $2 (not a reused PID).
# A zombie counts as gone: the daemons' parent is PID 1 after `start` exits, and PID 1
# here (not an init) reaps them only now and then.
pid_is() {
    local stat f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    read -ra f <<<"$stat"
    [ "${f[0]}" != Z ] && [ "${f[19]}" = "$2" ]
}

# Starts "$@" detached (own session, output to log/$name.out) and records its PID.
# In a non-interactive shell the background child is no process-group leader, so
# setsid execs in place and $! is the daemon itself.
launch() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$D/log/$name.out" 2>&1 &
    echo "$name $! $(starttime $!)" >>"$PIDS"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_tails
            die "timed out after ${secs}s waiting for $what"
        fi
        sleep 0.1
    done
}

stop() {
    if [ -f "$PIDS" ]; then
        # Cancel leftover jobs first so no slurmstepd outlives its slurmd.
        if command -v squeue >/dev/null && squeue -h -o %i >/dev/null 2>&1; then
            squeue -h -o %i | xargs -r scancel >/dev/null 2>&1 || true
        fi
        # Stop in reverse start order, only the PIDs we recorded.
        local name pid st left
        tac "$PIDS" | while read -r name pid st; do
            pid_is "$pid" "$st" || continue
            kill -TERM "$pid" 2>/dev/null || true
            # Up to 10 s for a clean shutdown.
            for _ in $(seq 100); do
                pid_is "$pid" "$st" || break
                sleep 0.1
            done
            if pid_is "$pid" "$st"; then
                echo "cluster.sh: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
                sleep 0.2
            fi
        done
        left=""
        while read -r name pid st; do
            if pid_is "$pid" "$st"; then left="$left $name($pid)"; fi
        done <"$PIDS"
        [ -z "$left" ] || die "still running after stop:$left"
        rm -f "$PIDS"
    fi
    if [ -L "$ETC_LINK" ] && [ "$(readlink "$ETC_LINK")" = "$SLURM_CONF" ]; then
        rm -f "$ETC_LINK"
    fi
}

write_configs() {
    local cpus mem_total_mb real_mb margin_mb def_mem host
    cpus=$(nproc --all)
    mem_total_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
    # slurmd drains a node whose RealMemory exceeds what it measures: keep 10% (at
    # least 512 MB) back for the OS and the daemons.
    margin_mb=$((mem_total_mb / 10 > 512 ? mem_total_mb / 10 : 512))
    real_mb=$((mem_total_mb - margin_mb))
    # Without DefMemPerCPU a job that asks for no memory gets the whole node.
    def_mem=$((real_mb / cpus < 1024 ? real_mb / cpus : 1024))
    host=$(hostname -s)

    cat >"$D/etc/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh; rewritten on every start.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
# No systemd/cgroups here: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
ReturnToService=2
MinJobAge=300
# Accounting through slurmdbd: sacct works, and AllocTRES records gres/gpu.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
GresTypes=gpu
NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb Gres=gpu:$NGPUS State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF

    # Fake GPUs: SLURM only needs character devices to hand out (copies of /dev/null).
    {
        echo "AutoDetect=off"
        local i
        for ((i = 0; i < NGPUS; i++)); do
            echo "NodeName=$NODE Name=gpu File=$D/dev/gpu$i"
        done
    } >"$D/etc/gres.conf"

    # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF; it must be 0600.
    cat >"$D/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$D/etc/slurmdbd.conf"
}

stop_after_failed_start() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "cluster.sh: start failed; stopping the daemons it started" >&2
        stop || true
    fi
}

node_idle() {
    [ "$(sinfo -h -n "$NODE" -o %t 2>/dev/null | sort -u)" = "idle" ]
}

start() {
    need munge munged mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sinfo sacctmgr
    [ "$(id -u)" -eq 0 ] || die "must run as root (uid is $(id -u))"
    local t0ns
    t0ns=$(date +%s%N)
    LAST_NS=$t0ns

    stop
    mark stop-old
    # From here on, a failed start stops whatever it had started (logs stay in log/).
    trap stop_after_failed_start EXIT
    # Fresh slurmctld/slurmd state each time: a drained node or old jobs would otherwise
    # carry over between runs. The MariaDB data directory with the cluster, account and
    # user is kept (initialising MariaDB takes ~4 s and adding a cluster ~2.5 s on this
    # disk), but its job records are emptied below: job ids restart at 1 and `sacct -a`
    # shows only this run's jobs. LMLAB_SLURM_FRESH_DB=1 starts from an empty database.
    rm -rf "${D:?}/etc" "${D:?}/run" "${D:?}/log" "${D:?}/ctld" "${D:?}/spool" "${D:?}/dev"
    mkdir -p "$D/etc" "$D/run" "$D/log" "$D/ctld" "$D/spool" "$D/dev"
    chmod 755 "$D" "$D/run" "$D/dev"
    local i
    for ((i = 0; i < NGPUS; i++)); do
        mknod -m 666 "$D/dev/gpu$i" c 1 3 # plain files are rejected by gres/gpu
    done
    write_configs
    : >"$PIDS"
    mark configs

    # munge, with its own key. The socket stays at munge's default path: sacctmgr and
    # sacct ignore AuthInfo=socket=... when they talk to slurmdbd (seen with 22.05).
    if munge -n </dev/null >/dev/null 2>&1; then
        die "a munged not started by this script already answers on $MUNGE_SOCKET; stop it first"
    fi
    mkdir -p "$(dirname "$MUNGE_SOCKET")"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    dd if=/dev/urandom of="$D/etc/munge.key" bs=1024 count=1 status=none
    chmod 400 "$D/etc/munge.key"
    launch munged munged --foreground --force --key-file="$D/etc/munge.key" \
        --socket="$MUNGE_SOCKET" --pid-file="$D/run/munged.pid" \
        --log-file="$D/log/munged.log" --seed-file="$D/run/munged.seed"
    wait_for 10 munged munge -n
    mark munged

    # MariaDB: private datadir, socket and port; TCP on 127.0.0.1 for slurmdbd. A test
    # database needs no durability: no fsync, no doublewrite.
    local db_opts=(--no-defaults --user=root --datadir="$D/mysql"
        --innodb-flush-method=nosync --innodb-doublewrite=0
        --innodb-flush-log-at-trx-commit=0 --innodb-log-file-size=16M
        --innodb-file-per-table=0)
    if [ "${LMLAB_SLURM_FRESH_DB:-0}" = 1 ] || [ ! -e "$D/mysql/.lmlab-initialised" ]; then
        rm -rf "$D/mysql"
        mkdir -p "$D/mysql"
        mariadb-install-db "${db_opts[@]}" --skip-test-db \
            --auth-root-authentication-method=socket \
            >"$D/log/mariadb-install-db.log" 2>&1 ||
            {
                tail -n 20 "$D/log/mariadb-install-db.log" >&2
                die "mariadb-install-db failed"
            }
        touch "$D/mysql/.lmlab-initialised"
        mark mariadb-install-db
    fi
    launch mariadbd mariadbd "${db_opts[@]}" \
        --socket="$D/run/mysqld.sock" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --pid-file="$D/run/mysqld.pid" --log-error="$D/log/mariadb.log" \
        --skip-log-bin --innodb-buffer-pool-size=32M --performance-schema=OFF
    wait_for 30 "MariaDB" mariadb-admin --no-defaults -S "$D/run/mysqld.sock" -u root ping
    mariadb --no-defaults -S "$D/run/mysqld.sock" -u root <<EOF
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO '$DB_USER'@'localhost';
EOF
    # Empty every per-cluster table (jobs, steps, events, usage) except the associations.
    local sql
    sql=$(mariadb --no-defaults -S "$D/run/mysqld.sock" -u root -N -B -e "
        SELECT CONCAT('TRUNCATE TABLE slurm_acct_db.\`', table_name, '\`;')
        FROM information_schema.tables
        WHERE table_schema = 'slurm_acct_db' AND table_name LIKE '${CLUSTER}\_%'
          AND table_name NOT IN ('${CLUSTER}_assoc_table', '${CLUSTER}_wckey_table')")
    [ -z "$sql" ] || mariadb --no-defaults -S "$D/run/mysqld.sock" -u root -e "$sql"
    mark mariadbd

    launch slurmdbd slurmdbd -D
    wait_for 30 "slurmdbd" sacctmgr -n list cluster
    mark slurmdbd
    # Cluster, account and user in one round trip (each sacctmgr call costs ~0.5 s),
    # unless a kept database has them already.
    if [ "$(sacctmgr -n -P show assoc cluster="$CLUSTER" account="$ACCOUNT" user=root \
        format=user 2>/dev/null)" != root ]; then
        cat >"$D/etc/associations.cfg" <<EOF
Cluster - '$CLUSTER'
Parent - 'root'
Account - '$ACCOUNT':Description='lmlab tests':Organization='lmlab'
Parent - '$ACCOUNT'
User - 'root':DefaultAccount='$ACCOUNT'
EOF
        sacctmgr -i load file="$D/etc/associations.cfg" >"$D/log/sacctmgr-load.log" 2>&1 ||
            {
                cat "$D/log/sacctmgr-load.log" >&2
                die "sacctmgr load of cluster/account/user failed"
            }
    fi
    mark sacctmgr

    launch slurmctld slurmctld -D -i -f "$SLURM_CONF"
    wait_for 30 "slurmctld" scontrol ping
    mark slurmctld
    launch slurmd slurmd -D -N "$NODE" -f "$SLURM_CONF"

    [ -e "$ETC_LINK" ] || { mkdir -p /etc/slurm && ln -s "$SLURM_CONF" "$ETC_LINK"; }

    local deadline=$((SECONDS + START_TIMEOUT))
    until node_idle; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            sinfo -N -l >&2 || true
            scontrol show node "$NODE" 2>&1 | grep -iE 'state|reason' >&2 || true
            log_tails
            die "node $NODE not idle after ${START_TIMEOUT}s (see logs in $D/log)"
        fi
        sleep 0.2
    done
    mark slurmd-idle
    trap - EXIT
    local ms=$((($(date +%s%N) - t0ns) / 1000000))
    echo "cluster.sh: SLURM cluster '$CLUSTER' up in ${ms} ms (state: $D)"
    echo "cluster.sh: timings:$TIMES"
    echo "cluster.sh: export SLURM_CONF=$SLURM_CONF"
    sinfo
}

status() {
    [ -f "$PIDS" ] || {
        echo "cluster.sh: not started (no $PIDS)"
        return 3
    }
    local name pid st dead=0
    while read -r name pid st; do
        if pid_is "$pid" "$st"; then
            echo "$name: running (pid $pid)"
        else
            echo "$name: DEAD (pid $pid; see $D/log/)"
            dead=1
        fi
    done <"$PIDS"
    sinfo || return 1
    return "$dead"
}

case "${1:-}" in
start) start ;;
stop)
    stop
    echo "cluster.sh: stopped (state kept in $D)"
    ;;
status) status || exit $? ;;
env) echo "export SLURM_CONF=$SLURM_CONF" ;;
*)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
