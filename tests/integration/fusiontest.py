# SPDX-License-Identifier: LGPL-2.1-or-later
"""fusiontest — run whole fusion clusters as plain processes for tests.

A Cluster writes a temporary fusion.conf with free loopback ports, starts
fusion-monitor and fusion-server processes from the build directory
(FUSION_BUILD_DIR), and offers small protocol helpers. Every wait is bounded
(wait_for raises TimeoutError). Exit code 77 means "skipped".
"""
import os
import collections
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("FUSION_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SERVER_BIN = os.path.join(BUILD, "src", "server", "fusion-server")
MONITOR_BIN = os.path.join(BUILD, "src", "monitor", "fusion-monitor")
CLIENT_BIN = os.path.join(BUILD, "src", "client", "fusion-client")
CTL_BIN = os.path.join(BUILD, "src", "ctl", "fusionctl")
SKIP = 77


_PORTS_GIVEN = set()


def free_port():
    """A loopback port that is free now, taken below the kernel's ephemeral range: a port
    bind(0) picked could be taken by some outgoing connection's ephemeral port before
    the daemon binds it (a test once failed with EADDRINUSE that way). Ports are drawn
    at random (tests run in parallel) and never given twice by one process."""
    try:
        lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    span = (max(1025, lo - 12000), lo - 1)
    for _ in range(200):
        port = random.randint(*span) if span[0] < span[1] else 0
        if port in _PORTS_GIVEN:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            port = s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError("no free loopback port below %d" % lo)


def wait_for(cond, timeout=10.0, what="condition", interval=0.005):
    """Poll cond() until it returns a truthy value; raise TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Conn:
    """A line-protocol connection (server client port or monitor client API)."""

    def __init__(self, addr, timeout=2.0):
        if addr.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(addr)
        else:
            host, port = addr.rsplit(":", 1)
            self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self.buf = b""

    def send(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(line + b"\n")

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def request(self, line):
        self.send(line)
        return self.readline()

    def request_until_end(self, line):
        self.send(line)
        out = []
        while True:
            l = self.readline()
            if l == "END" or l.startswith("ERR"):
                if l.startswith("ERR"):
                    out.append(l)
                return out
            out.append(l)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def one_request(addr, line, timeout=2.0):
    c = Conn(addr, timeout)
    try:
        return c.request(line)
    finally:
        c.close()


def put_until_ok(addr, msgid, payload, timeout=10.0):
    """PUT to one server until it answers OK (a PUT is safe to repeat); returns the index.
    Transient answers (NOREPLICAS while a backup re-syncs, NOLEASE) are retried."""
    def attempt():
        try:
            r = one_request(addr, "PUT %s %s" % (msgid, payload), 5.0)
        except OSError:
            return None
        if r.startswith("OK "):
            return int(r.split()[1])
        assert r.startswith(("ERR NOREPLICAS", "ERR NOLEASE", "ERR BUSY")), r
        return None
    return wait_for(attempt, timeout, "OK for PUT %s" % msgid, interval=0.01)


class Cluster:
    NAMES = ["primary", "backup", "backup2"]

    def __init__(self, names=None, cluster_opts=None, monitor_opts=None, server_opts=None, unix_heartbeat=True):
        for b in (SERVER_BIN, MONITOR_BIN):
            if not os.access(b, os.X_OK):
                print("missing binary %s" % b)
                sys.exit(SKIP)
        self.dir = tempfile.mkdtemp(prefix="fusion-it-")
        self.names = names or list(self.NAMES)
        self.ports = {n: free_port() for n in self.names}
        self.monitor_port = free_port()
        self.client_api_port = free_port()
        self.procs = {}
        self.logs = {}
        self.conf = os.path.join(self.dir, "fusion.conf")
        self.monitor_sock = os.path.join(self.dir, "monitor.sock") if unix_heartbeat else ""
        self.client_sock = os.path.join(self.dir, "client.sock")
        # the cluster key: TCP links between servers (replication) are authenticated
        self.authkey = os.path.join(self.dir, "authkey")
        fd = os.open(self.authkey, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32).hex().encode())
        os.close(fd)
        cluster = {"heartbeat_interval_ms": 50, "dead_after_ms": 300, "lease_ms": 200,
                   "min_sync_replicas": 1, "sync_timeout_ms": 1000, "fsync": "always",
                   "authkey_file": self.authkey}
        cluster.update(cluster_opts or {})
        mon = {"listen": "127.0.0.1:%d" % self.monitor_port, "socket": self.monitor_sock,
               "client_listen": "127.0.0.1:%d" % self.client_api_port, "client_socket": self.client_sock,
               "restart_failed_units": "no", "state_dir": os.path.join(self.dir, "monitor")}
        mon.update(monitor_opts or {})
        lines = ["[cluster]"] + ["%s = %s" % kv for kv in cluster.items()]
        lines += ["", "[monitor]"] + ["%s = %s" % kv for kv in mon.items()]
        for n in self.names:
            lines += ["", "[server.%s]" % n, "address = 127.0.0.1:%d" % self.ports[n],
                      "data_dir = %s" % os.path.join(self.dir, n)]
            for k, v in (server_opts or {}).get(n, {}).items():
                lines.append("%s = %s" % (k, v))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.cluster_opts = cluster

    # processes
    def _spawn(self, key, argv, env=None):
        log = open(os.path.join(self.dir, key + ".log"), "ab")
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.pop("LISTEN_FDS", None)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        if env:
            e.update(env)
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=e, start_new_session=True)
        self.procs[key] = p
        self.logs[key] = log
        return p

    def start_monitor(self):
        return self._spawn("monitor", [MONITOR_BIN, "--config", self.conf])

    def start_server(self, name):
        return self._spawn(name, [SERVER_BIN, "--config", self.conf, "--name", name])

    def start_all(self, order=None):
        for k in order or (["monitor"] + self.names):
            if k == "monitor":
                self.start_monitor()
            else:
                self.start_server(k)

    def signal(self, key, sig):
        p = self.procs[key]
        p.send_signal(sig)
        if sig == signal.SIGKILL:
            p.wait(timeout=10)

    def kill(self, key):
        self.signal(key, signal.SIGKILL)

    def alive(self, key):
        p = self.procs.get(key)
        return p is not None and p.poll() is None

    def stop(self):
        for k, p in self.procs.items():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                except OSError:
                    pass
                p.terminate()
        for k, p in self.procs.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs.values():
            log.close()

    def dump_logs(self, tail=60):
        for k in self.procs:
            path = os.path.join(self.dir, k + ".log")
            try:
                with open(path, errors="replace") as f:
                    lines = f.readlines()
            except OSError:
                continue
            print("---- %s (last %d lines) ----" % (k, tail))
            sys.stdout.write("".join(lines[-tail:]))

    def cleanup(self, ok):
        self.stop()
        if not ok or os.environ.get("FUSION_KEEP_TEST_DIR"):
            self.dump_logs()
            print("test dir kept: %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # protocol helpers
    def addr(self, name):
        return "127.0.0.1:%d" % self.ports[name]

    def api(self):
        return "127.0.0.1:%d" % self.client_api_port

    def who(self):
        """(name, address, term) from the monitor, or None."""
        try:
            r = one_request(self.api(), "WHO", 1.0)
        except OSError:
            return None
        parts = r.split()
        if len(parts) == 4 and parts[0] == "PRIMARY":
            return parts[1], parts[2], int(parts[3])
        return None

    def ping(self, name):
        """(name, role, term) from the server, or None if it does not answer."""
        try:
            r = one_request(self.addr(name), "PING", 1.0)
        except OSError:
            return None
        parts = r.split()
        if len(parts) == 4 and parts[0] == "PONG":
            return parts[1], parts[2], int(parts[3])
        return None

    def info(self, name):
        c = Conn(self.addr(name))
        try:
            lines = c.request_until_end("INFO")
        finally:
            c.close()
        return dict(l.split("=", 1) for l in lines if "=" in l)

    def status(self):
        c = Conn(self.api())
        try:
            lines = c.request_until_end("STATUS")
        finally:
            c.close()
        out = {}
        for l in lines:
            if l.startswith("SERVER "):
                kv = dict(x.split("=", 1) for x in l.split()[1:] if "=" in x)
                out[kv.get("name")] = kv
        return out

    def wait_primary(self, timeout=15.0, exclude=None, min_term=0):
        def cond():
            w = self.who()
            if not w or w[0] == exclude or w[2] < min_term:
                return None
            p = self.ping(w[0])
            if p and p[1] == "primary" and p[2] == w[2]:
                return w
            return None
        return wait_for(cond, timeout, "a primary")

    def wait_writable(self, timeout=15.0):
        """Wait until a SEND through the current primary is acknowledged; returns its index."""
        def cond():
            w = self.who()
            if not w:
                return None
            try:
                msgid = "probe-%d" % random.getrandbits(48)
                r = one_request(w[1], "PUT %s %s" % (msgid, msgid), 2.0)
            except OSError:
                return None
            if r.startswith("OK "):
                return int(r.split()[1])
            return None
        return wait_for(cond, timeout, "the cluster to acknowledge a write", interval=0.02)

    def read_all(self, name, upto=None):
        """Every MSG of the server's log (up to its commit index) as {index: (term, payload)}."""
        out = {}
        c = Conn(self.addr(name), 5.0)
        try:
            start = 1
            while True:
                lines = c.request_until_end("READ %d 1000" % start)
                msgs = [l for l in lines if l.startswith("MSG ")]
                if any(l.startswith("ERR") for l in lines):
                    raise RuntimeError("READ failed: %s" % lines)
                for l in msgs:
                    _, idx, term, *rest = l.split(" ", 3)
                    out[int(idx)] = (int(term), rest[0] if rest else "")
                if len(msgs) < 1000:
                    break
                start += 1000
        finally:
            c.close()
        return out


class Writer(threading.Thread):
    """A client that sends PUTs with unique msgids continuously, following the
    primary through the monitor, and records every acknowledgement."""

    def __init__(self, cluster, tag="w", timeout=2.0):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.tag = tag
        self.timeout = timeout
        self.acks = []          # (monotonic time, msgid, index, payload)
        self.errors = []
        # Why the writer last left a connection or waited (time, what): for a failing
        # test's message, so that a stall says where it was spent.
        self.events = collections.deque(maxlen=20)
        self.stop_flag = threading.Event()
        self.seq = 0

    def run(self):
        conn = None
        pending = None
        while not self.stop_flag.is_set():
            if pending is None:
                self.seq += 1
                msgid = "%s-%d" % (self.tag, self.seq)
                pending = (msgid, "payload %s %d" % (self.tag, self.seq))
            try:
                if conn is None:
                    w = self.cluster.who()
                    if not w:
                        self._event("no answer to WHO")
                        time.sleep(0.002)
                        continue
                    conn = Conn(w[1], self.timeout)
                    target = w
                r = self._request(conn, "PUT %s %s" % pending, target)
            except OSError as e:
                self._event("connection: %s" % (str(e) or type(e).__name__))
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.002)
                continue
            if r.startswith("OK "):
                self.acks.append((time.monotonic(), pending[0], int(r.split()[1]), pending[1]))
                pending = None
            elif r.startswith("REDIRECT") or r.startswith("ERR"):
                # a REDIRECT or a transient error sends the writer back to the monitor;
                # anything else (BADCMD, TOOLONG, ...) is a real error
                transient = ("REDIRECT", "ERR NOREPLICAS", "ERR NOLEASE", "ERR NOPRIMARY", "ERR BUSY")
                if not r.startswith(transient):
                    self.errors.append(r)
                self._event(r[:80])
                conn.close()
                conn = None
                time.sleep(0.002)
            else:
                self.errors.append(r)
        if conn:
            conn.close()

    def _request(self, conn, line, target):
        """Send line and wait for its reply; while the reply is late, ask the
        monitor every 50 ms whether the primary moved (a hung primary never
        answers) and give up on this connection if it did."""
        conn.send(line)
        deadline = time.monotonic() + self.timeout
        conn.sock.settimeout(0.05)
        try:
            while True:
                try:
                    return conn.readline()
                except socket.timeout:
                    if time.monotonic() > deadline:
                        raise
                    w = self.cluster.who()
                    if w and w[:2] != target[:2]:
                        raise ConnectionError("primary moved to %s" % w[0])
        finally:
            conn.sock.settimeout(self.timeout)

    def _event(self, what):
        self.events.append((time.monotonic(), what))

    def recent_events(self, since):
        """The last reasons the writer reconnected or waited, as 't+SECONDS what' from since."""
        return "; ".join("t+%.2f %s" % (t - since, what) for t, what in list(self.events)) or "none"

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=10)

    def first_ack_after(self, t):
        for a in self.acks:
            if a[0] > t:
                return a
        return None


def main(tests):
    """Run the test named by argv[1] (or all) and exit 0/1/77."""
    name = sys.argv[1] if len(sys.argv) > 1 else None
    selected = {name: tests[name]} if name else tests
    for n, fn in selected.items():
        print("== %s" % n, flush=True)
        fn()
    sys.exit(0)
