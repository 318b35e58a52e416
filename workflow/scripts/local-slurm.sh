#!/usr/bin/env bash
# A real single-node SLURM on this machine, to try `snakemake --profile slurm` without a cluster
# (docs/cluster.md, "A SLURM on your machine"): Debian's slurm-wlm (slurmctld + slurmd), munge,
# and accounting (slurmdbd on MariaDB) so that `sacct` answers as on a cluster that has it.
# One node, two fake GPUs (character devices standing in for /dev/nvidiaN: SLURM schedules and
# hands them out, torch sees no CUDA and runs on the CPU). Partitions `cpu` (default) and `gpu`,
# account `lab`, GPU type `fake`, node feature `fakegpu`.
#
#   sudo workflow/scripts/local-slurm.sh start    # install what is missing, start what is not running
#   sudo workflow/scripts/local-slurm.sh status   # exit 0 when every daemon runs and the node is up
#   sudo workflow/scripts/local-slurm.sh stop     # stop the daemons (packages and job history stay)
#   sudo workflow/scripts/local-slurm.sh install  # only install the Debian packages (the README's test command)
#
# Needs root (daemons, /etc, mknod) and no systemd: every daemon is started by hand, and stopped
# through its pid file. Idempotent: `start` twice leaves one of each daemon.
set -euo pipefail

NODE=$(hostname -s)
CLUSTER=della-local
ACCOUNT=lab
# whoever runs the script submits the jobs: root, or the user behind sudo
USER_NAME=${SUDO_USER:-root}
GPUS=2
# A node smaller than the machine leaves the OS room; jobs asking for more stay pending.
CPUS=$(nproc)
MEM_MB=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 3 / 4))
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
# A throw-away database on a socket only this machine's root reaches; not a secret.
DB_PASS=della-local-slurm
LOG=/var/log/slurm

say() { echo "local-slurm: $*"; }
die() { echo "local-slurm: error: $*" >&2; exit 1; }

# pid of a running daemon from its pid file (empty when it is not running)
running() { local pid; pid=$(cat "$1" 2>/dev/null || true); [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...: poll until COMMAND succeeds
    local seconds=$1 what=$2; shift 2
    for _ in $(seq "$((seconds * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    die "$what did not come up within ${seconds}s (logs: $LOG/, /var/log/munge/, /var/log/mysql/)"
}

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return
    # the tests start SLURM with LOCAL_SLURM_NO_INSTALL=1: tests download nothing; the README's test
    # command (and .ci/run) installs the packages first, with `install`
    [[ "${LOCAL_SLURM_NO_INSTALL:-0}" == 1 ]] && die "missing Debian packages: ${missing[*]}; run '$0 install' first (the README's test command does)"
    say "installing ${missing[*]}"
    # no systemd: keep the packages' post-install scripts from starting daemons themselves
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; }
}

write_config() {
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG"
    local before; before=$(cat /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf 2>/dev/null | md5sum || true)
    cat > /etc/slurm/slurm.conf <<EOF
# Written by della-bench workflow/scripts/local-slurm.sh: one node, ${GPUS} fake GPUs.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
AuthType=auth/munge
# Requeued jobs wait cred_expire seconds before they start again (default 120).
AuthInfo=cred_expire=10
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
# Look at pending jobs every 5 s (default 60): a requeued job becomes eligible again in seconds.
SchedulerParameters=sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# Jobs must name an existing account (sbatch -A), as on most clusters.
AccountingStorageEnforce=associations
# GPUs appear in a job's TRES (scontrol show job, sacct -o AllocTRES) as on a GPU cluster.
AccountingStorageTRES=gres/gpu
# Finished jobs stay in squeue/scontrol for 10 min: the executor's squeue status command needs it.
MinJobAge=600
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
GresTypes=gpu
NodeName=$NODE CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:fake:$GPUS Features=fakegpu State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
EOF
    # slurmd counts GPUs only through device files: without File= the node reports none.
    echo "NodeName=$NODE Name=gpu Type=fake File=/dev/fakegpu[0-$((GPUS - 1))]" > /etc/slurm/gres.conf
    for i in $(seq 0 $((GPUS - 1))); do [[ -e /dev/fakegpu$i ]] || mknod /dev/fakegpu$i c 1 3; done
    cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DB_PASS
EOF
    chmod 600 /etc/slurm/slurmdbd.conf  # slurmdbd refuses a readable one
    # daemons read their config at start: restart those running on another one
    if [[ $before != $(cat /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf | md5sum) ]]; then
        stop_slurm
    fi
}

start_munge() {
    mkdir -p /var/log/munge /run/munge /var/lib/munge
    [[ -s /etc/munge/munge.key ]] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
    chmod 400 /etc/munge/munge.key
    if [[ -z $(running /run/munge/munged.pid) ]]; then
        su -s /bin/sh munge -c /usr/sbin/munged
    fi
    wait_for 20 munged sh -c 'munge -n | unmunge'
}

start_database() {
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >/dev/null
    if [[ -z $(running /run/mysqld/mysqld.pid) ]]; then
        (setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
            --socket=/run/mysqld/mysqld.sock --skip-networking=0 --bind-address=127.0.0.1 \
            > "$LOG/mariadb.log" 2>&1 &)
    fi
    wait_for 60 MariaDB mariadb -e 'select 1'
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurm() {
    [[ -n $(running /run/slurmdbd.pid) ]] || slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    # the association a job needs: cluster, account, and this user in it
    sacctmgr -nP list cluster format=cluster | grep -qw $CLUSTER || sacctmgr -i add cluster $CLUSTER >/dev/null
    sacctmgr -nP list account format=account | grep -qw $ACCOUNT || sacctmgr -i add account $ACCOUNT cluster=$CLUSTER >/dev/null
    if [[ -z $(sacctmgr -nP list assoc user="$USER_NAME" account=$ACCOUNT format=user) ]]; then
        sacctmgr -i add user "$USER_NAME" account=$ACCOUNT >/dev/null
        sacctmgr -i modify user "$USER_NAME" set defaultaccount=$ACCOUNT >/dev/null
    fi
    [[ -n $(running /run/slurmctld.pid) ]] || slurmctld
    wait_for 60 slurmctld scontrol ping
    [[ -n $(running /run/slurmd.pid) ]] || slurmd
    wait_for 60 "node $NODE" sh -c "sinfo -h -N -n $NODE -o %T | grep -qvE 'unknown|not_responding'"
    # a node that was down (e.g. slurmd stopped with jobs on it) stays down until told otherwise
    if sinfo -h -N -n "$NODE" -o %T | grep -qE 'down|drain|inval'; then
        scontrol update nodename="$NODE" state=resume
    fi
    wait_for 60 "node $NODE (idle)" sh -c "sinfo -h -N -n $NODE -o %T | grep -qE 'idle|mixed|allocated'"
}

stop_daemon() {  # stop_daemon NAME PIDFILE
    local pid; pid=$(running "$2") || true
    [[ -z $pid ]] && return
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || { say "stopped $1"; return; }; sleep 0.5; done
    die "$1 (pid $pid) did not stop within 30s"
}

stop_slurm() {
    stop_daemon slurmd /run/slurmd.pid
    stop_daemon slurmctld /run/slurmctld.pid
    stop_daemon slurmdbd /run/slurmdbd.pid
}

status() {
    local ok=0
    for d in munged:/run/munge/munged.pid mariadbd:/run/mysqld/mysqld.pid slurmdbd:/run/slurmdbd.pid \
             slurmctld:/run/slurmctld.pid slurmd:/run/slurmd.pid; do
        if pid=$(running "${d#*:}"); then say "${d%%:*} running (pid $pid)"; else say "${d%%:*} not running"; ok=1; fi
    done
    [[ $ok -eq 0 ]] && sinfo -N -o '%N %P %T %c %m %G %f' && sinfo -h -N -n "$NODE" -o %T | grep -qE 'idle|mixed|allocated'
}

[[ $(id -u) -eq 0 ]] || die "run as root (it starts daemons and writes /etc/slurm)"
case "${1:-}" in
    start)
        install_packages
        write_config
        start_munge
        start_database
        start_slurm
        say "up: node $NODE, partitions cpu (default) and gpu, $GPUS GPUs of type fake, account $ACCOUNT"
        ;;
    stop)
        stop_slurm
        stop_daemon mariadbd /run/mysqld/mysqld.pid
        stop_daemon munged /run/munge/munged.pid
        ;;
    status) status ;;
    install) install_packages ;;
    *) die "usage: $0 start|stop|status|install" ;;
esac
