"""Start, stop and inspect a local single-node Apache Kafka broker run natively from its jars.

Usage: python -m image_pipeline.kafka.broker start|stop|status|fetch|free-port [--port N] [--fresh]
       python -m image_pipeline.kafka.broker cluster start|stop|status [--brokers 3] (kafka/cluster.py)

Each port is its own instance: .kafka/instances/<port>/ holds its data, pid file and log.
The container runs the same code in the foreground with KAFKA_HOME=/opt/kafka.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from image_pipeline.kafka.runtime import (
    KAFKA_VERSION,
    BrokerError,
    Instance,
    check_java,
    format_storage,
    instance_for,
    java_command,
    libs_dir,
    state_root,
    write_properties,
)

__all__ = [
    "KAFKA_VERSION", "BrokerError", "Instance", "broker_answers", "free_port", "instance_for",
    "main", "start", "state_root", "status", "stop", "stop_and_purge", "write_properties",
]

# ---------------------------------------------------------------- ports and processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether binding host:port would fail for a server (connections in TIME_WAIT do not count)."""
    with socket.socket() as s:
        # Kafka binds with SO_REUSEADDR too, so a port left in TIME_WAIT by a stopped broker is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def read_pid(inst: Instance) -> int | None:
    """The recorded pid if that process is still alive."""
    try:
        pid = int(inst.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    if _is_zombie(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """Whether a metadata request to the broker succeeds."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
            client_id="broker-probe",
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        admin.close()


# ---------------------------------------------------------------- commands


def _prepare(inst: Instance, fresh: bool) -> tuple[str, Path, int]:
    """Check java and ports, write config, format storage. Returns (java, libs, controller port)."""
    inst.home.mkdir(parents=True, exist_ok=True)
    java = check_java(inst.log_file)
    if fresh:
        shutil.rmtree(inst.data_dir, ignore_errors=True)
        # A controller port left by an earlier instance on this port may be taken by now.
        inst.controller_port_file.unlink(missing_ok=True)
    if port_in_use(inst.bind_host, inst.port):
        raise BrokerError(f"port {inst.port} is already in use by another program (log: {inst.log_file})")
    controller_port = _controller_port(inst)
    if port_in_use("127.0.0.1", controller_port):
        raise BrokerError(
            f"controller port {controller_port} is already in use; retry with --fresh (log: {inst.log_file})"
        )
    libs = libs_dir()
    write_properties(inst, controller_port)
    format_storage(java, libs, inst)
    return java, libs, controller_port


def _controller_port(inst: Instance) -> int:
    if inst.controller_port_file.exists():
        return int(inst.controller_port_file.read_text().strip())
    port = inst.port + 1 if not port_in_use("127.0.0.1", inst.port + 1) else free_port()
    inst.controller_port_file.write_text(f"{port}\n")
    return port


def start(inst: Instance, fresh: bool = False, timeout_s: float = 90.0) -> tuple[int, bool]:
    """Start the broker in the background once it answers metadata: (pid, whether newly started)."""
    pid = read_pid(inst)
    if pid is not None:
        if fresh:
            raise BrokerError(f"broker on port {inst.port} is running (pid {pid}); stop it before --fresh")
        return pid, False
    java, libs, _ = _prepare(inst, fresh)
    cmd = java_command(java, libs, inst, ["kafka.Kafka", str(inst.properties_file)])
    log = inst.log_file.open("a")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    inst.pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            inst.pid_file.unlink(missing_ok=True)
            raise BrokerError(f"Kafka exited during start-up with code {proc.returncode} (log: {inst.log_file})")
        if broker_answers(inst.bootstrap, timeout_s=2.0):
            return proc.pid, True
        time.sleep(0.3)
    _terminate(proc.pid, grace_s=10)
    inst.pid_file.unlink(missing_ok=True)
    raise BrokerError(f"Kafka did not answer within {timeout_s:.0f} s (log: {inst.log_file})")


def run_foreground(inst: Instance) -> int:
    """Run the broker in this process's place, logging to stdout (the container's command)."""
    try:
        java, libs, _ = _prepare(inst, fresh=False)
    except BrokerError:
        # In a container stdout is all the user sees; the log file goes away with it.
        _print_log_tail(inst.log_file)
        raise
    cmd = java_command(java, libs, inst, ["kafka.Kafka", str(inst.properties_file)])
    inst.pid_file.write_text(f"{os.getpid()}\n")
    os.execv(java, cmd)
    return 0  # pragma: no cover  (execv does not return)


def _print_log_tail(log_file: Path, lines: int = 20) -> None:
    """Copy the last lines of a log file to stderr, if there is one."""
    try:
        tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return
    for line in tail:
        print(f"  {line}", file=sys.stderr)


def stop_and_purge(inst: Instance) -> None:
    """Stop the broker and delete its folder (for throw-away test and benchmark brokers)."""
    stop(inst)
    shutil.rmtree(inst.home, ignore_errors=True)


def stop(inst: Instance, grace_s: float = 60.0) -> bool:
    """Stop the broker gracefully (SIGTERM, then wait). Returns whether one was running."""
    pid = read_pid(inst)
    if pid is None:
        inst.pid_file.unlink(missing_ok=True)
        return False
    _terminate(pid, grace_s)
    inst.pid_file.unlink(missing_ok=True)
    return True


def _terminate(pid: int, grace_s: float) -> None:
    """SIGTERM, wait up to grace_s, then SIGKILL as a last resort."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if _reap(pid):
            return
        time.sleep(0.2)
    print(f"Kafka (pid {pid}) ignored SIGTERM for {grace_s:.0f} s; killing it", file=sys.stderr)
    os.kill(pid, signal.SIGKILL)
    while not _reap(pid):
        time.sleep(0.1)


def _reap(pid: int) -> bool:
    """Whether pid has exited, reaping it if it is our child."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return True
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return _is_zombie(pid)


def status(inst: Instance) -> tuple[int | None, bool]:
    """(pid or None, whether it answers metadata requests)."""
    pid = read_pid(inst)
    return pid, pid is not None and broker_answers(inst.bootstrap)


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m image_pipeline.kafka.broker", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "fetch", "free-port"])
    parser.add_argument("--port", type=int, default=9092, help="client port; picks the instance (default 9092)")
    parser.add_argument("--fresh", action="store_true", help="wipe this instance's data before starting")
    parser.add_argument("--purge", action="store_true", help="with stop: also delete the instance's folder")
    parser.add_argument("--foreground", action="store_true", help="run in the foreground, logging to stdout")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--advertised-host", default=None, help="host name clients are told to use")
    parser.add_argument(
        "--internal-listener", default=None, metavar="HOST:PORT",
        help="a second listener on 0.0.0.0:PORT advertised as HOST:PORT (for other containers)",
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for start-up")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m image_pipeline.kafka.broker."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cluster"]:
        from image_pipeline.kafka import cluster  # imports this module

        return cluster.main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "free-port":
        print(free_port())
        return 0
    internal = None
    if args.internal_listener:
        host, _, port = args.internal_listener.rpartition(":")
        internal = (host, int(port))
    advertised = args.advertised_host or ("localhost" if args.bind == "0.0.0.0" else args.bind)
    inst = instance_for(args.port, bind_host=args.bind, advertised_host=advertised, internal=internal)
    try:
        return _run(args, inst)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, inst: Instance) -> int:
    if args.command == "fetch":
        print(f"Kafka jars: {libs_dir()}")
        return 0
    if args.command == "start":
        if args.foreground:
            return run_foreground(inst)
        began = time.monotonic()
        pid, started = start(inst, fresh=args.fresh, timeout_s=args.timeout)
        if not started:
            print(f"Kafka is already running on {inst.bootstrap} (pid {pid}); not starting another")
            return 0
        took = time.monotonic() - began
        print(f"Kafka {KAFKA_VERSION} ready on {inst.bootstrap} (pid {pid}, {took:.1f} s; log: {inst.log_file})")
        return 0
    if args.command == "stop":
        was_running = stop(inst)
        print(f"Kafka on port {inst.port} stopped" if was_running else f"Kafka on port {inst.port} was not running")
        if args.purge:
            shutil.rmtree(inst.home, ignore_errors=True)
        return 0
    running, answers = status(inst)
    if running is None:
        print(f"Kafka on port {inst.port}: not running")
        return 3
    print(f"Kafka on port {inst.port}: {'up' if answers else 'not answering'} (pid {running}; log: {inst.log_file})")
    return 0 if answers else 4


if __name__ == "__main__":
    sys.exit(main())
