#!/usr/bin/env bash
# A real single-node Slurm cluster on this Debian/Ubuntu machine, for tests.
#
#   bash hpc/testing/local_cluster.sh start    # install (if missing), configure, start, wait idle
#   bash hpc/testing/local_cluster.sh stop
#   bash hpc/testing/local_cluster.sh status
#
# Needs root. Idempotent: `start` with everything running changes nothing. Partitions:
# standard (default) and debug. MAX_ARRAY_SIZE (default 1001) sets MaxArraySize.
set -euo pipefail

CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm-local
LOG_DIR=/var/log/slurm-local
MAX_ARRAY_SIZE=${MAX_ARRAY_SIZE:-1001}

need_root() {
    if [ "$(id -u)" != 0 ]; then echo "local_cluster.sh: needs root" >&2; exit 2; fi
}

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || { echo "local_cluster.sh: no apt-get to install Slurm" >&2; exit 2; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
    local host cpus mem conf
    host=$(hostname -s)
    cpus=$(nproc --all)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$CONF_DIR" "$STATE_DIR"/ctld "$STATE_DIR"/d "$LOG_DIR"
    conf=$(cat <<CONF
ClusterName=localcluster
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MaxArraySize=$MAX_ARRAY_SIZE
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
DefMemPerCPU=$((mem / cpus))
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=standard Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=debug Nodes=$host MaxTime=30 State=UP
CONF
)
    if [ ! -f "$CONF_DIR/slurm.conf" ] || [ "$conf" != "$(cat "$CONF_DIR/slurm.conf")" ]; then
        printf '%s\n' "$conf" > "$CONF_DIR/slurm.conf"
        echo changed
    fi
}

running() { pgrep -x "$1" >/dev/null; }

halt() {  # stop a daemon and wait until it has exited
    pkill -x "$1" || return 0
    for _ in $(seq 1 30); do running "$1" || return 0; sleep 0.5; done
    pkill -9 -x "$1" || true
}

start() {
    need_root
    install
    changed=$(write_conf)
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    running munged || su -s /bin/sh munge -c "/usr/sbin/munged --force" || /usr/sbin/munged --force
    if [ -n "$changed" ]; then
        halt slurmd
        halt slurmctld
    fi
    running slurmctld || slurmctld
    running slurmd || slurmd
    for _ in $(seq 1 60); do
        if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            [ -n "$changed" ] && echo "local cluster configured"
            sinfo
            return 0
        fi
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    echo "local_cluster.sh: the node did not become idle; see $LOG_DIR" >&2
    tail -n 20 "$LOG_DIR"/*.log >&2 || true
    exit 1
}

stop() {
    need_root
    halt slurmd
    halt slurmctld
    halt munged
    echo "local cluster stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
