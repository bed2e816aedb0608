"""Start, stop and inspect a local single-node Apache Kafka broker run natively from its jars.

Usage: python -m image_pipeline.broker start|stop|status|fetch|free-port [--port N] [--fresh]

Each port is its own instance: .kafka/instances/<port>/ holds its data, pid file and log.
The container runs the same code in the foreground with KAFKA_HOME=/opt/kafka.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from image_pipeline.config import PROJECT_ROOT

KAFKA_VERSION = "4.1.1"
MIN_JAVA = 17
POM = Path(__file__).resolve().parent / "resources" / "kafka-pom.xml"


class BrokerError(RuntimeError):
    """A one-line, user-facing reason why the broker could not be started or stopped."""


@dataclass(frozen=True)
class Instance:
    """Files and ports of one local broker, keyed by its client port."""

    port: int
    home: Path
    bind_host: str = "127.0.0.1"
    advertised_host: str = "127.0.0.1"
    # Optional second listener for other containers: (advertised host, port).
    internal: tuple[str, int] | None = None

    @property
    def data_dir(self) -> Path:
        """KRaft log directory."""
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        """Holds the java process id while the broker runs."""
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        """Everything the broker prints."""
        return self.home / "broker.log"

    @property
    def properties_file(self) -> Path:
        """The server.properties this instance runs with."""
        return self.home / "server.properties"

    @property
    def controller_port_file(self) -> Path:
        """The controller port, fixed at format time so later starts reuse it."""
        return self.home / "controller.port"

    @property
    def bootstrap(self) -> str:
        """Address clients use."""
        host = "127.0.0.1" if self.bind_host in ("0.0.0.0", "") else self.bind_host
        return f"{host}:{self.port}"


def state_root() -> Path:
    """Folder for jars and instances (PIPELINE_KAFKA_DIR, default .kafka/ in the project)."""
    return Path(os.environ.get("PIPELINE_KAFKA_DIR", PROJECT_ROOT / ".kafka"))


def instance_for(port: int, **kwargs: object) -> Instance:
    """The instance that serves clients on this port."""
    return Instance(port=port, home=state_root() / "instances" / str(port), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- jars and java


def libs_dir(fetch: bool = True) -> Path:
    """Folder of broker jars: $KAFKA_HOME/libs, or the Maven-fetched cache."""
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not list(libs.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"KAFKA_HOME={kafka_home} has no libs/kafka_2.13-*.jar")
        return libs
    libs = state_root() / KAFKA_VERSION / "libs"
    if (libs / ".complete").exists():
        return libs
    if not fetch:
        raise BrokerError(f"Kafka {KAFKA_VERSION} jars are not cached in {libs}; run 'fetch'")
    fetch_jars(libs)
    return libs


def fetch_jars(libs: Path) -> None:
    """Copy Kafka and its run-time dependencies from Maven Central into libs/."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError("Maven ('mvn') is not on PATH; it is needed once to download Kafka")
    print(f"Downloading Apache Kafka {KAFKA_VERSION} jars with Maven into {libs} ...", flush=True)
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not list(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise BrokerError("Maven could not fetch Kafka: " + " | ".join(tail))
    (libs / ".complete").write_text(KAFKA_VERSION + "\n")


def check_java(log_file: Path) -> str:
    """Path of a java 17+ binary, or a BrokerError naming the log file."""
    java = shutil.which("java")
    if not java:
        raise BrokerError(f"java not found on PATH; install a Java {MIN_JAVA}+ runtime (log: {log_file})")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise BrokerError(f"could not read the version of {java} (log: {log_file})")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise BrokerError(f"{java} is Java {major}; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+ (log: {log_file})")
    return java


# ---------------------------------------------------------------- ports and processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether binding host:port would fail."""
    with socket.socket() as s:
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


# ---------------------------------------------------------------- configuration files


def write_properties(inst: Instance, controller_port: int) -> None:
    """Write server.properties for a combined broker+controller node."""
    listeners = [f"PLAINTEXT://{inst.bind_host}:{inst.port}", f"CONTROLLER://127.0.0.1:{controller_port}"]
    advertised = [f"PLAINTEXT://{inst.advertised_host}:{inst.port}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    if inst.internal:
        host, port = inst.internal
        listeners.append(f"INTERNAL://0.0.0.0:{port}")
        advertised.append(f"INTERNAL://{host}:{port}")
        protocols.append("INTERNAL:PLAINTEXT")
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": ",".join(protocols),
        "log.dirs": str(inst.data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
    }
    inst.home.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{k}={v}\n" for k, v in props.items())
    inst.properties_file.write_text("# Written by image_pipeline.broker\n" + body)


LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def java_command(java: str, libs: Path, inst: Instance, main: list[str]) -> list[str]:
    """The java command line for one Kafka main class."""
    log4j = inst.home / "log4j2.properties"
    log4j.write_text(LOG4J2)
    heap = os.environ.get("KAFKA_HEAP", "-Xmx512m -Xms256m").split()
    return [
        java, *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp", f"{libs}/*", *main,
    ]


def format_storage(java: str, libs: Path, inst: Instance) -> None:
    """Format KRaft storage once; later starts reuse it."""
    if (inst.data_dir / "meta.properties").exists():
        return
    cmd = java_command(
        java, libs, inst,
        ["kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(inst.properties_file)],
    )
    with inst.log_file.open("a") as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise BrokerError(f"formatting KRaft storage failed (log: {inst.log_file})")


def _cluster_id() -> str:
    """A random base64url cluster id of 16 bytes, as kafka-storage random-uuid makes."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


# ---------------------------------------------------------------- commands


def _prepare(inst: Instance, fresh: bool) -> tuple[str, Path, int]:
    """Check java and ports, write config, format storage. Returns (java, libs, controller port)."""
    inst.home.mkdir(parents=True, exist_ok=True)
    java = check_java(inst.log_file)
    if fresh and inst.data_dir.exists():
        shutil.rmtree(inst.data_dir)
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
    parser = argparse.ArgumentParser(prog="python -m image_pipeline.broker", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "fetch", "free-port"])
    parser.add_argument("--port", type=int, default=9092, help="client port; picks the instance (default 9092)")
    parser.add_argument("--fresh", action="store_true", help="wipe this instance's data before starting")
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
    """Entry point of python -m image_pipeline.broker."""
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
        return 0
    running, answers = status(inst)
    if running is None:
        print(f"Kafka on port {inst.port}: not running")
        return 3
    print(f"Kafka on port {inst.port}: {'up' if answers else 'not answering'} (pid {running}; log: {inst.log_file})")
    return 0 if answers else 4


if __name__ == "__main__":
    sys.exit(main())
