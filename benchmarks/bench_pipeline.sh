#!/usr/bin/env bash
# The whole sample DAG end to end, and the paper config's dry run, timed.
#
#   benchmarks/bench_pipeline.sh [CORES]        (default 2; run from anywhere inside the repository)
#
# The sample run happens in a fresh clone of the committed HEAD in a temporary directory, so
# nothing is reused from earlier runs (results/, data/, models/ start empty) and the working
# tree is left alone. The python environment is the one on PATH (snakemake, della-bench); the
# clone is put first on PYTHONPATH so that its code is the code timed. Prints wall-clock seconds, the
# CPU seconds of every process of the run (user + system: what other load on the machine does not
# change), the split by rule (benchmarks/rule_split.py) and the start-up share
# (benchmarks/startup_share.py), the job count, and the machine it ran on; the clone is deleted at the end (KEEP=1 keeps it).
set -euo pipefail

cores="${1:-2}"
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
work="$(mktemp -d -t della-bench-pipeline.XXXXXX)"
if [[ "${KEEP:-0}" != 1 ]]; then  # on failure too: rerun with KEEP=1 to read the logs
    trap 'rm -rf "$work"' EXIT
fi
clone="$work/della-bench"
git clone --quiet --no-hardlinks "$repo" "$clone"
cd "$clone"
export PYTHONPATH="$clone${PYTHONPATH:+:$PYTHONPATH}"

echo "# Pipeline wall time: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs," \
    "load average $(cut -d' ' -f1 /proc/loadavg); $(snakemake --version | sed 's/^/snakemake /');" \
    "$(python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"

seconds() {  # run "$@", print its wall time in seconds; its output goes to a log file
    local log="$1"; shift
    local start end
    start=$(date +%s.%N)
    "$@" >"$log" 2>&1 || { echo "failed: $* (log: $log)" >&2; tail -20 "$log" >&2; exit 1; }
    end=$(date +%s.%N)
    python -c "print(f'{$end - $start:.1f}')"
}

cpu_seconds() {  # run "$@" like seconds(), print the CPU seconds (user + system) of its whole process tree
    local log="$1"; shift
    python - "$log" "$@" <<'PY'
import resource, subprocess, sys
with open(sys.argv[1], "w") as log:
    if subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode:
        sys.exit(f"failed: {' '.join(sys.argv[2:])} (log: {sys.argv[1]})")
usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant: the jobs too
print(f"{usage.ru_utime + usage.ru_stime:.0f}")
PY
}

# The paper-scale raw data is not here: with `data_root: null` the DAG plans its downloads, which
# is what the dry run times (nothing is fetched by -n).
dry="$(seconds "$work/paper-dry-run.log" snakemake -n --configfile config/paper.yaml)"
jobs="$(grep -E '^total[[:space:]]+[0-9]+' "$work/paper-dry-run.log" | head -1 | awk '{print $2}' || true)"
echo "paper config dry run (snakemake -n --configfile config/paper.yaml): ${dry} s, ${jobs:-?} jobs"

start=$(date +%s.%N)
cpu="$(cpu_seconds "$work/sample-run.log" snakemake --cores "$cores")" || { tail -20 "$work/sample-run.log" >&2; exit 1; }
sample="$(python -c "print(f'{$(date +%s.%N) - $start:.1f}')")"
jobs="$(grep -E '^total[[:space:]]+[0-9]+' "$work/sample-run.log" | head -1 | awk '{print $2}' || true)"
echo "sample DAG (snakemake --cores $cores, fresh clone): ${sample} s ($(python -c "s=$sample; print(f'{int(s // 60)} min {s % 60:.0f} s')")), ${jobs:-?} jobs," \
    "${cpu} CPU-seconds (user + system, every process of the run; independent of other load)"
run_log="$(ls "$clone"/.snakemake/log/*.snakemake.log | head -1)"
python "$clone/benchmarks/rule_split.py" "$run_log" --cores "$cores"
echo
python "$clone/benchmarks/startup_share.py" "$run_log" --cpu-seconds "$cpu" --warm-log "$clone/logs/warm_start.log"
again="$(seconds "$work/sample-rerun.log" snakemake --cores "$cores")"
grep -q "Nothing to be done" "$work/sample-rerun.log" && echo "a second run: nothing to be done (${again} s)" \
    || echo "a second run did work again (${again} s): see $work/sample-rerun.log"
