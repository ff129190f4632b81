"""``omninode-runtime-host --workers N``: N host processes in one consumer group.

Python runs one core per process; a runtime's consumer group spreads its partitions over
processes as it does over machines. The parent hosts nothing: it starts the N workers
(``omninode-runtime-host`` with the same arguments), relays their output, prints one
``ready`` line once every worker is ready, restarts a worker that dies after it was
ready (the group hands its partitions to the others meanwhile), and on SIGINT or SIGTERM
stops them all, each draining as a single host does. A worker that fails before it is
ready (a wrong contract, a broker that refuses) stops them all with its exit status:
starting it again would fail the same way.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

import attrs
import trio

from onex_actors.app import HostConfig, ensure_local_broker
from onex_actors.core import ConfigError

__all__ = ["WORKER_COMMAND", "run_workers"]

logger = logging.getLogger("onex_actors.host")

WORKER_COMMAND = (sys.executable, "-c", "from onex_actors.cli import host_main; host_main()")
"""A worker: ``omninode-runtime-host`` run by this interpreter."""

RESTART_BACKOFF_S = (1.0, 30.0)
"""A worker that died is started again after 1 s, doubling up to 30 s while it keeps dying."""


@attrs.define
class Worker:
    """One worker process, its index and what it said."""

    index: int
    args: list[str]
    env: dict[str, str] | None = None
    """Its environment (``None``: this process's)."""
    process: subprocess.Popen[bytes] | None = None
    ready_line: str | None = None
    """Its ``ready`` line, once it printed one (for the run it is in now)."""
    was_ready: bool = False


@attrs.define
class Workers:
    """N workers of one runtime, supervised."""

    runtime_id: str
    workers: list[Worker]
    shutdown_timeout_s: float
    stopping: bool = False
    failed: int | None = None
    """The exit status of a worker that failed before it was ready: it stops them all."""
    announced: bool = False

    async def supervise(self, worker: Worker, nursery: trio.Nursery) -> None:
        """Run ``worker`` until the stop, starting it again if it dies after being ready."""
        delay = RESTART_BACKOFF_S[0]
        while not self.stopping:
            worker.ready_line = None
            # Started from this (the main) thread, not from trio's worker threads: a child's
            # parent-death signal fires when the thread that started it ends, and an idle
            # worker thread ends after 10 s (it stopped the workers of a slow test run).
            process = subprocess.Popen(  # noqa: ASYNC220
                worker.args,
                env=worker.env,
                stdout=subprocess.PIPE,
                # a session of its own: a terminal's Ctrl-C reaches the parent alone, which
                # stops the workers itself (one SIGTERM each, then waits for their drains)
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            worker.process = process
            assert process.stdout is not None
            output = trio.lowlevel.FdStream(os.dup(process.stdout.fileno()))
            process.stdout.close()
            async with trio.open_nursery() as relays:
                relays.start_soon(self._relay, worker, output)
                status = await trio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
            if self.stopping:
                return
            if not worker.was_ready:
                print(
                    f"[worker {worker.index}] exited with status {status} before it was "
                    "ready: stopping every worker",
                    flush=True,
                )
                self.failed = status or 1
                self.stop(nursery)
                return
            print(
                f"[worker {worker.index}] exited with status {status}: starting it again "
                f"in {delay:g} s (its partitions go to the other workers meanwhile)",
                flush=True,
            )
            await trio.sleep(delay)
            delay = min(delay * 2, RESTART_BACKOFF_S[1])

    async def _relay(self, worker: Worker, output: trio.lowlevel.FdStream) -> None:
        """Pass the worker's lines on, each marked with its index; note when it is ready."""
        buffer = b""
        async with output:
            async for chunk in output:  # to its end: the worker's exit
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    self._line(worker, raw.decode(errors="replace"))
        if buffer:
            self._line(worker, buffer.decode(errors="replace"))

    def _line(self, worker: Worker, line: str) -> None:
        if " ready: " in line and worker.ready_line is None:
            worker.ready_line = line
            if worker.was_ready:
                print(f"[worker {worker.index}] ready again (pid {_pid(worker)})", flush=True)
            worker.was_ready = True
            if not self.announced and all(w.ready_line for w in self.workers):
                self.announce()
            return
        print(f"[worker {worker.index}] {line}", flush=True)

    def announce(self) -> None:
        """Print the one ``ready`` line of the runtime: every worker is ready."""
        self.announced = True
        first = self.workers[0].ready_line or ""
        pids = ", ".join(str(_pid(w)) for w in self.workers)
        head, _, rest = first.partition(" ready: ")
        print(f"{head} ready: {len(self.workers)} workers (pids {pids}); {rest}", flush=True)

    def stop(self, nursery: trio.Nursery) -> None:
        """Ask every worker to drain and stop (SIGTERM); kill those still up past the deadline."""
        if self.stopping:
            return
        self.stopping = True
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signal.SIGTERM)
        nursery.start_soon(self._kill_late)

    async def _kill_late(self) -> None:
        await trio.sleep(self.shutdown_timeout_s + 10)
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                print(f"[worker {worker.index}] did not stop in time: killing it", flush=True)
                worker.process.kill()


def worker_args(args: Sequence[str], index: int, config: HostConfig) -> list[str]:
    """Return the command line of worker ``index``: the host's ``args``, a port of its own."""
    listen = config.http.listen
    own = list(args)
    if listen is not None:
        host, _, port = listen.rpartition(":")
        own += ["--listen", f"{host}:{int(port) + index if int(port) else 0}"]
    return [*WORKER_COMMAND, *own]


def worker_env(index: int, config: HostConfig) -> dict[str, str]:
    """Return worker ``index``'s environment: this one's, and a state folder of its own.

    A disk store's folder is locked by the process using it, so each worker keeps its
    states under ``state.path/worker-<index>`` (a restart finds its own checkpoints).
    """
    own = config.state.path / f"worker-{index}"
    return {**os.environ, "ONEX_STATE__PATH": str(own)}


def run_workers(args: Sequence[str], count: int, runtime_id: str, config: HostConfig) -> int:
    """Run ``count`` workers of ``runtime_id`` until SIGINT or SIGTERM; return the exit status.

    ``args``: each worker's command line, as the host's own without ``--workers``.
    """
    if config.bus.kind != "kafka":
        raise ConfigError(
            f"--workers {count} runs {count} host processes as members of one consumer "
            f"group, which needs bus.kind: kafka (it is {config.bus.kind!r}: every "
            "process would have a bus of its own); set bus.kind: kafka, or drop --workers"
        )
    return trio.run(_run, args, count, runtime_id, config)


async def _run(args: Sequence[str], count: int, runtime_id: str, config: HostConfig) -> int:
    # a local broker the config asks for is started once, here, not raced for by N workers
    await ensure_local_broker(config.kafka, config.cache_dir)
    workers = Workers(
        runtime_id,
        [Worker(i, worker_args(args, i, config), worker_env(i, config)) for i in range(count)],
        config.shutdown_timeout_s,
    )
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for signum in signals:
                    if not workers.stopping:
                        name = signal.Signals(signum).name
                        print(f"received {name}: stopping {count} workers", flush=True)
                    workers.stop(nursery)

            nursery.start_soon(on_signal)
            async with trio.open_nursery() as running:
                for worker in workers.workers:
                    running.start_soon(workers.supervise, worker, nursery)
            nursery.cancel_scope.cancel()
    if workers.failed is not None:
        return workers.failed
    statuses = [w.process.returncode for w in workers.workers if w.process is not None]
    print(f"runtime {runtime_id} stopped ({count} workers)", flush=True)
    return 0 if all(status == 0 for status in statuses) else 1


def _pid(worker: Worker) -> int | None:
    return worker.process.pid if worker.process is not None else None


def _die_with_parent() -> None:
    """In the worker, before it runs: SIGTERM it when the parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
