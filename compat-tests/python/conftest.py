"""Fixtures for the Python compatibility suite: one real odradek broker process per test session.

The broker binary is not built here: set ODRADEK_BIN, or build `target/debug/odradek` first
(`cargo build`). The broker runs with the repo's config/server.properties (ODRADEK_CONFIG overrides
the path) and per-session overrides for the listener, log.dirs and metrics port.

    ODRADEK_BIN=target/debug/odradek "$(scripts/python-deps.sh)/bin/python" -m pytest compat-tests/python
"""

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "odradek"
DEFAULT_CONFIG = REPO / "config" / "server.properties"

# Until the listener accepts a TCP connection. A debug build recovering every log after SIGKILL
# is the slow case; ODRADEK_STARTUP_TIMEOUT (seconds) raises the bound on a slow machine.
STARTUP_TIMEOUT_S = float(os.environ.get("ODRADEK_STARTUP_TIMEOUT") or 20.0)
STOP_TIMEOUT_S = 10.0  # SIGTERM -> SIGKILL at session end
RESTART_STOP_TIMEOUT_S = 20.0  # SIGTERM/SIGKILL -> exit, in restart()
LOG_TAIL_LINES = 60


def unique_topic(prefix="compat"):
    """A topic name no other test (or earlier run against the same log dir) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


_PORTS_HANDED_OUT = set()


def _ephemeral_low():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port that is free on 127.0.0.1 now and was not handed out before in this process.

    Picked below the kernel's ephemeral range: a port from bind(0) comes from that range, so the
    local end of any outgoing connection (a client's, ZooKeeper's) could take it before the broker
    binds it. Same rule as the Rust tests' `free_port`, with a different start per process.
    """
    low = 10_000
    span = max(_ephemeral_low() - low, 1_000)
    start = (os.getpid() * 7_919) % span
    for i in range(span):
        port = low + (start + i) % span
        if port in _PORTS_HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 in {low}..{low + span}")


def read_properties(path):
    """A Java .properties file as a dict (enough of the format for server.properties)."""
    props = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return props
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep < 0:
            props[line] = ""
        else:
            props[line[:sep].strip()] = line[sep + 1 :].strip()
    return props


class BrokerError(RuntimeError):
    pass


class Broker:
    """A running odradek process. `bootstrap` is "127.0.0.1:<port>"; the port is kept across
    restart() so clients created afterwards (and librdkafka's reconnects) find it again."""

    def __init__(self, binary, config, workdir, overrides=()):
        self.binary = Path(binary)
        self.config = Path(config)
        self.workdir = Path(workdir)
        self.log_dir = self.workdir / "data"
        self.output_path = self.workdir / "broker.out"
        self.port = free_port()
        self.metrics_port = free_port()
        # A callable gets this broker (its ports and directories are set by now), for overrides
        # that name them, e.g. more listeners beside the PLAINTEXT one on self.port.
        self.overrides = list(overrides(self) if callable(overrides) else overrides)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.properties = read_properties(self.config)
        self.proc = None
        self.last_returncode = None
        self.starts = 0

    @property
    def args(self):
        return [
            str(self.binary),
            "broker",
            str(self.config),
            "--override",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "--override",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "--override",
            f"log.dirs={self.log_dir}",
            "--override",
            f"metrics.port={self.metrics_port}",
        ] + [arg for o in self.overrides for arg in ("--override", o)]

    # -- output -------------------------------------------------------------------------------

    def output_tail(self, lines=LOG_TAIL_LINES):
        try:
            text = self.output_path.read_text(errors="replace")
        except OSError:
            return "(no broker output)"
        tail = text.splitlines()[-lines:]
        return "\n".join(tail) if tail else "(broker output is empty)"

    def _fail(self, message):
        raise BrokerError(
            f"{message}\ncommand: {' '.join(self.args)}\n"
            f"--- last {LOG_TAIL_LINES} lines of {self.output_path} ---\n{self.output_tail()}"
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError(f"broker already running (pid {self.proc.pid})")
        if not self.binary.is_file():
            raise BrokerError(
                f"odradek binary not found at {self.binary}: build it with `cargo build` "
                f"or point ODRADEK_BIN at a built binary"
            )
        if not os.access(self.binary, os.X_OK):
            raise BrokerError(f"odradek binary at {self.binary} is not executable")
        if not self.config.is_file():
            raise BrokerError(
                f"broker config not found at {self.config} (set ODRADEK_CONFIG to another file)"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.output_path, "ab") as out:
            out.write(f"\n===== start #{self.starts}: {' '.join(self.args)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(self.workdir),
            )
        self._wait_for_port()

    def _wait_for_port(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_error = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.last_returncode = rc
                self._fail(f"odradek exited with status {rc} during start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError as e:
                last_error = e
            if time.monotonic() >= deadline:
                break
            # Doubles as the poll interval: returns at once if the process exits.
            try:
                self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        pid = self.proc.pid
        self._terminate(STOP_TIMEOUT_S)
        self._fail(
            f"odradek (pid {pid}) did not accept connections on {self.bootstrap} within "
            f"{STARTUP_TIMEOUT_S:.0f} s (last error: {last_error})"
        )

    def _signal(self, sig):
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _terminate(self, timeout):
        """SIGTERM, then SIGKILL after `timeout` s. Returns True if SIGTERM sufficed."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self._signal(signal.SIGTERM)
        try:
            self.last_returncode = self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.last_returncode = self.proc.wait(timeout=timeout)
            return False

    def stop(self):
        """Stops the broker: SIGTERM, SIGKILL after 10 s. Idempotent."""
        if self.proc is None:
            return
        self._terminate(STOP_TIMEOUT_S)

    def restart(self, kill=False):
        """Stops the process with SIGTERM (graceful) or SIGKILL (kill=True), waits for it to exit
        (bounded), and starts it again with the same arguments, waiting for the listener."""
        if self.proc is None or self.proc.poll() is not None:
            self._fail("restart(): broker is not running")
        pid = self.proc.pid
        self._signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.last_returncode = self.proc.wait(timeout=RESTART_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.last_returncode = self.proc.wait(timeout=RESTART_STOP_TIMEOUT_S)
            self._fail(
                f"odradek (pid {pid}) did not exit within {RESTART_STOP_TIMEOUT_S:.0f} s of "
                f"SIGTERM (killed it)"
            )
        self.start()
        return self


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    yield from running_broker(tmp_path_factory)


def running_broker(tmp_path_factory, overrides=()):
    """Starts a broker (with `overrides` as --override key=value, or a callable taking the
    Broker and returning them) for a fixture to yield, and stops it when the fixture ends."""
    binary = Path(os.environ.get("ODRADEK_BIN") or DEFAULT_BIN)
    config = Path(os.environ.get("ODRADEK_CONFIG") or DEFAULT_CONFIG)
    b = Broker(binary, config, tmp_path_factory.mktemp("odradek"), overrides)
    error = None
    try:
        b.start()
    except BrokerError as e:
        error = str(e)
    if error is not None:
        b.stop()
        pytest.fail(error, pytrace=False)
    _session_broker.append(b)
    try:
        yield b
    finally:
        _session_broker.remove(b)
        b.stop()


@pytest.fixture(name="unique_topic")
def unique_topic_fixture():
    return unique_topic


_session_broker = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, attach the tail of the broker's output to the report."""
    report = yield
    if report.failed and _session_broker:
        report.sections.append(
            ("odradek broker output (tail)", _session_broker[-1].output_tail())
        )
    return report
