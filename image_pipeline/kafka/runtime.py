"""The files of a local Kafka broker: where jars and instances live, java, and server.properties."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from image_pipeline.config import PROJECT_ROOT

KAFKA_VERSION = "4.1.1"
MIN_JAVA = 17
POM = Path(__file__).resolve().parent.parent / "resources" / "kafka-pom.xml"


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
    inst.properties_file.write_text("# Written by image_pipeline.kafka.broker\n" + body)


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
        ["kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(inst.properties_file)],
    )
    with inst.log_file.open("a") as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise BrokerError(f"formatting KRaft storage failed (log: {inst.log_file})")


def cluster_id() -> str:
    """A random base64url cluster id of 16 bytes, as kafka-storage random-uuid makes.

    Like Kafka's own generator it never starts with '-': the storage tool's argument parser would
    take such an id for an option and refuse to format (one start in 64 failed that way).
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate
