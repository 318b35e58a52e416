#!/usr/bin/env bash
# The small scale end to end from a clean clone, in as many parts as it takes (issue 30).
#
#   benchmarks/small_run.sh DIR [COMMIT]    (from inside the repository)
#
# The first call clones this repository's HEAD (or COMMIT) into DIR and installs it with the
# README's first command into DIR/.venv; every call then runs
#   snakemake --cores 2 --configfile config/small.yaml --keep-going
# there, in the foreground. Stop it at any time with Ctrl-C in its terminal (the whole process
# group gets SIGINT: Snakemake and its jobs); from elsewhere, SIGTERM to Snakemake and to its
# running `della train` / `generate` / `evaluate` processes (a signal to Snakemake alone leaves the
# warm-started jobs running until they end; a run started in the background by a non-interactive
# shell ignores SIGINT, as POSIX has such background commands do, so use SIGTERM there). The jobs
# stop, training saves a checkpoint, and the next call resumes (finished jobs are not
# run again, training goes on from its last checkpoint). Each part appends one line to
# DIR/parts.tsv (start and end in UTC, seconds, Snakemake's exit status, commit, machine), and
# Snakemake's output to DIR/snakemake.log, which RUN.md is written from (benchmarks/rule_split.py).
set -uo pipefail

dir="${1:?usage: benchmarks/small_run.sh DIR [COMMIT]}"
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
if [[ ! -d "$dir/.git" ]]; then
    git clone --quiet --no-hardlinks "$repo" "$dir" || exit 1
    git -C "$dir" checkout --quiet "${2:-HEAD}" || exit 1
    printf 'part\tstart\tend\tseconds\tsnakemake_rc\tcommit\tmachine\n' >"$dir/parts.tsv"
    started="$(date -u +%FT%TZ)"
    start=$(date +%s)
    (cd "$dir" && python3.11 -m venv .venv && .venv/bin/pip install -q -e .) || exit 1
    printf 'install\t%s\t%s\t%s\t\t%s\t\n' "$started" "$(date -u +%FT%TZ)" "$(($(date +%s) - start))" \
        "$(git -C "$dir" rev-parse --short HEAD)" >>"$dir/parts.tsv"
fi
cd "$dir" || exit 1
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"
started="$(date -u +%FT%TZ)"
start=$(date +%s)
trap ':' INT  # Ctrl-C stops Snakemake (and its jobs); this script goes on to record the part
.venv/bin/snakemake --cores 2 --configfile config/small.yaml --keep-going >>snakemake.log 2>&1
rc=$?
printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\n' "$started" "$(date -u +%FT%TZ)" "$(($(date +%s) - start))" "$rc" \
    "$(git rev-parse --short HEAD)" "$machine" >>parts.tsv
exit "$rc"
