#!/usr/bin/env bash
# Stop what .ci/slurm/start.sh started (slurmd, slurmctld, slurmdbd, MariaDB, MUNGE), by pid file.
set -uo pipefail
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid /run/mysqld/mysqld.pid /run/munge/munged.pid; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || continue
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
done
