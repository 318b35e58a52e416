"""Warm start: local runs import torch, transformers and the metric libraries once, not per job.

A `train`, `generate`, `evaluate` or `create-backbone` job spends 4-5.5 CPU-seconds importing its
libraries before its first line of work (a `figure` job 0.8 of its 1.3); over the sample DAG's 168
model jobs that is a third of the run
(results/benchmarks.md, "Pipeline"). With `warm_start: true` in the config, a local Snakemake run
(`--cores N`, not `--profile slurm`) starts one *server* (`python -m della.pipeline.warm`) that imports them
once. Each job's `"$DELLA_PYTHON" -m della <stage> ...` is then a *client*: it connects, hands over
its arguments, working directory, environment and its stdin/stdout/stderr (so the output goes to
the rule's log as before), and the server forks a *worker* that runs the same `della.cli.main` a
cold process would. The client forwards the signals it receives to the worker, waits for it and
exits with its status. Every rule is still its own Snakemake job with its own inputs, outputs, log
and rerun rule; nothing is cached between jobs but imported modules.

What keeps a warm job identical to a cold one (tests/test_warm.py compares the files of both):
- the worker applies the job's own environment and its `--threads` to every native thread pool
  (della.cli.limit_thread_pools) before the job's code runs; the server refuses a job whose
  environment differs from its own in anything but ENV_NOT_COMPARED (a variable a library may
  have read at import), and the client then runs the job cold;
- the server never runs a torch operation, so no OpenMP pool exists when it forks; before each
  fork it checks that it has one thread (fork copies only the calling one: a lock another thread
  held would stay locked in the worker) and otherwise runs the job cold;
- commands other than WARM_COMMANDS always run cold; so does every job when the server is not
  there (not started: `--profile slurm`, `--sdm conda`; crashed) or is another interpreter's.

Differences, by design: the Snakemake `benchmark:` file of a warm job measures the client process,
so its wall time (`s`, what Table 6 reads) is the job's minus the imports and its memory and CPU
columns are the client's; docs/workflow.md says so. Each attempt records how it started
(`start`: warm or cold, della/pipeline/jobenv.py's `how_started`), and Table 6 shows it beside each time.

PRELOAD is checked against the code: each worker logs the modules its job imported that the server
had not (`imported beyond the preload: ...`), and tests/test_warm.py fails when a job of the
workflow imports a third-party package the server did not preload.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import della
from della import PACKAGES
from della.pipeline import jobenv

SOCKET_VARIABLE = "DELLA_WARM_SOCKET"
WARM_COMMANDS = ("train", "generate", "evaluate", "figure", "create-backbone")
# What those commands import (della/cli.py imports them inside the commands); a module
# missing here is imported by the worker, which is slower, never wrong.
PRELOAD = (
    "torch",
    "numpy",
    "transformers",
    "transformers.models.gpt2.modeling_gpt2",
    "transformers.models.bart.modeling_bart",
    "transformers.models.bert.modeling_bert",
    "transformers.models.auto.modeling_auto",
    "transformers.models.encoder_decoder.modeling_encoder_decoder",
    "della.run.train",
    "della.run.generate",
    "della.run.evaluate",
    "della.models.vae",
    "della.models.decoding",
    "baselines.embedding",
    "baselines.finetune",
    "baselines.memory",
    "baselines.optimus",
    "baselines.softmax",
    "metrics.registry",
    "metrics.ngram",
    "metrics.embedding",
    "metrics.probe",
    "metrics.representation",
    "sklearn.linear_model",
    "sklearn.decomposition",
    "sklearn.model_selection",
    "mauve.compute_mauve",
    "faiss",
    "pandas",
    "tqdm",
    "della.report.figures",
    "matplotlib.pyplot",
)
# Set per job by the shell (a non-interactive bash drops the prompts) or by Snakemake (TMPDIR etc.:
# resources.tmpdir); thread-pool sizes are not compared but set per job (thread_variables()).
ENV_NOT_COMPARED = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "PS1", "PS2", "TMPDIR", "TEMPDIR", "TEMP", "TMP"})
# Snakemake's shell sets these to the job's threads (snakemake/shell.py), della.cli's --threads
# its own THREAD_POOL_VARIABLES; the server imports with all of them at 1.
SNAKEMAKE_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
ARROW_JEMALLOC_VARIABLE = "JE_ARROW_MALLOC_CONF"
SIGNALS_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
MAX_REQUEST_BYTES = 16 * 1024 * 1024
REQUEST_KEYS = frozenset({"argv", "cwd", "env", "umask", "executable"})
REQUEST_TIMEOUT_S = 30
STOP_TIMEOUT_S = 60


def thread_variables() -> frozenset[str]:
    from della.cli import THREAD_POOL_VARIABLES

    return frozenset(THREAD_POOL_VARIABLES) | frozenset(SNAKEMAKE_THREAD_VARIABLES)


def fork_hazard() -> str | None:
    """Why this process must not fork a worker, or None: a second thread (a preloaded library may
    start one), since fork() copies only the calling thread and a lock the other held would stay
    locked in the worker. Threads as the kernel counts them: Python's and native ones alike."""
    threads = len(os.listdir("/proc/self/task"))
    return f"the server has {threads} threads, and fork() copies only one" if threads != 1 else None


def imported_beyond(preloaded: set[str]) -> list[str]:
    """Third-party top-level packages imported since `preloaded` (sys.modules' names then): the
    imports a worker paid for that PRELOAD would have saved."""
    return sorted(
        {
            name.split(".")[0]
            for name in set(sys.modules) - preloaded
            if name.split(".")[0] not in sys.stdlib_module_names | set(PACKAGES)
            and not name.startswith("_")
            and getattr(sys.modules[name], "__file__", None)  # not a pseudo-module (cython_runtime)
        }
    )


# ---------------------------------------------------------------------------------------------
# client: `python -m della <command>` (della/__main__.py)


def run_warm(argv: list[str]) -> int | None:
    """Run `della-bench argv` in a worker of the warm server; its exit status, or None when the job
    must run cold here (no server, not a warm command, refused). A job SLURM started elsewhere
    differs from the server in SLURM_JOB_ID and is refused; under `srun snakemake --cores N`
    the jobs share the server's allocation and are served."""
    path = os.environ.get(SOCKET_VARIABLE)
    if not path or not argv or argv[0] not in WARM_COMMANDS:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except OSError as error:
        print(f"della warm start: no server at {path} ({error.strerror}); running cold", file=sys.stderr)
        return None
    umask = os.umask(0)
    os.umask(umask)
    request = {
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "executable": os.path.realpath(sys.executable),
    }
    with connection:
        reader = connection.makefile("rb")
        try:
            socket.send_fds(connection, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
            reply = json.loads(reader.readline() or b"{}")
        except OSError as error:  # the server went away in between: no worker was started
            reply = {"refused": f"the server closed the connection ({error.strerror})"}
        if "pid" not in reply:
            print(
                f"della warm start: refused ({reply.get('refused', 'the server closed the connection')}); running cold",
                file=sys.stderr,
            )
            return None
        worker = reply["pid"]
        for sig in SIGNALS_FORWARDED:
            signal.signal(sig, lambda signum, frame: _signal_group(worker, signum))
        line = reader.readline()
    if not line:  # the server died: stop the worker too, so that a rerun cannot race it
        print(f"della warm start: the server ended before worker {worker} did; stopping it", file=sys.stderr)
        _signal_group(worker, signal.SIGTERM)
        return 1
    status = json.loads(line)["status"]
    if status < 0:  # the worker died of a signal: so does this process, as a cold one would have
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        return 128 - status
    return status


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)  # the worker leads its own process group (its torchrun ranks too)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------------------------
# Snakemake side: workflow/rules/common.smk starts the server at `onstart` and stops it at the end


class WarmServer:
    """The server process of one Snakemake run. Its stdin is a pipe from Snakemake: when Snakemake
    ends in any way, even SIGKILL, the server stops taking jobs and exits once its workers end."""

    def __init__(self, log_path: Path):
        self.directory = tempfile.mkdtemp(prefix="della-warm-")  # mode 0700: this user's jobs only
        self.socket = os.path.join(self.directory, "socket")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        # The server's environment, which a job's must match: os.environ, as Snakemake gives its
        # jobs, and explicitly so (without env=, a child inherits the C-level environment, which
        # a library's setenv() may have changed behind os.environ: seen with COLUMNS and LINES).
        self.environment = dict(os.environ)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "della.pipeline.warm", "--socket", self.socket],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment,
            )
        os.environ[SOCKET_VARIABLE] = self.socket  # the jobs Snakemake starts from now on
        atexit.register(self.stop)

    def stop(self) -> None:
        """Close the pipe and wait for the server (and so count its CPU time in this process)."""
        os.environ.pop(SOCKET_VARIABLE, None)
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(self.directory)
        atexit.unregister(self.stop)


def start_server(config: dict, local: bool, job_python: str, log_path: Path) -> WarmServer | None:
    """The server, when the config asks for it and the jobs run here, in this interpreter."""
    if not config.get("warm_start") or not local or os.path.realpath(job_python) != os.path.realpath(sys.executable):
        return None
    return WarmServer(log_path)


# ---------------------------------------------------------------------------------------------
# server: `python -m della.pipeline.warm --socket PATH`


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [warm {os.getpid()}] {message}", flush=True)


class Server:
    def __init__(self, path: str):
        self.environment = dict(os.environ)  # before this process changes its own
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "control")
        self.workers: dict[int, socket.socket] = {}  # pid -> its client's connection
        self.accepting = True

    def preload(self) -> None:
        # Import with one-thread pools: no OpenBLAS threads to carry across fork(); each worker
        # sizes the pools to its job's --threads.
        for variable in thread_variables():
            os.environ[variable] = "1"
        # pyarrow's jemalloc (imported by della.run.evaluate's libraries) starts a background purging
        # thread at load; without it the server keeps one thread and may fork (fork_hazard)
        os.environ.setdefault(ARROW_JEMALLOC_VARIABLE, "background_thread:false")
        started = time.process_time()
        for module in PRELOAD:
            try:
                __import__(module)
            except Exception as error:  # the job imports it again and reports it as a cold one would
                log(f"preload {module}: {type(error).__name__}: {error}")
        gc.collect()
        gc.freeze()  # keep the imported objects' pages shared with the workers
        log(f"imported {len(PRELOAD)} modules in {time.process_time() - started:.1f} CPU-s; serving")

    def serve(self) -> None:
        while self.accepting or self.workers:
            for key, _ in self.selector.select(timeout=0.05):
                try:
                    if key.data == "accept":
                        self.accept()
                    elif key.data == "control":
                        if not os.read(key.fd, 4096):  # Snakemake ended: finish the running jobs
                            self.stop_accepting()
                    else:
                        self.client_closed(key.fileobj, key.data)
                except Exception:  # one bad client must not take the other jobs' server down
                    log(f"error, going on:\n{traceback.format_exc()}")
            self.reap()

    def stop_accepting(self) -> None:
        self.accepting = False
        self.selector.unregister(self.listener)
        self.selector.unregister(sys.stdin.fileno())
        self.listener.close()

    def accept(self) -> None:
        connection, _ = self.listener.accept()
        try:
            request, fds = self.read_request(connection)
        except (OSError, ValueError) as error:
            log(f"bad request: {error}")
            connection.close()
            return
        refusal = self.refusal(connection, request)
        if refusal:
            log(f"refused {' '.join(request['argv'][:1])}: {refusal}")
            connection.sendall(json.dumps({"refused": refusal}).encode() + b"\n")
            connection.close()
            for fd in fds:
                os.close(fd)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.become_worker(request, fds, connection)  # never returns
        with contextlib.suppress(OSError):  # as the worker does: a signal sent right away finds its group
            os.setpgid(pid, pid)
        for fd in fds:
            os.close(fd)
        self.workers[pid] = connection
        log(f"worker {pid}: {' '.join(request['argv'][:1])} in {request['cwd']}")
        try:
            connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:  # the client is gone already
            log(f"worker {pid}: its client is gone; SIGTERM")
            _signal_group(pid, signal.SIGTERM)
            return
        self.selector.register(connection, selectors.EVENT_READ, pid)

    @staticmethod
    def read_request(connection: socket.socket) -> tuple[dict, list[int]]:
        connection.settimeout(REQUEST_TIMEOUT_S)
        data, fds, _, _ = socket.recv_fds(connection, 65536, 3)
        while not data.endswith(b"\n"):
            more = connection.recv(65536)
            if not more or len(data) > MAX_REQUEST_BYTES:
                raise ValueError("incomplete request")
            data += more
        connection.settimeout(None)
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            raise ValueError(f"expected stdin, stdout and stderr, got {len(fds)} descriptors")
        request = json.loads(data)
        if not REQUEST_KEYS <= set(request) or not isinstance(request["argv"], list):
            raise ValueError(f"a request needs {sorted(REQUEST_KEYS)}")
        return request, fds

    def refusal(self, connection: socket.socket, request: dict) -> str | None:
        """Why this job must run cold, or None."""
        uid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.getuid():
            return f"client uid {uid} is not the server's"
        if request["executable"] != os.path.realpath(sys.executable):
            return f"client interpreter {request['executable']} is not the server's {sys.executable}"
        compared = set(self.environment) | set(request["env"])
        differing = sorted(
            name
            for name in compared - ENV_NOT_COMPARED - thread_variables() - {SOCKET_VARIABLE}
            if self.environment.get(name) != request["env"].get(name)
        )
        if differing:
            return f"environment differs from the server's in {', '.join(differing)}"
        return fork_hazard()

    def become_worker(self, request: dict, fds: list[int], own: socket.socket) -> None:
        jobenv.mark_started_warm()  # the job's attempt records it (della/cluster/attempts.py)
        status = 1
        try:
            os.setpgid(0, 0)
            self.selector.close()
            for connection in [own, *self.workers.values()]:  # a client sees EOF if the server dies
                connection.close()
            if self.accepting:
                self.listener.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            for sig in SIGNALS_FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.chdir(request["cwd"])
            os.umask(request["umask"])
            os.environ.clear()
            os.environ.update(request["env"])
            tempfile.tempdir = None  # read TMPDIR again
            sys.argv = [str(Path(della.__file__).with_name("__main__.py")), *request["argv"]]
            preloaded = set(sys.modules)
            status = run_worker(request["argv"])
            beyond = imported_beyond(preloaded)
            if beyond:
                log(f"worker {os.getpid()}: imported beyond the preload: {', '.join(beyond)}")
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)

    def client_closed(self, connection: socket.socket, pid: int) -> None:
        """The client went away (killed) before its worker ended: end the worker as the kill
        would have ended a cold job (SIGTERM: training saves a checkpoint first)."""
        self.selector.unregister(connection)
        log(f"worker {pid}: its client is gone; SIGTERM")
        _signal_group(pid, signal.SIGTERM)

    def reap(self) -> None:
        while self.workers:
            try:
                pid, wait_status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            status = os.waitstatus_to_exitcode(wait_status)
            connection = self.workers.pop(pid, None)
            if connection is None:
                continue
            log(f"worker {pid}: status {status}, {usage.ru_utime + usage.ru_stime:.2f} CPU-s")
            try:
                self.selector.unregister(connection)
            except (KeyError, ValueError):
                pass
            try:
                connection.sendall(json.dumps({"status": status}).encode() + b"\n")
            except OSError:
                pass
            connection.close()


def run_worker(argv: list[str]) -> int:
    """`della.cli.main(argv)` in a forked worker, ending as a cold `python -m della` would."""
    from della.cli import main

    status = 0
    interrupted = False
    try:
        main(argv)
    except SystemExit as end:
        if end.code is None or isinstance(end.code, int):
            status = end.code or 0
        else:
            print(end.code, file=sys.stderr)
            status = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        interrupted = True
    except BaseException:
        traceback.print_exc()
        status = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if interrupted:  # like CPython: an uncaught KeyboardInterrupt ends the process by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return status


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m della.pipeline.warm", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True, help="the Unix socket to listen on")
    args = parser.parse_args(argv)
    server = Server(args.socket)  # listening before the imports: early jobs wait instead of going cold
    log(f"listening on {args.socket}")
    try:
        server.preload()
        server.serve()
    finally:
        if server.accepting:
            server.listener.close()
        if os.path.exists(args.socket):  # also when Snakemake was killed and cannot tidy up
            os.unlink(args.socket)
            with contextlib.suppress(OSError):  # WarmServer's directory, once empty
                os.rmdir(os.path.dirname(args.socket))
        log("stopped")


if __name__ == "__main__":
    main()
