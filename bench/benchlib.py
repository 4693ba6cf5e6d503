# SPDX-License-Identifier: LGPL-2.1-or-later
"""benchlib — processes, clusters and clients for bench/run.

Everything runs on 127.0.0.1 with free ports, in one temporary directory;
every process started is registered and stopped by stop_all(); every wait
has a deadline.
"""
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUILD = None          # set by run
TMP = None            # one temp dir for the whole run
PROCS = []            # every Popen we started
_port_lock = threading.Lock()
_ports_given = set()


def init(build):
    global BUILD, TMP
    BUILD = build
    TMP = tempfile.mkdtemp(prefix="fusion-bench-")
    return TMP


def bin_path(name):
    sub = {"fusion-server": "server", "fusion-monitor": "monitor", "fusion-client": "client",
           "fusionctl": "ctl"}[name]
    return os.path.join(BUILD, "src", sub, name)


def free_port():
    with _port_lock:
        for _ in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
            s.close()
            if p not in _ports_given:
                _ports_given.add(p)
                return p
    raise RuntimeError("no free port")


def mkdtemp(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=TMP)


def spawn(argv, log_path, env=None, nofile=None):
    log = open(log_path, "ab")
    e = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"):
        e.pop(k, None)
    if env:
        e.update(env)

    def pre():
        if nofile:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            except (ValueError, OSError):
                pass

    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e,
                         start_new_session=True, preexec_fn=pre)
    log.close()
    PROCS.append(p)
    return p


def stop_proc(p, timeout=5.0):
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGCONT)
    except OSError:
        pass
    try:
        p.terminate()
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.kill()
        p.wait(timeout=10)
    except OSError:
        pass


def stop_all():
    for p in list(PROCS):
        try:
            stop_proc(p, 3.0)
        except Exception:
            pass
    PROCS.clear()


def cleanup():
    stop_all()
    if TMP and not os.environ.get("FUSION_BENCH_KEEP"):
        shutil.rmtree(TMP, ignore_errors=True)


def drop_dir(d):
    """A stopped deployment's files go at once (FUSION_BENCH_KEEP keeps them): GBs of logs left in the
    page cache would make the next deployment's writes land on fresh memory, which in a VM costs a host
    fault per page (writes to the page cache ran at 0.4-0.6 GB/s instead of 5 GB/s here), and the figures
    would depend on their order."""
    if not os.environ.get("FUSION_BENCH_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


def wait_for(cond, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def rss_kib(pid, key="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- line protocol

class LineConn:
    def __init__(self, addr, timeout=1.0):
        if addr.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(addr)
        else:
            host, port = addr.rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def request(self, line):
        self.send(line)
        return self.readline()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def one_line(addr, line, timeout=1.0):
    c = LineConn(addr, timeout)
    try:
        return c.request(line)
    finally:
        c.close()


# ---------------------------------------------------------------- RESP

class Resp:
    def __init__(self, port, timeout=1.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def settimeout(self, t):
        self.sock.settimeout(t)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(*args))

    def cmd(self, *args):
        self.send(*args)
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RespError(str):
    pass


def resp_one(port, *args, timeout=1.0):
    c = Resp(port, timeout)
    try:
        return c.cmd(*args)
    finally:
        c.close()


# ---------------------------------------------------------------- fusion cluster

FUSION_DEFAULTS = {"heartbeat_interval_ms": 100, "dead_after_ms": 500, "lease_ms": 400,
                   "min_sync_replicas": 1, "sync_timeout_ms": 1000, "fsync": "always"}


_authkey = None


def supports_authkey():
    """Whether this build knows [cluster] authkey_file (auth = tcp by default)."""
    global _authkey
    if _authkey is None:
        with open(bin_path("fusion-server"), "rb") as f:
            _authkey = b"authkey_file" in f.read()
    return _authkey


class Fusion:
    def __init__(self, n=3, cluster=None, tag="fusion"):
        self.dir = mkdtemp(tag + "-")
        base = ["primary", "backup", "backup2"]
        self.names = (base + ["server%d" % i for i in range(4, n + 1)])[:n]
        self.ports = {nm: free_port() for nm in self.names}
        self.api_port = free_port()
        self.hb_port = free_port()
        self.conf = os.path.join(self.dir, "fusion.conf")
        self.procs = {}
        c = dict(FUSION_DEFAULTS)
        c.update(cluster or {})
        self.cluster = c
        if supports_authkey() and "authkey_file" not in c:
            # the default auth = tcp needs a cluster key: a fresh random one per cluster
            key = os.path.join(self.dir, "authkey")
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, os.urandom(32).hex().encode() + b"\n")
            os.close(fd)
            c["authkey_file"] = key
        lines = ["[cluster]"] + ["%s = %s" % kv for kv in c.items()]
        lines += ["", "[monitor]", "listen = 127.0.0.1:%d" % self.hb_port,
                  "socket = %s" % os.path.join(self.dir, "monitor.sock"),
                  "client_listen = 127.0.0.1:%d" % self.api_port,
                  "client_socket = %s" % os.path.join(self.dir, "client.sock"),
                  "restart_failed_units = no", "state_dir = %s" % os.path.join(self.dir, "monitor")]
        for nm in self.names:
            lines += ["", "[server.%s]" % nm, "address = 127.0.0.1:%d" % self.ports[nm],
                      "data_dir = %s" % os.path.join(self.dir, nm)]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def addr(self, nm):
        return "127.0.0.1:%d" % self.ports[nm]

    def api(self):
        return "127.0.0.1:%d" % self.api_port

    def start(self, nofile=None):
        self.procs["monitor"] = spawn([bin_path("fusion-monitor"), "--config", self.conf],
                                      os.path.join(self.dir, "monitor.log"))
        for nm in self.names:
            self.procs[nm] = spawn([bin_path("fusion-server"), "--config", self.conf, "--name", nm],
                                   os.path.join(self.dir, nm + ".log"), nofile=nofile)
        self.wait_writable()
        return self

    def who(self):
        try:
            r = one_line(self.api(), "WHO", 0.5).split()
        except OSError:
            return None
        if len(r) == 4 and r[0] == "PRIMARY":
            return r[1], r[2], int(r[3])
        return None

    def wait_writable(self, timeout=20.0):
        def ok():
            w = self.who()
            if not w:
                return None
            try:
                r = one_line(w[1], "PUT warm-%d x" % time.monotonic_ns(), 2.0)
            except OSError:
                return None
            return w if r.startswith("OK ") else None
        return wait_for(ok, timeout, "fusion to acknowledge a write", 0.02)

    def pid(self, nm):
        return self.procs[nm].pid

    def stop(self):
        for p in self.procs.values():
            stop_proc(p)
        drop_dir(self.dir)


# ---------------------------------------------------------------- redis deployment

class RedisHA:
    """A Redis master, replicas and (optionally) sentinels on loopback."""

    def __init__(self, replicas=2, sentinels=3, down_after=1000, failover_timeout=5000, aof=None,
                 defaults=False, tag="redis"):
        self.dir = mkdtemp(tag + "-")
        self.n_replicas = replicas
        self.n_sentinels = sentinels
        self.down_after = down_after
        self.failover_timeout = failover_timeout
        self.defaults = defaults
        self.aof = aof          # None | "always" | "everysec" | "no"
        self.ports = [free_port() for _ in range(1 + replicas)]
        self.sports = [free_port() for _ in range(sentinels)]
        self.procs = {}

    def _server(self, i):
        d = os.path.join(self.dir, "r%d" % i)
        os.makedirs(d, exist_ok=True)
        argv = ["redis-server", "--port", str(self.ports[i]), "--bind", "127.0.0.1", "--dir", d,
                "--save", "", "--daemonize", "no", "--protected-mode", "no", "--logfile", ""]
        if self.aof:
            # No automatic AOF rewrite: a rewrite forks and copies the data set while a
            # trial runs (at 64 x 4 KiB every few seconds with the default 100% / 64 MB),
            # and fusion does not compact its log during a trial either.
            argv += ["--appendonly", "yes", "--appendfsync", self.aof, "--auto-aof-rewrite-percentage", "0"]
        else:
            argv += ["--appendonly", "no"]
        if i > 0:
            argv += ["--replicaof", "127.0.0.1", str(self.ports[0])]
        return spawn(argv, os.path.join(self.dir, "r%d.log" % i))

    def _sentinel(self, i):
        conf = os.path.join(self.dir, "sentinel%d.conf" % i)
        lines = ["port %d" % self.sports[i], "bind 127.0.0.1", "daemonize no", "protected-mode no",
                 "dir %s" % self.dir, "sentinel monitor mymaster 127.0.0.1 %d 2" % self.ports[0]]
        if not self.defaults:
            lines += ["sentinel down-after-milliseconds mymaster %d" % self.down_after,
                      "sentinel failover-timeout mymaster %d" % self.failover_timeout]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return spawn(["redis-sentinel", conf], os.path.join(self.dir, "sentinel%d.log" % i))

    def start(self):
        for i in range(1 + self.n_replicas):
            self.procs["r%d" % i] = self._server(i)
        for i in range(1 + self.n_replicas):
            wait_for(lambda: self._ping(self.ports[i]), 10, "redis %d up" % i)

        def synced():
            try:
                info = resp_one(self.ports[0], "INFO", "replication")
            except (OSError, ConnectionError):
                return False
            return ("connected_slaves:%d" % self.n_replicas) in info and info.count("state=online") == self.n_replicas
        wait_for(synced, 20, "replicas online")
        for i in range(self.n_sentinels):
            self.procs["s%d" % i] = self._sentinel(i)

        def sentinels_ready():
            for p in self.sports:
                try:
                    m = resp_one(p, "SENTINEL", "MASTER", "mymaster")
                except (OSError, ConnectionError):
                    return False
                if not isinstance(m, list):
                    return False
                kv = dict(zip(m[::2], m[1::2]))
                if int(kv.get("num-slaves", 0)) < self.n_replicas or \
                        int(kv.get("num-other-sentinels", 0)) < self.n_sentinels - 1:
                    return False
            return True
        if self.n_sentinels:
            wait_for(sentinels_ready, 30, "sentinels to see every replica and sentinel", 0.05)
        return self

    @staticmethod
    def _ping(port):
        try:
            return resp_one(port, "PING", timeout=0.5) == "PONG"
        except (OSError, ConnectionError):
            return False

    def master_addr(self, timeout=0.1):
        for p in self.sports:
            try:
                r = resp_one(p, "SENTINEL", "get-master-addr-by-name", "mymaster", timeout=timeout)
            except (OSError, ConnectionError):
                continue
            if isinstance(r, list) and len(r) == 2:
                return int(r[1])
        return None

    def pid_of_port(self, port):
        i = self.ports.index(port)
        return self.procs["r%d" % i].pid

    def stop(self):
        for p in self.procs.values():
            stop_proc(p)
        drop_dir(self.dir)


# ---------------------------------------------------------------- writers

class Writer(threading.Thread):
    """Writes one acknowledged message at a time, forever (until stop), and
    records the monotonic time of every OK. On any error it asks the
    discovery service for the primary and reconnects; while a reply is slow
    it re-checks the primary every stall_s.
    """

    def __init__(self, kind, target, stall_s=0.1, retry_s=0.001, retry_max_s=0.01, max_s=120.0):
        super().__init__(daemon=True)
        self.kind = kind            # "fusion" (target: Fusion) or "redis" (target: RedisHA)
        self.target = target
        self.stall_s = stall_s
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self.oks = []          # monotonic time of every OK
        self.where = []        # the server that gave it
        self.errors = 0
        self.stop_flag = False
        self.max_s = max_s

    def discover(self):
        if self.kind == "fusion":
            w = self.target.who()
            return w[1] if w else None
        p = self.target.master_addr(timeout=self.stall_s)
        return p

    def connect(self, where):
        if self.kind == "fusion":
            return LineConn(where, self.stall_s)
        return Resp(where, self.stall_s)

    def write(self, conn, i):
        if self.kind == "fusion":
            r = conn.request("PUT w-%d-%d %d" % (os.getpid(), i, i))
            return r.startswith("OK ")
        r = conn.cmd("SET", "k", str(i))
        return r == "OK"

    def run(self):
        end = time.monotonic() + self.max_s
        conn, where, i = None, None, 0
        backoff = self.retry_s

        def pause():
            nonlocal backoff
            time.sleep(backoff)
            backoff = min(backoff * 2, self.retry_max_s)

        while not self.stop_flag and time.monotonic() < end:
            if conn is None:
                where = self.discover()
                if where is None:
                    pause()
                    continue
                try:
                    conn = self.connect(where)
                except OSError:
                    conn = None
                    pause()
                    continue
            try:
                ok = self.write(conn, i)
            except (OSError, ConnectionError, ValueError):
                # timed out or broken: a slow reply is re-checked against discovery
                ok = None
            if ok:
                self.oks.append(time.monotonic())
                self.where.append(where)
                i += 1
                backoff = self.retry_s
                continue
            self.errors += 1
            conn.close()
            conn = None
            if ok is False:
                pause()
        if conn:
            conn.close()

    def moved_after(self, t, victim):
        """An OK after t from a server other than victim."""
        for i in range(len(self.oks) - 1, -1, -1):
            if self.oks[i] <= t:
                return False
            if self.where[i] != victim:
                return True
        return False

    def failover_gap(self, t, victim):
        """Last OK (from anyone) before t to the first OK after t from a server
        other than victim, in ms. An OK that arrives after t from the victim was
        sent before the signal took effect."""
        before = [x for x in self.oks if x <= t]
        after = [x for x, w in zip(self.oks, self.where) if x > t and w != victim]
        if not before or not after:
            return None
        return (after[0] - before[-1]) * 1000.0

    def gap_around(self, t):
        """Last OK before t to first OK after t, in ms (None if none after)."""
        before = [x for x in self.oks if x <= t]
        after = [x for x in self.oks if x > t]
        if not before or not after:
            return None
        return (after[0] - before[-1]) * 1000.0


# ---------------------------------------------------------------- stats

def median(v):
    return statistics.median(v) if v else None


def pctl(v, p):
    """Nearest-rank percentile."""
    if not v:
        return None
    s = sorted(v)
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]


def fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return ("%%.%df" % nd) % x
    return str(x)


def table(headers, rows):
    w = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            w[i] = max(w[i], len(str(c)))
    out = ["  ".join(h.ljust(w[i]) for i, h in enumerate(headers))]
    out.append("  ".join("-" * w[i] for i in range(len(headers))))
    for r in rows:
        out.append("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    return "\n".join(out)


def parse_kv(line):
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", line))
