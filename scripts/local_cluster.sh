#!/usr/bin/env bash
# A real single-node Slurm cluster on this Debian/Ubuntu machine, for tests.
#
#   bash scripts/local_cluster.sh start    # install (if missing), configure, start, wait idle
#   bash scripts/local_cluster.sh stop
#   bash scripts/local_cluster.sh status
#
# Needs root. Idempotent: `start` with everything running changes nothing. Partitions:
# standard (default) and debug; scavenger (preemptible: requeued, GraceTime 30 s) and
# scavenger_nograce (GraceTime 0), which jobs in urgent preempt. MAX_ARRAY_SIZE (default
# 1001) sets MaxArraySize.
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
        && command -v munged >/dev/null && command -v rsync >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || { echo "local_cluster.sh: no apt-get to install Slurm" >&2; exit 2; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge rsync >/dev/null  # rsync: as login nodes have it
}

# Memory is enforced (task/cgroup, ConstrainRAMSpace) where the kernel's memory cgroup is
# mounted writable (v1: /sys/fs/cgroup/memory; v2: a memory controller); else not, and the
# out-of-memory test is skipped with that reason. HPC_CGROUP=none forces the latter.
cgroup_plugin() {
    if [ "${HPC_CGROUP:-auto}" = none ]; then echo none
    elif [ -w /sys/fs/cgroup/memory/memory.limit_in_bytes ] || [ -w /sys/fs/cgroup/memory ]; then echo cgroup/v1
    elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && [ -w /sys/fs/cgroup ]; then echo cgroup/v2
    else echo none
    fi
}

write_conf() {
    local host cpus mem conf plugin task proctrack
    plugin=${1:-$(cgroup_plugin)}
    if [ "$plugin" = none ]; then task=task/none; proctrack=proctrack/linuxproc; rm -f "$CONF_DIR/cgroup.conf"
    else
        task=task/cgroup; proctrack=proctrack/cgroup
        mkdir -p "$CONF_DIR"
        printf '%s\n' "CgroupPlugin=$plugin" "ConstrainCores=yes" "ConstrainRAMSpace=yes" \
            "ConstrainSwapSpace=yes" "AllowedSwapSpace=0" > "$CONF_DIR/cgroup.conf"
    fi
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
ProctrackType=$proctrack
TaskPlugin=$task
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MaxArraySize=$MAX_ARRAY_SIZE
MaxJobCount=100000
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
DefMemPerCPU=$((mem / cpus))
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=standard Nodes=$host Default=YES MaxTime=INFINITE State=UP PreemptMode=OFF
PartitionName=debug Nodes=$host MaxTime=30 State=UP PreemptMode=OFF
PartitionName=scavenger Nodes=$host MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=30
PartitionName=scavenger_nograce Nodes=$host MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=0
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
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
    if ! wait_idle; then
        if [ -f "$CONF_DIR/cgroup.conf" ]; then  # cgroups refused here: run without enforcing memory
            echo "local_cluster.sh: slurmd did not start with cgroups; memory will not be enforced" >&2
            write_conf none >/dev/null
            halt slurmd
            halt slurmctld
            wait_idle && return 0
        fi
        echo "local_cluster.sh: the node did not become idle; see $LOG_DIR" >&2
        tail -n 20 "$LOG_DIR"/*.log >&2 || true
        exit 1
    fi
}

wait_idle() {
    running slurmctld || slurmctld
    running slurmd || slurmd
    for _ in $(seq 1 60); do
        if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            echo "local cluster up ($(grep -o 'TaskPlugin=.*' "$CONF_DIR/slurm.conf"))"
            sinfo
            return 0
        fi
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    return 1
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
