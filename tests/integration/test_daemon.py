#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Daemon behaviour without a cluster failure: socket activation and
sd_notify, and hostile input on every port. Run one: test_daemon.py NAME."""
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from fusiontest import CLIENT_BIN, SERVER_BIN, MONITOR_BIN, SKIP, Cluster, Conn, Writer, free_port, main, one_request, wait_for


class NotifyReceiver:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.05)
        self.messages = []   # (pid, {key: value})

    def poll(self):
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))
            except (socket.timeout, BlockingIOError):
                return
            pid = None
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            kv = {}
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    kv[k] = v
            self.messages.append((pid, kv))

    def seen(self, key, value=None):
        self.poll()
        return [m for m in self.messages if key in m[1] and (value is None or m[1][key] == value)]


def t_socket_activation():
    if not shutil.which("systemd-socket-activate"):
        print("systemd-socket-activate not installed")
        raise SystemExit(SKIP)
    c = Cluster()
    ok = False
    procs = []
    try:
        d = tempfile.mkdtemp(prefix="fusion-notify-")
        rx = NotifyReceiver(os.path.join(d, "notify"))
        env = dict(os.environ, NOTIFY_SOCKET=rx.path, WATCHDOG_USEC="500000", ASAN_OPTIONS="detect_leaks=0")
        # the monitor, with both of its endpoints passed by name
        mon_hb = "127.0.0.1:%d" % c.monitor_port
        mon_api = "127.0.0.1:%d" % c.client_api_port
        procs.append(subprocess.Popen(
            ["systemd-socket-activate", "-l", mon_hb, "-l", mon_api, "--fdname=heartbeat:client",
             "-E", "NOTIFY_SOCKET", "-E", "WATCHDOG_USEC", "-E", "ASAN_OPTIONS", MONITOR_BIN, "--config", c.conf],
            env=env, stdout=open(os.path.join(c.dir, "monitor.log"), "ab"), stderr=subprocess.STDOUT))
        srv = subprocess.Popen(
            ["systemd-socket-activate", "-l", c.addr("primary"), "--fdname=client",
             "-E", "NOTIFY_SOCKET", "-E", "WATCHDOG_USEC", "-E", "ASAN_OPTIONS",
             SERVER_BIN, "--config", c.conf, "--name", "primary"],
            env=env, stdout=open(os.path.join(c.dir, "primary.log"), "ab"), stderr=subprocess.STDOUT)
        procs.append(srv)
        # systemd-socket-activate execs on the first connection: connect, then talk
        def pong():
            try:
                conn = Conn(c.addr("primary"), 2.0)
            except OSError:
                return None
            try:
                r = conn.request("PING")
            finally:
                conn.close()
            return r if r.startswith("PONG primary ") else None
        r = wait_for(pong, 10, "PONG on the passed socket")
        wait_for(lambda: rx.seen("READY", "1"), 5, "READY=1")
        wait_for(lambda: rx.seen("STATUS"), 5, "STATUS=")
        wait_for(lambda: len(rx.seen("WATCHDOG", "1")) >= 2, 5, "two WATCHDOG=1 pings")
        # wake the monitor (also activated on first connection) and check its notifications
        def who():
            try:
                return Conn(mon_api, 2.0).request("WHO")
            except OSError:
                return None
        wait_for(who, 10, "the monitor to answer WHO on its passed socket")
        pids = {m[0] for m in rx.seen("READY", "1")}
        wait_for(lambda: len({m[0] for m in rx.seen("READY", "1")}) >= 2, 5, "READY=1 from the monitor too")
        statuses = [m[1]["STATUS"] for m in rx.seen("STATUS")]
        print("PING -> %s; READY from pids %s; STATUS lines: %s" % (r, sorted(pids), statuses[:4]))
        assert srv.poll() is None
        ok = True
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        c.cleanup(ok)


def t_bad_input():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    c = Cluster()
    ok = False
    try:
        c.start_all()
        c.wait_primary()
        c.wait_writable()
        writer = Writer(c, "good")
        writer.start()
        wait_for(lambda: len(writer.acks) >= 5, 10, "writes before the attack")
        ports = [c.addr(n) for n in c.names] + ["127.0.0.1:%d" % c.monitor_port, c.api()]
        rnd = random.Random(1234)
        idle = []
        for addr in ports:
            host, port = addr.rsplit(":", 1)
            # garbage, binary junk and NUL bytes
            for _ in range(20):
                s = socket.create_connection((host, int(port)), timeout=2)
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000))) + b"\n")
                s.close()
            # a 10 MB line
            s = socket.create_connection((host, int(port)), timeout=5)
            try:
                chunk = b"A" * 65536
                for _ in range(160):
                    s.sendall(chunk)
                s.sendall(b"\n")
            except OSError:
                pass  # the peer may close an over-long line's connection
            s.close()
            # half a line, then close
            s = socket.create_connection((host, int(port)), timeout=2)
            s.sendall(b"SEND half a li")
            s.close()
            # 500 idle connections
            for _ in range(500):
                try:
                    idle.append(socket.create_connection((host, int(port)), timeout=2))
                except OSError:
                    break
            n = len(writer.acks)
            wait_for(lambda: len(writer.acks) >= n + 3, 10, "the good client to keep writing during %s" % addr)
        # a well-formed request still works on each server while 2500 idle connections are open
        for name in c.names:
            p = c.ping(name)
            assert p and p[0] == name, (name, p)
        # protocol errors on a live connection leave it usable
        conn = Conn(c.addr(c.who()[0]))
        assert conn.request("FOO").startswith("ERR BADCMD"), "unknown verb"
        assert conn.request("GET 0").startswith("ERR BADCMD"), "index 0"
        assert conn.request("SEND " + "x" * 70000).startswith("ERR TOOLONG"), "too long"
        assert conn.request("PING").startswith("PONG"), "still usable"
        conn.close()
        # requests and the end of the stream in one go (the FIN often arrives with the data;
        # client sockets are edge-triggered): every answer comes, then the server closes
        for name in c.names:
            host, port = c.addr(name).rsplit(":", 1)
            for i in range(100):
                n_req = 3 if i % 2 else 200   # 200: more lines than one wakeup handles
                s = socket.create_connection((host, int(port)), timeout=3)
                s.sendall(b"PING\n" * n_req)
                s.shutdown(socket.SHUT_WR)
                data = b""
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    try:
                        k = s.recv(65536)
                    except socket.timeout:
                        break
                    if not k:
                        break
                    data += k
                else:
                    raise AssertionError("%s: no end of stream within 5 s" % name)
                s.close()
                lines = data.decode().splitlines()
                assert len(lines) == n_req and all(x.startswith("PONG") for x in lines), (name, i, lines[:3], len(lines))
                assert not k, "%s: the server did not close after %d answers (try %d)" % (name, n_req, i)
        for s in idle:
            s.close()
        n = len(writer.acks)
        wait_for(lambda: len(writer.acks) >= n + 5, 10, "writes after the attack")
        writer.stop()
        for k in ["monitor"] + c.names:
            assert c.alive(k), "%s died" % k
        assert not writer.errors, writer.errors
        print("every daemon alive; the good client got %d OKs during the attack; %d idle connections held"
              % (len(writer.acks), len(idle)))
        ok = True
    finally:
        c.cleanup(ok)


def recv_until_eof(s, timeout):
    """Everything the peer sends until it closes; raises on a reset, AssertionError on a timeout."""
    s.settimeout(timeout)
    data = b""
    while True:
        k = s.recv(65536)   # socket.timeout propagates: no EOF in time
        if not k:
            return data
        data += k


def accept_queue(port):
    """Connections waiting in the accept queue of the listening socket on 127.0.0.1:port."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == "0100007F:%04X" % port and fields[3] == "0A":
                return int(fields[4].split(":")[1], 16)
    return None


def t_graceful_stop():
    """SIGTERM: the server stops accepting, answers what clients already sent (and the first
    request of a connection it accepted but had not heard from yet), closes each connection with
    a FIN after the last answer (no reset), and exits 0 well within its grace period."""
    c = Cluster()
    ok = False
    try:
        c.start_all()
        c.wait_primary()
        c.wait_writable()
        name = c.wait_primary()[0]   # the primary: it also has replicas and pending writes to finish
        host, port = c.addr(name).rsplit(":", 1)
        port = int(port)
        served = socket.create_connection((host, port), timeout=3)     # answered once, then idle
        served.sendall(b"PING\n")
        assert served.recv(4096).startswith(b"PONG"), "PONG before the stop"
        silent = socket.create_connection((host, port), timeout=3)     # accepted, nothing sent yet
        pipelined = socket.create_connection((host, port), timeout=3)  # many requests in flight
        wait_for(lambda: accept_queue(port) == 0, 5, "the server to accept the connections")
        pipelined.sendall(b"PING\n" * 300 + b"PUT stop-1 written during the stop\n")
        t0 = time.monotonic()
        c.signal(name, signal.SIGTERM)
        # a connection it had answered and that is idle: closed with a FIN, not a reset
        assert recv_until_eof(served, 3) == b"", "an idle connection gets EOF"
        served.close()
        # everything already sent is answered, then EOF
        lines = recv_until_eof(pipelined, 3).decode().splitlines()
        assert len(lines) == 301 and all(x.startswith("PONG") for x in lines[:300]), (len(lines), lines[-2:])
        assert lines[300].startswith(("OK ", "ERR ")), lines[300]
        pipelined.close()
        # the connection not heard from yet: its first request is still answered
        silent.sendall(b"PING\n")
        data = recv_until_eof(silent, 3).decode()
        assert data.startswith("PONG"), data
        silent.close()
        # every client gone: it exits at once, not at the end of its 1 s grace period
        code = c.procs[name].wait(timeout=5)
        took = time.monotonic() - t0
        assert code == 0, "exit status %s" % code
        assert took < 0.9, "stopped after %.2f s (the grace period ran out?)" % took
        # nothing new is accepted once the listening socket is closed (not socket-activated here)
        try:
            socket.create_connection((host, port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        assert refused, "a connection was accepted after the stop"
        print("stopped in %.0f ms; PUT during the stop: %s" % (took * 1000, lines[300]))
        ok = True
    finally:
        c.cleanup(ok)


def voluntary_switches(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches for %d" % pid)


def idle_wakeups(c, window=1.0):
    """How often each server of an idle cluster blocks and wakes up (voluntary context
    switches per second, measured over a fixed window: a rate, not a wait)."""
    before = {n: voluntary_switches(c.procs[n].pid) for n in c.names}
    time.sleep(window)
    return {n: (voluntary_switches(c.procs[n].pid) - before[n]) / window for n in c.names}


def t_batch_sync():
    """fsync=batch: what a server writes is fdatasync'ed soon after (seen with strace on the
    primary and on a backup), and a server with nothing to sync does not wake up for it: idle,
    it wakes about as often as with fsync=always (heartbeats and ticks), not 100 more times a
    second for a periodic sync timer."""
    strace = shutil.which("strace")
    if not strace:
        print("strace not installed")
        sys.exit(SKIP)
    rates = {}
    for mode in ("always", "batch"):
        c = Cluster(cluster_opts={"fsync": mode})
        ok = False
        try:
            c.start_all()
            c.wait_primary()
            c.wait_writable()
            rates[mode] = idle_wakeups(c)
            if mode == "batch":
                primary = c.wait_primary()[0]
                backup = [n for n in c.names if n != primary][0]
                traces = {}
                for n in (primary, backup):
                    out = os.path.join(c.dir, "strace-%s.out" % n)
                    err = open(os.path.join(c.dir, "strace-%s.err" % n), "w+")
                    p = subprocess.Popen([strace, "-e", "trace=fdatasync", "-o", out, "-p",
                                          str(c.procs[n].pid)], stderr=err)
                    traces[n] = (p, out, err)
                try:
                    for n, (p, out, err) in traces.items():
                        wait_for(lambda: "attached" in open(err.name).read(), 10, "strace to attach to " + n)
                    w = c.wait_primary()
                    assert one_request(w[1], "PUT batch-1 written with fsync=batch").startswith("OK"), "PUT"
                    for n, (p, out, err) in traces.items():
                        wait_for(lambda: os.path.exists(out) and "fdatasync(" in open(out).read(), 5,
                                 "an fdatasync on %s after the write" % n)
                finally:
                    for p, out, err in traces.values():
                        p.terminate()
                        p.wait(timeout=10)
                        err.close()
            ok = True
        finally:
            c.cleanup(ok)
    worst = {m: max(r.values()) for m, r in rates.items()}
    print("idle wakeups per second, worst server: always %.0f, batch %.0f" % (worst["always"], worst["batch"]))
    assert worst["batch"] < worst["always"] + 40, "idle fsync=batch servers wake up %s times a second (always: %s)" % (
        rates["batch"], rates["always"])


def bench_result(stdout):
    """The `bench key=value ...` line of fusion-client bench, and its fields."""
    line = [l for l in stdout.splitlines() if l.startswith("bench ")][0]
    return line, dict(f.split("=", 1) for f in line.split()[1:])


def t_client_bench():
    """`fusion-client bench` with many connections and several PUTs outstanding on each: every
    write it counts is in the primary's log, exactly once; and when the primary dies under it,
    it reports the lost connections and ends at once with an error, not at its deadline."""
    c = Cluster()
    ok = False
    try:
        c.start_all()
        primary = c.wait_primary()[0]
        c.wait_writable()
        before = len(c.read_all(primary))
        n, size = 1001, 100
        p = subprocess.run([CLIENT_BIN, "--config", c.conf, "bench", "--clients", "8", "--pipeline", "4",
                            "--messages", str(n), "--size", str(size)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        line, kv = bench_result(p.stdout)
        assert kv["msgs"] == str(n) and kv["errors"] == "0" and kv["clients"] == "8", line
        log = c.read_all(primary)
        assert len(log) - before == n, (len(log), before)
        assert sum(1 for _, payload in log.values() if payload == "x" * size) == n, "not every write is in the log"

        # The primary dies in the middle of a long run: the bench must end soon after, with an error.
        deadline_ms = 20000
        b = subprocess.Popen([CLIENT_BIN, "--config", c.conf, "--deadline", str(deadline_ms), "bench",
                              "--clients", "16", "--pipeline", "2", "--messages", "100000000", "--size", str(size)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            start = int(c.info(primary)["commit_index"])
            wait_for(lambda: int(c.info(primary)["commit_index"]) > start + 500, 20, "the bench under way")
            c.kill(primary)
            t = time.monotonic()
            out, err = b.communicate(timeout=deadline_ms / 1000 - 5)
            took = time.monotonic() - t
        finally:
            if b.poll() is None:
                b.kill()
                b.wait()
        assert b.returncode != 0, (b.returncode, out, err)
        assert "connection lost" in err, err
        line, kv = bench_result(out)
        assert int(kv["errors"]) > 0, line
        print("1001 writes in the log once each; primary killed: bench ended %.2f s later: %s" % (took, line))
        ok = True
    finally:
        c.cleanup(ok)


main({"socket-activation": t_socket_activation, "bad-input": t_bad_input, "graceful-stop": t_graceful_stop,
      "batch-sync": t_batch_sync, "client-bench": t_client_bench})
