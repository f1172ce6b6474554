#!/usr/bin/env bash
# Start a one-node SLURM cluster "deepsky-ci" on this machine: MUNGE, MariaDB, slurmdbd (so
# `sacct` works), slurmctld and slurmd; one node (this machine's CPUs and memory) in a partition
# "cpu" and a partition "gpu", advertising two stand-in GPUs (gres.conf.in). Idempotent: starts
# only what is not running (restarts SLURM if the configuration changed), then waits until the
# node is up. Needs root and the packages of .ci/slurm/install.sh; .ci/slurm/stop.sh stops it.
# Account for jobs: "deepsky" (the plugin checks accounts with sacctmgr).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cluster=deepsky-ci
account=deepsky

for tool in munged mariadbd mariadb slurmdbd slurmctld slurmd sinfo sacctmgr; do
    command -v "$tool" >/dev/null || { echo "start.sh: $tool is missing (run .ci/slurm/install.sh)" >&2; exit 3; }
done
[ "$(id -u)" -eq 0 ] || { echo "start.sh: needs root" >&2; exit 3; }

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    echo "start.sh: $what did not come up in ${seconds}s" >&2
    tail -n 20 /var/log/slurm/*.log /var/log/mysql/error.log 2>/dev/null >&2 || true
    exit 1
}

mkdir -p /var/log/slurm /var/spool/slurmctld /var/spool/slurmd /etc/slurm /run/munge /run/mysqld /var/log/mysql

# Configuration: the node line is this machine's own (CPUs, sockets, memory) from `slurmd -C`.
node=$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+/NodeName=localhost NodeAddr=127.0.0.1/')
changed=0
install_conf() {  # install_conf TEMPLATE TARGET MODE
    local new
    new=$(sed "s|@NODE@|$node|" "$here/$1")
    if [ ! -f "$2" ] || [ "$(cat "$2")" != "$new" ]; then
        printf '%s\n' "$new" > "$2"
        changed=1
    fi
    chmod "$3" "$2"
}
install_conf slurm.conf.in /etc/slurm/slurm.conf 644
install_conf gres.conf.in /etc/slurm/gres.conf 644
install_conf slurmdbd.conf.in /etc/slurm/slurmdbd.conf 600
if [ "$changed" = 1 ]; then  # a new configuration needs fresh SLURM daemons
    for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid; do
        if running "$pidfile"; then
            kill "$(cat "$pidfile")"
            for _ in $(seq 30); do running "$pidfile" || break; sleep 1; done
        fi
    done
fi

# MUNGE authenticates the daemons and the clients to each other.
if ! running /run/munge/munged.pid; then
    if [ ! -s /etc/munge/munge.key ]; then mungekey --create --keyfile /etc/munge/munge.key; fi
    chown munge:munge /etc/munge/munge.key /run/munge
    chmod 400 /etc/munge/munge.key
    runuser -u munge -- munged
fi
wait_for 10 munge munge -n

# MariaDB, on its socket only, holds slurmdbd's accounting database.
if ! running /run/mysqld/mysqld.pid; then
    chown mysql:mysql /run/mysqld /var/log/mysql
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    setsid mariadbd --user=mysql --skip-networking --pid-file=/run/mysqld/mysqld.pid \
        --socket=/run/mysqld/mysqld.sock --log-error=/var/log/mysql/error.log </dev/null >/dev/null 2>&1 &
fi
wait_for 60 MariaDB mariadb-admin --socket=/run/mysqld/mysqld.sock ping
mariadb --socket=/run/mysqld/mysqld.sock <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'deepsky-ci';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

running /run/slurmdbd.pid || slurmdbd
wait_for 30 slurmdbd sacctmgr -n list cluster
# The cluster, an account and this user in it (sacctmgr errors when they exist already).
sacctmgr -n -P list cluster format=cluster | grep -qx "$cluster" || sacctmgr -i add cluster "$cluster" >/dev/null
sacctmgr -n -P list account format=account | grep -qx "$account" \
    || sacctmgr -i add account "$account" cluster="$cluster" description="deepsky CI" organization=deepsky >/dev/null
sacctmgr -n -P list user "$(id -un)" format=user,account -s | grep -qx "$(id -un)|$account" \
    || sacctmgr -i add user "$(id -un)" account="$account" cluster="$cluster" >/dev/null

running /run/slurmctld.pid || slurmctld
wait_for 30 slurmctld scontrol ping
running /run/slurmd.pid || slurmd -N localhost

node_up() {
    local state
    state=$(sinfo -h -N -n localhost -o %T | head -n 1)
    case "$state" in
        idle|mixed|allocated|completing) return 0 ;;
        drain*|down*) scontrol update nodename=localhost state=resume >/dev/null 2>&1; return 1 ;;
        *) return 1 ;;
    esac
}
wait_for 60 "the node (sinfo)" node_up
sinfo
