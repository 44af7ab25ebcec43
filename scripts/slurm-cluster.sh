#!/bin/sh
# A single-node Slurm cluster on localhost for the tests: slurmctld and slurmd from
# Debian's packages (installed with apt-get when missing, as root), no munge, no systemd.
#
#   scripts/slurm-cluster.sh install # only install the packages (scripts/test.sh does)
#   scripts/slurm-cluster.sh start   # prints the slurm.conf to export as SLURM_CONF
#   scripts/slurm-cluster.sh stop
#
# Everything (state, spool, pid and log files) lives in $RUNS_SLURM_DIR (default
# /tmp/runs-slurm). Starting an already running cluster only prints its slurm.conf.
set -eu
dir=${RUNS_SLURM_DIR:-/tmp/runs-slurm}
conf=$dir/slurm.conf

install() {
    command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing slurmctld, slurmd and slurm-client with apt-get ..." >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client >/dev/null
    else
        echo "The Slurm tests need Slurm. Install with: sudo apt-get install -y slurmctld slurmd slurm-client" >&2
        exit 1
    fi
}

write_conf() {
    mkdir -p "$dir/state" "$dir/spool"
    cat > "$conf" <<CONF
ClusterName=runs-test
SlurmctldHost=localhost
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=30
SchedulerType=sched/builtin
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc)
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
}

running() {
    [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null &&
        [ -f "$dir/slurmd.pid" ] && kill -0 "$(cat "$dir/slurmd.pid")" 2>/dev/null
}

case "${1:-}" in
install)
    install
    ;;
start)
    install
    if ! running; then
        "$0" stop >/dev/null 2>&1 || true
        write_conf
        slurmctld -f "$conf"
        slurmd -f "$conf" -N localhost
        tries=0
        until SLURM_CONF=$conf sinfo -h -o %t 2>/dev/null | grep -qx idle; do
            tries=$((tries + 1))
            if [ "$tries" -gt 100 ]; then
                echo "slurm-cluster.sh: the node did not become idle; see $dir/slurmctld.log and $dir/slurmd.log" >&2
                exit 1
            fi
            sleep 0.1
        done
    fi
    echo "$conf"
    ;;
stop)
    for daemon in slurmd slurmctld; do
        if [ -f "$dir/$daemon.pid" ]; then
            kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
        fi
    done
    sleep 0.3
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
