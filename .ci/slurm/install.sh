#!/usr/bin/env bash
# Debian's SLURM (controller, node daemon, accounting daemon, clients), MUNGE and MariaDB for
# slurmdbd: what .ci/slurm/start.sh runs. Needs root; a no-op when they are installed.
set -euo pipefail
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v slurmdbd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null && command -v mariadbd >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurmdbd slurm-client munge mariadb-server >/dev/null
