#!/usr/bin/env python3
"""Runner for scripts/bench (which installs and builds first; run that).

Runs loadgen alone, under count_floor (one hook per call, and two: entry and
exit), under probe in three output modes and two --exit modes, and under
bpftrace (a printf per event, and ret + latency through an @start[tid] map),
interleaved and repeated, then a paced run per probe mode, and prints
markdown tables.  Every monitor is pinned to --monitor-cpu with
taskset, loadgen to --load-cpu, and this runner to the monitor CPU too (it
only sleeps while the load runs).  Every child is tracked and stopped on any
exit (and dies with this process: PR_SET_PDEATHSIG).
"""

import argparse
import atexit
import ctypes
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.environ.get("BENCH_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REL = os.path.join(ROOT, "target", "release")
PROBE = os.path.join(REL, "probe")
LOADGEN = os.path.join(REL, "loadgen")
FLOOR = os.path.join(REL, "examples", "count_floor")
ATTACH_TIMEOUT = 10.0
STOP_TIMEOUT = 60.0
BT_LINE = b"hello sys_write was called"

LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
LIVE = {}  # pid -> Popen of every child still running
SPAWNED = []  # pid of every monitor started, to check none survived


def progress(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die_with_parent():
    # In the child between fork and exec: die if this runner dies, however.
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=die_with_parent, **kw)
    LIVE[p.pid] = p
    return p


def reap(p, timeout):
    """Waits for p; returns (returncode, timed_out)."""
    try:
        rc = p.wait(timeout=timeout)
        return rc, False
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(), True
    finally:
        LIVE.pop(p.pid, None)


def stop_all():
    for p in list(LIVE.values()):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        LIVE.pop(p.pid, None)


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def cpu_seconds(pid):
    """CPU time (user+system, all threads, ns resolution) of a live process,
    read from its process CPU clock; None if it is gone."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED, process
    except OSError:
        return None


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def count_lines(path, prefix=None):
    """Lines in a file (only those starting with prefix, if given)."""
    n = 0
    try:
        with open(path, "rb") as f:
            if prefix is None:
                while chunk := f.read(1 << 22):
                    n += chunk.count(b"\n")
            else:
                for line in f:
                    if line.startswith(prefix):
                        n += 1
    except OSError:
        return None
    return n


def last_line(data):
    lines = [l for l in data.decode(errors="replace").splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


class Mode:
    """One kind of row: how to start the monitor, know it is ready, and read
    its event counts when it stopped."""

    def __init__(self, key, label, kind, argv=None, ready=None, calls_div=1, floor="floor",
                 load="write"):
        self.key, self.label, self.kind = key, label, kind
        self.argv, self.ready, self.calls_div = argv, ready, calls_div
        # The floor row whose overhead this one's is compared with: one
        # hook per call, or two (entry and exit) for --exit's rows.
        self.floor = floor
        # What loadgen does: one-byte writes, or getppid calls (which no
        # probe follows: what it costs the calls it does not follow).
        self.load = load


def method_modes(attach, suffix, floor_flags):
    """The floors and the probe's modes on one attach method; keys end in
    `suffix` ("" for the first method)."""
    pa = ["--attach", attach]
    k = lambda key: key + suffix
    on = f" [{attach}]" if suffix else ""
    return [
        Mode(k("floor"), f"count_floor (in-kernel count){on}", "floor",
             lambda c, d: [FLOOR, *floor_flags, c], rb"count_floor: attached", floor=k("floor")),
        # The three output modes, through each kind of ring: perf rings
        # (keys q, log, json) and the map rings, the default (qmap, ...).
        *[Mode(k(key + tag), f"probe {label}{on}", "probe",
               (lambda ring, args: lambda c, d: [PROBE, *pa, "--ring", ring, "-c", c, *args(d)])(
                   ring, args),
               rb"probe: attached", floor=k("floor"))
          for ring, tag, how in (("perf", "", "--ring perf "), ("map", "map", ""))
          for key, label, args in (
              ("q", f"{how}-q --no-log" + (" (map rings, the default)" if tag else ""),
               lambda d: ["-q", "--no-log"]),
              ("log", f"{how}(stdout + syscalls.log to files" + ("; map rings)" if tag else ")"),
               lambda d: ["--log", os.path.join(d, "syscalls.log")]),
              ("json", f"{how}--json --no-log (to file" + ("; map rings)" if tag else ")"),
               lambda d: ["--json", "--no-log"]))],
        Mode(k("floor2"), f"count_floor --exits (in-kernel count, entry + exit hooks){on}", "floor",
             lambda c, d: [FLOOR, *floor_flags, "--exits", c], rb"count_floor: attached",
             floor=k("floor2")),
        # The two-hook floor plus a clock read at each hook: the least any
        # per-call latency costs (top's and --exit's pairing on top of it).
        Mode(k("floor2clk"), f"count_floor --exits --clock (two hooks + a clock read each){on}",
             "floor", lambda c, d: [FLOOR, *floor_flags, "--exits", "--clock", c],
             rb"count_floor: attached", floor=k("floor2")),
        Mode(k("exitq"), f"probe --ring perf --exit -q --no-log{on}", "probe",
             lambda c, d: [PROBE, *pa, "--ring", "perf", "--exit", "-c", c, "-q", "--no-log"],
             rb"probe: attached",
             floor=k("floor2")),
        Mode(k("exitqmap"), f"probe --exit -q --no-log (map rings){on}", "probe",
             lambda c, d: [PROBE, *pa, "--ring", "map", "--exit", "-c", c, "-q", "--no-log"],
             rb"probe: attached", floor=k("floor2")),
        Mode(k("exitlog"), f"probe --exit (stdout + syscalls.log to files; map rings){on}", "probe",
             lambda c, d: [PROBE, *pa, "--exit", "-c", c, "--log", os.path.join(d, "syscalls.log")],
             rb"probe: attached", floor=k("floor2")),
        Mode(k("top"), f"probe top (per process: counted in the kernel, shown every 2 s){on}",
             "probe", lambda c, d: [PROBE, "top", *pa, "-c", c], rb"probe: attached",
             floor=k("floor2")),
    ]


def getppid_modes():
    """A getppid loop alone and under `probe -q --no-log` on each
    tracepoint method: any syscall tracepoint puts every syscall on the
    kernel's slow path; the raw one runs its program for each as well."""
    return [Mode("ppid_bare", "getppid loop alone", "bare", load="getppid")] + [
        Mode(f"ppid_{m}", f"getppid loop under probe -q --no-log --attach {m}", "probe",
             (lambda m: lambda c, d: [PROBE, "--attach", m, "-c", c, "-q", "--no-log"])(m),
             rb"probe: attached", floor="floor", load="getppid")
        for m in ("tracepoint", "raw-tracepoint")
    ]


def modes(attach, baseline=None, methods=()):
    pa = ["--attach", attach]
    base = ([Mode("base", f"baseline probe {os.path.basename(baseline)} (stdout + log to files)",
                  "probe",
                  lambda c, d: [baseline, *pa, "-c", c, "--log", os.path.join(d, "syscalls.log")],
                  rb"probe: attached")] if baseline else [])
    extra = []
    for m in methods:
        if m != attach:
            extra += method_modes(m, "_" + m.split("-")[0], ["--raw"] if m == "raw-tracepoint" else [])
    return base + [Mode("bare", "load alone", "bare")] + method_modes(
        attach, "", ["--raw"] if attach == "raw-tracepoint" else []) + extra + (
        getppid_modes() if methods else []) + [
        Mode("bpftrace", "bpftrace printf per event", "bpftrace",
             lambda c, d: ["bpftrace", "-e",
                           f'tracepoint:syscalls:sys_enter_write /comm == "{c}"/ '
                           '{ printf("hello sys_write was called\\n"); }'],
             rb"Attaching \d+ probes?", calls_div=10),
        Mode("bpftrace_exit", "bpftrace ret + latency per event (@start[tid])", "bpftrace",
             lambda c, d: ["bpftrace", "-e",
                           f'tracepoint:syscalls:sys_enter_write /comm == "{c}"/ '
                           '{ @start[tid] = nsecs; } '
                           'tracepoint:syscalls:sys_exit_write /@start[tid]/ '
                           '{ printf("hello sys_write was called ret=%d lat_ns=%llu\\n", '
                           'args->ret, nsecs - @start[tid]); delete(@start[tid]); }'],
             rb"Attaching \d+ probes?", calls_div=10, floor="floor2"),
        # The same aggregation as `probe top` in bpftrace's maps: bytes per
        # comm, a latency histogram, a count; one line at the first event
        # (to know it is attached), the maps printed at exit.
        Mode("bpftrace_agg", "bpftrace @bytes[comm] = sum(ret), @lat = hist(), @calls = count()",
             "bpftrace_agg",
             lambda c, d: ["bpftrace", "-e",
                           f'tracepoint:syscalls:sys_enter_write /comm == "{c}"/ '
                           '{ @start[tid] = nsecs; } '
                           'tracepoint:syscalls:sys_exit_write /@start[tid]/ '
                           '{ @bytes[comm] = sum(args->ret); @lat = hist(nsecs - @start[tid]); '
                           '@calls = count(); delete(@start[tid]); '
                           'if (@seen == 0) { @seen = 1; printf("hello sys_write was called\\n"); } }'],
             rb"Attaching \d+ probes?", calls_div=2, floor="floor2"),
    ]


class Bench:
    def __init__(self, args):
        self.a = args
        self.tmp = tempfile.mkdtemp(prefix="probe-bench.")
        self.seq = 0
        self.failed = False

    def comm(self, key):
        self.seq += 1
        return f"bn{key[:4]}{os.getpid() % 1000}-{self.seq}"[:15]

    def loadgen(self, comm, calls, rate=None, load="write"):
        """Runs the load; returns (ns_per_call, ns_total, error)."""
        what = "--writes" if load == "write" else "--getppid"
        argv = [LOADGEN, "--comm", comm, what, str(calls),
                "--cpu", str(self.a.load_cpu), "--report"]
        if rate:
            argv += ["--rate", str(rate)]
        p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=120 + calls * 50e-6)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            LIVE.pop(p.pid, None)
            return None, None, "loadgen timed out"
        LIVE.pop(p.pid, None)
        m = re.search(rb"calls=(\d+) ns=(\d+)", out)
        if p.returncode != 0 or not m:
            return None, None, f"loadgen failed (rc={p.returncode}): {last_line(err + out)}"
        return int(m.group(2)) / int(m.group(1)), int(m.group(2)), None

    def run_one(self, mode, calls, rate=None):
        """One measurement.  Returns a dict; 'error' set if something failed."""
        r = {"calls": calls, "error": None, "notes": []}
        comm = self.comm(mode.key)
        if mode.kind == "bare":
            r["ns_call"], r["ns"], r["error"] = self.loadgen(comm, calls, rate, mode.load)
            return r
        d = tempfile.mkdtemp(dir=self.tmp)
        out_p, err_p = os.path.join(d, "stdout"), os.path.join(d, "stderr")
        try:
            return self._monitored(mode, calls, rate, comm, d, out_p, err_p, r)
        finally:
            if not self.a.keep:
                shutil.rmtree(d, ignore_errors=True)

    def _monitored(self, mode, calls, rate, comm, d, out_p, err_p, r):
        argv = ["taskset", "-c", str(self.a.monitor_cpu)] + mode.argv(comm, d)
        with open(out_p, "wb") as out_f, open(err_p, "wb") as err_f:
            t0 = time.monotonic()
            p = spawn(argv, stdout=out_f, stderr=err_f, cwd=d)
        SPAWNED.append(p.pid)
        # Wait for "attached", polling stdout+stderr every ~1 ms.
        ready = re.compile(mode.ready)
        deadline = t0 + ATTACH_TIMEOUT
        while True:
            if ready.search(read(err_p)) or (mode.kind.startswith("bpftrace")
                                             and ready.search(read(out_p))):
                r["attach_s"] = time.monotonic() - t0
                break
            if p.poll() is not None:
                LIVE.pop(p.pid, None)
                r["error"] = (f"{mode.kind} exited (rc={p.returncode}) before attaching: "
                              f"{last_line(read(err_p) + read(out_p))}")
                return r
            if time.monotonic() > deadline:
                reap_sigint(p, 5)
                r["error"] = (f"{mode.kind} not attached within {ATTACH_TIMEOUT:.0f} s: "
                              f"{last_line(read(err_p))}")
                return r
            time.sleep(0.001)
        pre = pre_calls = 0
        if mode.kind.startswith("bpftrace"):
            # bpftrace prints "Attaching N probes..." before it attaches: send
            # single writes until one shows up in its output, then start the
            # load; those lines are subtracted from what it received.
            while True:
                pre_calls += 1
                if self.loadgen(comm, 1)[2] is not None or p.poll() is not None:
                    r["error"] = f"bpftrace failed before its first event: {last_line(read(err_p))}"
                    reap_sigint(p, 5)
                    return r
                seen = time.monotonic() + 0.3
                while time.monotonic() < seen and not count_lines(out_p, BT_LINE):
                    time.sleep(0.001)
                if count_lines(out_p, BT_LINE):
                    r["first_event_s"] = time.monotonic() - t0
                    break
                if time.monotonic() > deadline:
                    r["error"] = f"bpftrace saw no event within {ATTACH_TIMEOUT:.0f} s"
                    reap_sigint(p, 5)
                    return r
            time.sleep(0.05)
            pre = count_lines(out_p, BT_LINE)
        cpu0 = cpu_seconds(p.pid)

        r["ns_call"], r["ns"], err = self.loadgen(comm, calls, rate, mode.load)
        if err:
            r["error"] = err

        # Let the monitor drain what is buffered: wait until it uses under 2%
        # of a CPU over 50 ms (at most 60 s), then sample CPU time and peak RSS.
        last, t_end = cpu_seconds(p.pid), time.monotonic() + 60
        while last is not None and time.monotonic() < t_end:
            time.sleep(0.05)
            now = cpu_seconds(p.pid)
            if now is None or now - last < 0.001:
                break
            last = now
        else:
            if last is not None:
                r["notes"].append("still busy 60 s after the load")
        cpu1 = cpu_seconds(p.pid)
        r["hwm_kb"] = vm_hwm_kb(p.pid)
        if cpu0 is not None and cpu1 is not None:
            r["cpu_s"] = cpu1 - cpu0
        rc, killed = reap_sigint(p, STOP_TIMEOUT)
        if killed:
            r["error"] = r["error"] or f"{mode.kind} did not exit {STOP_TIMEOUT:.0f} s after SIGINT (killed)"
        elif rc != 0 and not (mode.kind == "probe" and rc == 4):
            # probe exits 4 when it lost events (checked against its count below).
            r["error"] = r["error"] or f"{mode.kind} exited rc={rc}: {last_line(read(err_p))}"

        err_text = read(err_p)
        # A getppid load makes no call a probe follows.
        r["generated"] = calls if mode.load == "write" else 0
        key = mode.key.removesuffix("_raw").replace("map", "")
        if mode.kind == "probe":
            m = re.search(rb"probe: received=(\d+) lost=(\d+)\s*$", err_text)
            if m:
                r["received"], r["lost"] = int(m.group(1)), int(m.group(2))
                if not killed and (rc == 4) != (r["lost"] > 0):
                    r["error"] = r["error"] or f"probe exited rc={rc} with lost={r['lost']}"
            else:
                r["error"] = r["error"] or f"no received/lost line: {last_line(err_text)}"
            text = err_text.decode(errors="replace")
            for why, pat in (("rings full", r"(\d+) the kernel could not put in a ring"),
                             ("read too fast", r"(\d+) read too fast"),
                             ("malformed", r"(\d+) malformed"),
                             ("rings full", r"lost (\d+) events: the kernel found the (?:map )?rings full"),
                             ("buffer full", r"lost (\d+) events: the outputs fell more"),
                             ("cut at the stop", r"lost (\d+) events: still buffered")):
                n = sum(int(x) for x in re.findall(pat, text))
                if n:
                    r.setdefault("loss_why", {})[why] = n
            for l in text.splitlines():
                if l.strip() and not re.match(r"probe: (attached|received=|lost \d+ events)", l):
                    r["notes"].append("stderr: " + re.sub(r"\d+", "N", l)[:100])
            if key in ("log", "base", "exitlog"):
                self.check_lines(r, out_p, "stdout lines")
                self.check_lines(r, os.path.join(d, "syscalls.log"), "log lines", b"ts=")
            elif key == "json":
                self.check_lines(r, out_p, "json lines")
            elif key in ("q", "exitq"):
                n = count_lines(out_p)
                if n:
                    r["notes"].append(f"-q printed {n} lines")
        elif mode.kind == "floor":
            m = re.search(rb"count=(\d+)", read(out_p))
            if m:
                r["received"], r["lost"] = int(m.group(1)), 0
            else:
                r["error"] = r["error"] or f"no count= line: {last_line(err_text)}"
            exits = re.search(rb"exits=(\d+)", read(out_p))
            if exits and int(exits.group(1)) != r.get("received"):
                r["notes"].append(f"exits={int(exits.group(1))} != entries")
        elif mode.kind == "bpftrace_agg":
            m = re.search(rb"@calls: (\d+)", read(out_p))
            if m:
                r["received"] = int(m.group(1)) - pre_calls
            else:
                r["error"] = r["error"] or f"no @calls in bpftrace's output: {last_line(read(out_p))}"
            lost = re.findall(rb"Lost (\d+) events", read(out_p) + err_text)
            r["lost"] = sum(int(x) for x in lost)
        elif mode.kind == "bpftrace":
            r["received"] = count_lines(out_p, BT_LINE) - pre
            lost = re.findall(rb"Lost (\d+) events", read(out_p) + err_text)
            r["lost"] = sum(int(x) for x in lost)
        return r

    def check_lines(self, r, path, what, prefix=None):
        n = count_lines(path, prefix)
        if r.get("received") is not None and n != r["received"]:
            r["notes"].append(f"{what}={n} != received")

    # ---- the two phases -------------------------------------------------

    def calls_for(self, m):
        if m.kind.startswith("bpftrace") and self.a.bpftrace_calls:
            return self.a.bpftrace_calls
        return max(1000, self.a.calls // m.calls_div)

    def main_runs(self):
        methods = [] if self.a.no_raw else ["tracepoint", "raw-tracepoint"]
        ms = [m for m in modes(self.a.attach, self.a.baseline, methods)
              if not (m.kind.startswith("bpftrace") and self.a.no_bpftrace)]
        progress("warm-up: one short run of each row, discarded")
        for m in ms:
            self.run_one(m, max(1000, self.calls_for(m) // 10))
        results = {m.key: [] for m in ms}
        for run in range(self.a.runs):
            order = ms[run % len(ms):] + ms[:run % len(ms)]  # rotate the order each run
            for m in order:
                calls = self.calls_for(m)
                progress(f"run {run + 1}/{self.a.runs}: {m.label}, {calls} writes")
                r = self.run_one(m, calls)
                if r["error"]:
                    progress(f"  FAILED: {r['error']}")
                    self.failed = True
                results[m.key].append(r)
        return ms, results

    def paced_runs(self):
        ms = [m for m in modes(self.a.attach) if m.kind in ("bare", "probe")]
        rates = [float(x) for x in self.a.rates.split(",")]
        res = {}
        for m in ms:
            for rate in rates:
                calls = int(rate * 1e6 * self.a.rate_secs)
                progress(f"paced: {m.label} at {rate:g} M calls/s, {calls} writes")
                r = self.run_one(m, calls, rate * 1e6)
                if r["error"]:
                    progress(f"  FAILED: {r['error']}")
                    self.failed = True
                res[(m.key, rate)] = r
        return ms, rates, res


def top_keys_runs(args, runs=3):
    """probe top --by file with 10,000 live keys: the monitor's CPU per
    interval (its own measure, on stderr), with the keys idle (opened and
    written once) and with every key changing every interval."""
    out = {}
    for label, extra in (("10,000 keys, idle", []), ("10,000 keys, all changing", ["--every-ms", "100"])):
        res = []
        for run in range(runs):
            progress(f"top keys: {label}, run {run + 1}/{runs}")
            comm = f"bnkeys{os.getpid() % 1000}-{run}"[:15]
            err_p = tempfile.mktemp(prefix="probe-topkeys.")
            with open(err_p, "wb") as err_f, open(os.devnull, "wb") as null:
                p = spawn(["taskset", "-c", str(args.monitor_cpu), PROBE, "top", "--by", "file",
                           "-i", "0.5", "-d", "5", "-c", comm], stdout=null, stderr=err_f)
                t_end = time.monotonic() + ATTACH_TIMEOUT
                while b"probe: attached" not in read(err_p) and time.monotonic() < t_end:
                    time.sleep(0.01)
                g = spawn([LOADGEN, "--comm", comm, "--open-fds", "10000", "--hold-ms", "3500",
                           *extra], stdout=null, stderr=null)
                reap(g, 60)
                rc, _ = reap(p, 60)
            text = read(err_p).decode(errors="replace")
            os.unlink(err_p)
            m = re.search(r"top: (\d+) intervals, ([\d.]+) ms of CPU each \(median; mean [\d.]+, "
                          r"at most ([\d.]+); at most (\d+) rows", text)
            if rc != 0 or not m:
                progress(f"  FAILED: {last_line(text.encode())}")
                continue
            res.append((int(m.group(1)), float(m.group(2)), float(m.group(3)), int(m.group(4))))
        out[label] = res
    return out


def report_top_keys(res):
    header = ["load", "runs", "intervals", "ms of CPU per interval (median interval, median of runs)",
              "the most in one interval (max of runs)", "rows in the kernel's table"]
    rows = []
    for label, rs in res.items():
        if not rs:
            rows.append([label, 0, "–", "–", "–", "–"])
            continue
        rows.append([label, len(rs), sum(r[0] for r in rs), fmt(med([r[1] for r in rs]), ".2f"),
                     fmt(max(r[2] for r in rs), ".2f"), max(r[3] for r in rs)])
    return table(header, rows)


PID_MODES = (
    # key, label, the probe's filter ({comm}, {pid} filled in; None: no
    # probe), its environment.
    ("bare", "load alone", None, {}),
    ("c", "probe -q --no-log -c COMM", ["-c", "{comm}"], {}),
    ("p_nobtf", "probe -q --no-log -p PID, no kernel BTF (the number alone)", ["-p", "{pid}"],
     {"PROBE_BTF": "/nonexistent"}),
    ("p", "probe -q --no-log -p PID (the process's identity checked)", ["-p", "{pid}"], {}),
    ("c_exit", "probe --exit -q --no-log -c COMM", ["--exit", "-c", "{comm}"], {}),
    ("p_exit", "probe --exit -q --no-log -p PID (checked at entry and exit)",
     ["--exit", "-p", "{pid}"], {}),
)


def wait_in_sigwait(pid, timeout=10):
    """Until loadgen --wait-signal is in rt_sigtimedwait (x86-64 syscall
    128, as /proc/PID/syscall says), so that SIGUSR1 wakes it rather than
    kills it."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end and read(f"/proc/{pid}/syscall").split(b" ")[0] != b"128":
        time.sleep(0.001)


def pid_run(args, extra, env, comm):
    """One run of PID_MODES: loadgen waits for SIGUSR1 so that the probe
    can be started with its pid; a -p probe must stop by itself when it
    exits. Returns (ns_per_call, received, lost, error)."""
    g = spawn([LOADGEN, "--comm", comm, "--wait-signal", "--writes", str(args.calls),
               "--cpu", str(args.load_cpu), "--report"], stdout=subprocess.PIPE,
              stderr=subprocess.DEVNULL)
    p, err_p = None, tempfile.mktemp(prefix="probe-pid.")
    try:
        if extra is not None:
            argv = ["taskset", "-c", str(args.monitor_cpu), PROBE, "--attach", args.attach,
                    "-q", "--no-log", *[a.format(comm=comm, pid=g.pid) for a in extra]]
            with open(err_p, "wb") as err_f:
                p = spawn(argv, stdout=subprocess.DEVNULL, stderr=err_f,
                          env={**os.environ, **env})
            wait_attached(err_p)
            if b"probe: attached" not in read(err_p):
                return None, None, None, f"not attached: {last_line(read(err_p))}"
        wait_in_sigwait(g.pid)
        os.kill(g.pid, signal.SIGUSR1)
        out, _ = g.communicate(timeout=120 + args.calls * 50e-6)
        LIVE.pop(g.pid, None)
        m = re.search(rb"calls=(\d+) ns=(\d+)", out)
        if not m:
            return None, None, None, f"loadgen: {last_line(out)}"
        ns = int(m.group(2)) / int(m.group(1))
        if p is None:
            return ns, None, None, None
        if "-p" in extra:
            rc, killed = reap(p, 10)
            if killed:
                return ns, None, None, "-p: did not stop at the exit of its process"
        else:
            rc, killed = reap_sigint(p, STOP_TIMEOUT)
        m = re.search(rb"probe: received=(\d+) lost=(\d+)\s*$", read(err_p))
        if rc != 0 or not m:
            return ns, None, None, f"probe rc={rc}: {last_line(read(err_p))}"
        return ns, int(m.group(1)), int(m.group(2)), None
    finally:
        if p is not None and p.poll() is None:
            reap_sigint(p, 5)
        if os.path.exists(err_p):
            os.unlink(err_p)


def pid_runs(args):
    """-p's cost per event: the same load under -c COMM, -p PID without
    kernel BTF (a tgid compare), and -p PID (the tgid compare, then two
    reads of kernel memory: the group leader's start time), interleaved."""
    res = {key: [] for key, *_ in PID_MODES}
    for run in range(args.runs):
        order = PID_MODES[run % len(PID_MODES):] + PID_MODES[:run % len(PID_MODES)]
        for key, label, extra, env in order:
            progress(f"-p: run {run + 1}/{args.runs}: {label}")
            r = pid_run(args, extra, env, f"bnpid{os.getpid() % 1000}-{run}{key}"[:15])
            if r[3]:
                progress(f"  FAILED: {r[3]}")
            res[key].append(r)
    return res


def report_pid(res, calls):
    ns = {k: med([r[0] for r in rs if r[0] is not None and not r[3]]) for k, rs in res.items()}
    ref = {"c": "c", "p_nobtf": "c", "p": "c", "c_exit": "c_exit", "p_exit": "c_exit"}
    rows = []
    for key, label, _, _ in PID_MODES:
        rs = res[key]
        good = [r for r in rs if r[0] is not None and not r[3]]
        spread = f"{min(r[0] for r in good):.1f}–{max(r[0] for r in good):.1f}" if good else "–"
        over = ns[key] - ns["bare"] if key != "bare" and None not in (ns[key], ns["bare"]) else None
        base = ref.get(key)
        delta = (ns[key] - ns[base] if base and base != key and None not in (ns[key], ns[base])
                 else None)
        counted = [r for r in good if r[1] is not None]
        got = (f"{sum(r[1] for r in counted):,} of {calls * len(counted):,}, lost "
               f"{sum(r[2] for r in counted):,}" if counted else "–")
        fails = [r[3] for r in rs if r[3]]
        rows.append([label, fmt(ns[key], ".1f"), spread, fmt(over, "+.1f"), fmt(delta, "+.1f"),
                     got, f"FAILED {len(fails)}/{len(rs)}: {fails[-1]}" if fails else ""])
    return table(["row", "ns/syscall (median)", "min–max", "overhead ns", "vs -c (same mode)",
                  "received (all runs)", "notes"], rows)


def scrape(port, timeout=5):
    """One GET /metrics: (seconds, body)."""
    import http.client
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", "/metrics")
    body = c.getresponse().read()
    c.close()
    return time.monotonic() - t0, body


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_attached(err_p):
    t_end = time.monotonic() + ATTACH_TIMEOUT
    while b"probe: attached" not in read(err_p) and time.monotonic() < t_end:
        time.sleep(0.01)


def metrics_runs(args):
    """probe top's metrics: scrape time and size with about 100 and
    10,000 series, and the exporter's CPU per second at -i 1 under load,
    against top without metrics."""
    out = {"scrapes": [], "cpu": []}
    for comms in (1, 112):
        port = free_port()
        err_p = tempfile.mktemp(prefix="probe-metrics.")
        with open(err_p, "wb") as err_f:
            p = spawn(["taskset", "-c", str(args.monitor_cpu), PROBE, "top", "-q", "-i", "1",
                       "--keys", "20000", "--metrics-comms", "100000",
                       "--metrics-listen", f"127.0.0.1:{port}"], stderr=err_f)
            wait_attached(err_p)
            progress(f"metrics: {comms} process names")
            g = spawn([LOADGEN, "--comm", f"bm{os.getpid() % 100}-", "--short-procs", str(comms),
                       "--distinct"], stdout=subprocess.DEVNULL)
            reap(g, 60)
            time.sleep(2.5)
            times, body = [], b""
            for _ in range(20):
                t, body = scrape(port)
                times.append(t)
            reap_sigint(p, STOP_TIMEOUT)
        os.unlink(err_p)
        series = sum(1 for l in body.splitlines() if l and not l.startswith(b"#"))
        out["scrapes"].append((series, len(body), med(times), max(times)))
    for label, extra in (("top -i 1, no metrics", []),
                         ("top -i 1 --metrics-listen, scraped every second",
                          ["--metrics-listen", "PORT"])):
        port = free_port()
        extra = [f"127.0.0.1:{port}" if x == "PORT" else x for x in extra]
        err_p = tempfile.mktemp(prefix="probe-metrics.")
        comm = f"bmcpu{os.getpid() % 1000}"
        with open(err_p, "wb") as err_f:
            p = spawn(["taskset", "-c", str(args.monitor_cpu), PROBE, "top", "-q", "-i", "1",
                       "-c", comm, *extra], stderr=err_f)
            wait_attached(err_p)
            progress(f"metrics: CPU, {label}")
            cpu0, t0 = cpu_seconds(p.pid), time.monotonic()
            g = spawn([LOADGEN, "--comm", comm, "--writes", str(args.calls * 4), "--cpu",
                       str(args.load_cpu)], stdout=subprocess.DEVNULL)
            while g.poll() is None:
                if extra:
                    try:
                        scrape(port)
                    except OSError:
                        pass
                time.sleep(1)
            LIVE.pop(g.pid, None)
            cpu1, t1 = cpu_seconds(p.pid), time.monotonic()
            reap_sigint(p, STOP_TIMEOUT)
        os.unlink(err_p)
        if cpu0 is not None and cpu1 is not None:
            out["cpu"].append((label, (cpu1 - cpu0) / (t1 - t0) * 100, t1 - t0))
    return out


def report_metrics(res):
    rows = [[f"{series:,}", f"{size:,}", fmt(t * 1000, ".2f"), fmt(tmax * 1000, ".2f")]
            for series, size, t, tmax in res["scrapes"]]
    text = table(["series", "bytes", "scrape ms (median of 20)", "slowest ms"], rows)
    rows = [[label, fmt(pct, ".3f") + " %", fmt(secs, ".1f")] for label, pct, secs in res["cpu"]]
    return text + "\n\n" + table(["monitor", "CPU, % of one core", "seconds of load"], rows)


def host_methods():
    """The attach methods this host has, in the probe's order."""
    kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe/type")
    return (["kprobe"] if kprobes else []) + ["tracepoint", "raw-tracepoint"]


SKIP_MODES = (
    ("--ring map", []),
    ("--ring perf", ["--ring", "perf"]),
    ("--exit", ["--exit"]),
    ("top", None),
)


def skip_counts(text):
    """(entries the kernel skipped, returns never seen, calls) from a
    probe's stderr: its loss lines and its received + lost."""
    skipped = sum(int(n) for n in re.findall(
        r"lost (\d+) (?:events|calls): the kernel skipped the probe", text))
    unseen = sum(int(n) for n in re.findall(
        r"lost (\d+) (?:events|calls): their returns were never seen", text))
    m = re.search(r"probe: received=(\d+) lost=(\d+)\s*$", text)
    calls = int(m.group(1)) + int(m.group(2)) if m else None
    return skipped, unseen, calls


def skip_run(args, binary, method, extra, stop_after):
    """One monitor of `binary` on `method` (None: count_floor) while loadgen
    writes at full speed on the load CPU, stopped `stop_after` s into the
    load (the load runs on through the stop). Returns (skipped entries,
    returns never seen, calls, error)."""
    comm = f"bnsk{os.getpid() % 1000}-{len(SPAWNED)}"[:15]
    err_p = tempfile.mktemp(prefix="probe-skips.")
    out_p = err_p + ".out"
    if binary is None:
        argv = [FLOOR, *extra, comm]
        cpu, ready = args.load_cpu, b"count_floor: attached"
    elif extra is None:
        argv = [binary, "top", "--attach", method, "-c", comm, "-q", "-i", "1"]
        cpu, ready = args.monitor_cpu, b"probe: attached"
    else:
        argv = [binary, "--attach", method, "-c", comm, "-q", "--no-log", *extra]
        cpu, ready = args.monitor_cpu, b"probe: attached"
    with open(err_p, "wb") as err_f, open(out_p, "wb") as out_f:
        p = spawn(["taskset", "-c", str(cpu), *argv], stdout=out_f, stderr=err_f)
        SPAWNED.append(p.pid)
        t_end = time.monotonic() + ATTACH_TIMEOUT
        while ready not in read(err_p) and p.poll() is None and time.monotonic() < t_end:
            time.sleep(0.005)
        if ready not in read(err_p):
            reap_sigint(p, 5)
            return None, None, None, f"not attached: {last_line(read(err_p))}"
        g = spawn([LOADGEN, "--comm", comm, "--writes", "4000000000", "--cpu",
                   str(args.load_cpu)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(stop_after)
        rc, killed = reap_sigint(p, STOP_TIMEOUT)
        g.kill()
        reap(g, 10)
    text = read(err_p).decode(errors="replace")
    out = read(out_p).decode(errors="replace")
    for f in (err_p, out_p):
        os.unlink(f)
    if killed or rc != 0:
        return None, None, None, f"rc={rc}: {last_line(text.encode())}"
    if binary is None:
        counts = dict(re.findall(r"(\w+)=(\d+)", out))
        if "misses" not in counts:
            return None, None, None, f"no misses= line: {last_line(out.encode())}"
        return int(counts["misses"]), 0, int(counts["count"]), None
    skipped, unseen, calls = skip_counts(text)
    if calls is None:
        return None, None, None, f"no received= line: {last_line(text.encode())}"
    return skipped, unseen, calls, None


def skips_runs(args):
    """Skips per million calls under the bench load: each method this host
    has, each output mode, this build and the baseline (--baseline, the
    "before"), the load running through the stop; and the count-only floor
    with a loop of bpf(2) map lookups beside the load, on its CPU."""
    builds = [("after", PROBE)] + ([("before", args.baseline)] if args.baseline else [])
    cells = []
    for method in host_methods():
        for mode, extra in SKIP_MODES:
            for build, binary in builds:
                cells.append((method, mode, build, binary, extra))
        if method != "kprobe":
            flags = ["--lookups"] + (["--raw"] if method == "raw-tracepoint" else [])
            cells.append((method, "count_floor --lookups (on the load CPU)", "", None, flags))
    res = {}
    for run in range(args.skip_runs):
        for method, mode, build, binary, extra in cells:
            progress(f"skips {run + 1}/{args.skip_runs}: {method} {mode} {build}")
            r = skip_run(args, binary, method, extra, args.skip_stop_after)
            if r[3]:
                progress(f"  FAILED: {r[3]}")
            res.setdefault((method, mode, build), []).append(r)
    return cells, res


def report_skips(cells, res):
    header = ["method", "mode", "build", "runs", "calls", "entries skipped by the kernel, per M",
              "returns never seen, per M", "notes"]
    rows = []
    for method, mode, build, _, _ in cells:
        rs = res[(method, mode, build)]
        ok = [r for r in rs if r[3] is None]
        errs = [r[3] for r in rs if r[3]]
        calls = sum(r[2] for r in ok)
        per_m = (lambda n: fmt(n * 1e6 / calls, ".1f") + f" ({n:,})") if calls else (lambda n: "–")
        rows.append([method, mode, build or "–", len(ok), f"{calls:,}",
                     per_m(sum(r[0] for r in ok)), per_m(sum(r[1] for r in ok)),
                     f"FAILED {len(errs)}/{len(rs)}: {errs[-1][:80]}" if errs else ""])
    return table(header, rows)


def print_skips(skips, args):
    if not skips:
        return
    print("\n## Runs the kernel skipped (its recursion protection), per million calls\n")
    print(report_skips(*skips))
    print(f"""
- Each cell: loadgen writing one byte at a time at full speed on CPU {args.load_cpu},
  the monitor (pinned to CPU {args.monitor_cpu}, `-c` on loadgen's name, `-q --no-log`;
  top: `-q -i 1`) stopped with SIGINT {args.skip_stop_after:g} s into the load, which runs
  on through the stop; {args.skip_runs} runs summed. calls = the probe's received + lost.
- entries skipped: the probe's "the kernel skipped the probe" lines (the kernel's
  recursion_misses of the entry programs); returns never seen: its "their returns were
  never seen" lines (--exit, top), whatever cause they named.
- before: the --baseline binary; after: this build.
- count_floor --lookups: the floor's program, and a thread making bpf(2) map lookups
  in a loop, both pinned to the load's CPU: what a map operation preempted on that CPU
  costs the calls made there (none where the kernel does not preempt inside itself).""")


def reap_sigint(p, timeout):
    try:
        p.send_signal(signal.SIGINT)
    except ProcessLookupError:
        pass
    rc, killed = reap(p, timeout)
    return rc, killed


# ---- report -------------------------------------------------------------

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec=".0f", none="–"):
    return none if v is None else format(v, spec)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i == 0 or h == "notes" else "---:"
                          for i, h in enumerate(header)) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def report_unrelated(ms, results):
    """What a probe costs the syscalls it does not follow, against the
    perf-tracepoint floor's overhead per write."""
    ns = {k: med([r["ns_call"] for r in rs if not r["error"] and r.get("ns_call") is not None])
          for k, rs in results.items()}
    need = ("ppid_bare", "ppid_tracepoint", "ppid_raw-tracepoint", "floor", "bare")
    if any(ns.get(k) is None for k in need):
        return None
    tp = ns["ppid_tracepoint"] - ns["ppid_bare"]
    raw = ns["ppid_raw-tracepoint"] - ns["ppid_bare"]
    floor = ns["floor"] - ns["bare"]
    return "\n".join([
        f"- getppid alone {ns['ppid_bare']:.1f} ns; under the perf tracepoints +{tp:.1f} ns; "
        f"under the raw tracepoints +{raw:.1f} ns.",
        f"- raw − perf: {raw - tp:+.1f} ns per unrelated syscall = "
        f"**{(raw - tp) / floor:.0%}** of the perf-tracepoint floor's overhead per write "
        f"(+{floor:.1f} ns; the target is ≤ 25%).",
    ])


def report_main(ms, results, args):
    ok = {k: [r for r in rs if not r["error"] and r.get("ns_call") is not None]
          for k, rs in results.items()}
    ns = {k: med([r["ns_call"] for r in rs]) for k, rs in ok.items()}
    bare = ns.get("bare")
    bare_of = {"write": bare, "getppid": ns.get("ppid_bare")}
    floor_ov = {k: ns[k] - bare for k in ("floor", "floor2", "floor_raw", "floor2_raw")
                if ns.get(k) is not None and bare is not None}
    rows = []
    for m in ms:
        rs, good = results[m.key], ok[m.key]
        v = ns[m.key]
        spread = (f"{min(r['ns_call'] for r in good):.0f}–{max(r['ns_call'] for r in good):.0f}"
                  if good else "–")
        base = bare_of[m.load]
        ov = v - base if v is not None and base is not None and m.kind != "bare" else None
        f_ov = floor_ov.get(m.floor)
        mult = (ov / f_ov if ov is not None and f_ov and f_ov > 0 else None)
        done = [r for r in rs if r.get("received") is not None]
        gen = sum(r["generated"] for r in done)
        rec = sum(r["received"] for r in done)
        lost = sum(r["lost"] or 0 for r in done)
        cpu_ev = med([r["cpu_s"] * 1e9 / r["received"] for r in done
                      if r.get("cpu_s") is not None and r["received"]])
        hwm = med([r.get("hwm_kb") for r in rs])
        att = med([r.get("attach_s") for r in rs])
        notes = []
        errs = [r["error"] for r in rs if r["error"]]
        if errs:
            notes.append(f"FAILED {len(errs)}/{len(rs)} runs: {errs[-1]}")
        why = {}
        for r in rs:
            for k, n in r.get("loss_why", {}).items():
                why[k] = why.get(k, 0) + n
            for n in r["notes"]:
                if n not in notes:
                    notes.append(n)
        if why:
            notes.append("probe says lost: " + ", ".join(f"{n:,} {k}" for k, n in why.items())
                         + f" ({sum(1 for r in rs if r.get('lost'))}/{len(rs)} runs)")
        first = med([r.get("first_event_s") for r in rs])
        if first is not None:
            notes.append(f"first event seen {first * 1000:.0f} ms after exec (median)")
        if rs and rs[0]["calls"] != args.calls:
            notes.insert(0, f"only {rs[0]['calls']:,} writes per run (slow)")
        if m.kind == "bare" or not done:
            ev = ("–",) * 5
        else:
            missing = gen - rec - lost
            ev = (f"{gen:,}", f"{rec:,}", f"{lost:,}", f"{missing:,}",
                  fmt(cpu_ev, ".1f"))
        rows.append([m.label, f"{rs[0]['calls']:,}", fmt(v, ".1f"), spread,
                     fmt(ov, "+.1f"), fmt(mult, ".2f") + ("×" if mult is not None else ""),
                     *ev,
                     fmt(hwm / 1024 if hwm else None, ".1f"),
                     fmt(att * 1000 if att is not None else None, ".1f"),
                     "; ".join(notes)])
    header = ["row", "writes/run", "ns/syscall (median)", "min–max", "overhead ns",
              "× floor overhead", "generated (all runs)", "received", "lost",
              "missing", "monitor CPU ns/event", "peak RSS MiB", "exec→attached ms",
              "notes"]
    return table(header, rows)


def report_paced(ms, rates, res):
    header = ["row"] + [f"{r:g} M/s" for r in rates] + ["highest sustained, zero loss"]
    rows = []
    for m in ms:
        row, best, capped = [m.label], None, None
        for rate in rates:
            r = res[(m.key, rate)]
            if r["error"]:
                row.append("FAILED: " + r["error"][:60])
                continue
            achieved = r["calls"] / r["ns"] * 1e3 if r.get("ns") else None  # M/s
            reached = achieved is not None and achieved >= 0.95 * rate
            cell = f"{achieved:.2f} M/s" if achieved is not None else "?"
            if m.kind == "bare":
                zero = True
            else:
                lost = r.get("lost") or 0
                missing = r["generated"] - (r.get("received") or 0) - lost
                zero = lost == 0 and missing == 0
                cell += (", 0 lost" if zero else
                         f", lost {lost:,}" + (f" missing {missing:,}" if missing else "")
                         + f" ({(lost + missing) / r['generated']:.3%})")
            if zero and reached:
                best = rate
            elif zero and achieved is not None:
                capped = max(capped or 0, achieved)
            row.append(cell)
        cell = f"{best:g} M/s" if best is not None else "none"
        if capped is not None and (best is None or capped > best):
            cell += f" (and 0 lost at {capped:.2f} M/s, the most the load reached)"
        row.append(cell)
        rows.append(row)
    return table(header, rows)


def machine_info(args, load_start, stale):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def cmd(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10,
                                  cwd=ROOT).stdout.strip().splitlines()[0]
        except Exception:
            return "?"

    with open("/proc/loadavg") as f:
        load_end = " ".join(f.read().split()[:3])
    return "\n".join([
        f"- command: `{os.environ.get('BENCH_CMDLINE') or ' '.join(sys.argv)}`",
        f"- kernel: {platform.release()} ({platform.machine()}); CPU: {cpu}; "
        f"{os.cpu_count()} CPUs online",
        f"- probe: {cmd(PROBE, '--version')} (commit {cmd('git', 'rev-parse', '--short', 'HEAD')}, "
        f"working tree may differ); {cmd('bpftrace', '--version')}",
        f"- pinning: loadgen on CPU {args.load_cpu}; monitor (taskset -c {args.monitor_cpu}) "
        f"and this runner on CPU {args.monitor_cpu}; probe --attach {args.attach}",
        f"- loadavg at start {load_start}, at end {load_end}",
        "- monitors already running before the bench (not ours, left alone; their BPF "
        "programs run on every write too): " + ("; ".join(f"`{l}`" for l in stale.splitlines())
                                                 if stale else "none"),
        "- monitors started by the bench still running at the end: "
        + (", ".join(map(str, survivors())) or "none"),
    ])


def survivors():
    alive = []
    for pid in SPAWNED:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="measured runs per row (median; default 5, min 3 advised)")
    ap.add_argument("--calls", type=int, default=2_000_000, help="writes per run (default 2000000)")
    ap.add_argument("--bpftrace-calls", type=int, default=None,
                    help="writes per bpftrace run (default calls/10: bpftrace is slow)")
    ap.add_argument("--rates", default="0.5,1,2,4", help="paced rates, M calls/s (default 0.5,1,2,4)")
    ap.add_argument("--rate-secs", type=float, default=1.5, help="seconds of load per paced rate (default 1.5)")
    ap.add_argument("--no-paced", action="store_true", help="skip the paced runs")
    ap.add_argument("--no-bpftrace", action="store_true", help="skip the bpftrace row")
    ap.add_argument("--no-top-keys", action="store_true",
                    help="skip probe top's interval with 10,000 keys")
    ap.add_argument("--no-metrics", action="store_true",
                    help="skip the metrics' scrape and CPU measures")
    ap.add_argument("--no-pid", action="store_true",
                    help="skip -p's cost per event (against -c, and -p without kernel BTF)")
    ap.add_argument("--only-pid", action="store_true",
                    help="measure -p's cost per event alone (no other table)")
    ap.add_argument("--attach", default="tracepoint", help="probe --attach METHOD (default tracepoint, like the floor)")
    ap.add_argument("--no-raw", action="store_true",
                    help="skip the raw-tracepoint rows (floors and every mode) and the getppid rows")
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--monitor-cpu", type=int, default=1)
    ap.add_argument("--baseline", default=None, metavar="PROBE",
                    help="another probe binary (an earlier build) measured as one more row "
                         "in the default mode, interleaved with the others")
    ap.add_argument("--no-skips", action="store_true",
                    help="skip the table of the kernel's skips per million calls")
    ap.add_argument("--skips-only", action="store_true",
                    help="run only the table of the kernel's skips (with --baseline: before and after)")
    ap.add_argument("--skip-runs", type=int, default=3,
                    help="runs per cell of the skips table (default 3)")
    ap.add_argument("--skip-stop-after", type=float, default=1.0,
                    help="seconds of load before the monitor is stopped, the load still "
                         "running (default 1.0)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary files")
    ap.add_argument("--no-build", action="store_true", help="(handled by scripts/bench) do not build")
    args = ap.parse_args()
    if args.runs < 1 or args.calls < 1:
        ap.error("--runs and --calls must be positive")

    if os.geteuid() != 0:
        print("bench: must run as root", file=sys.stderr)
        return 1
    for path in (PROBE, LOADGEN, FLOOR) + ((args.baseline,) if args.baseline else ()):
        if not os.access(path, os.X_OK):
            print(f"bench: {path} missing: build with "
                  "`cargo build --release --bins --example count_floor`", file=sys.stderr)
            return 1
    if shutil.which("bpftrace") is None and not (args.no_bpftrace or args.only_pid):
        print("bench: bpftrace not found (scripts/bench installs it)", file=sys.stderr)
        return 1
    if os.cpu_count() < 2:
        progress("only one CPU: load and monitor share it")
        args.load_cpu = args.monitor_cpu = 0

    atexit.register(stop_all)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    os.sched_setaffinity(0, {args.monitor_cpu})

    stale = "\n".join(filter(None, (
        subprocess.run(["pgrep", "-a", "-x", name], capture_output=True, text=True).stdout.strip()
        for name in ("probe", "bpftrace", "count_floor"))))
    if stale:
        progress("WARNING: monitors already running (not ours, left alone; they "
                 "perturb the numbers):\n" + stale)
    with open("/proc/loadavg") as f:
        load_start = " ".join(f.read().split()[:3])

    b = Bench(args)
    t0 = time.monotonic()
    ms = results = paced = top_keys = metrics = skips = pid = None
    try:
        if not args.skips_only:
            ms, results = ([], {}) if args.only_pid else b.main_runs()
            paced = None if args.no_paced or args.only_pid else b.paced_runs()
            top_keys = None if args.no_top_keys or args.only_pid else top_keys_runs(args)
            metrics = None if args.no_metrics or args.only_pid else metrics_runs(args)
            pid = None if args.no_pid else pid_runs(args)
        skips = None if args.no_skips or args.only_pid else skips_runs(args)
    finally:
        stop_all()
        if not args.keep:
            shutil.rmtree(b.tmp, ignore_errors=True)
        else:
            progress(f"kept {b.tmp}")

    print("# probe benchmark\n")
    print(machine_info(args, load_start, stale))
    if results is None:
        print(f"- total {time.monotonic() - t0:.0f} s")
        print_skips(skips, args)
        return 1 if b.failed else 0
    print(f"- {args.runs} measured runs per row, interleaved (row order rotated each run) "
          f"after one discarded warm-up round; medians; total {time.monotonic() - t0:.0f} s\n")
    if ms:
        print(f"## Load of {args.calls:,} one-byte writes per run\n")
        print(report_main(ms, results, args))
        print("""
- ns/syscall: loadgen --report (wall time of its loop / calls), median over runs;
  overhead = median − median of the bare load; × floor = overhead / the floor's
  overhead: count_floor's for entry-only rows, count_floor --exits's (two hooks per
  call) for --exit's rows and bpftrace's ret + latency row.
- received/lost: probe's final `received= lost=` line; bpftrace: output lines and
  its "Lost N events"; floor: its in-kernel count.  missing = generated − received − lost.
- monitor CPU ns/event: user+system CPU of the monitor process (all threads) from
  "attached" to just before SIGINT (after it went idle), / events received.  The BPF
  program itself runs in loadgen's context: it is in ns/syscall, not here.
- peak RSS: VmHWM just before SIGINT.  exec→attached: from spawn (taskset + exec)
  to the ready line on stderr/stdout, polled every ~1 ms.""")
    unrelated = report_unrelated(ms, results) if ms else None
    if unrelated:
        print("\n## The cost to syscalls the probe does not follow (getppid)\n")
        print(unrelated)
    if paced:
        pm, rates, res = paced
        print(f"\n## Paced load (loadgen --rate, {args.rate_secs:g} s per rate, one run each)\n")
        print(report_paced(pm, rates, res))
        print("""
- Each cell: the rate loadgen achieved, and the events lost (probe's count) or missing.
- Sustained: zero lost and missing, and the load reached ≥ 95% of the target rate
  (the monitor's in-kernel cost slows the load itself, so high rates may be unreachable).""")
    if top_keys:
        print("\n## probe top: one interval with 10,000 keys (--by file, -i 0.5)\n")
        print(report_top_keys(top_keys))
        print("""
- loadgen --open-fds 10000 holds 10,000 fds of /dev/null and writes a byte to
  each (idle: once; all changing: every 100 ms), so the table holds 10,000
  (pid, fd) rows. The CPU time is the monitor's own measure of each interval
  (CLOCK_THREAD_CPUTIME_ID around reading the table and showing the interval),
  as its stderr line gives it; the first interval (10,000 new rows) and the
  last (10,000 rows of the exited loadgen removed) are the most.""")
    if metrics:
        print("\n## probe top's metrics (--metrics-listen)\n")
        print(report_metrics(metrics))
        print("""
- Scrapes: probe top -q -i 1 with every process name its own series; the
  names of 1 and 112 short-lived processes (loadgen --short-procs --distinct)
  and whatever else ran on the machine; 20 GETs of /metrics from Python's
  http.client on 127.0.0.1, each a new connection.
- CPU: the monitor's user+system time over the load (loadgen writing at full
  speed, --calls x 4 writes), per second of it, with and without the
  listener and one scrape a second.""")
    print_skips(skips, args)
    if pid:
        print(f"\n## -p: the cost of following a process ({args.calls:,} writes per run)\n")
        print(report_pid(pid, args.calls))
        print("""
- Each probe filters in the kernel; loadgen waits for SIGUSR1 so that the probe
  starts with its pid, and a -p probe stops by itself at loadgen's exit (a run
  where it does not fails). -p checks the tgid, then reads the group leader's
  start time (two bpf_probe_read_kernel) for the calls whose tgid matched;
  without kernel BTF (PROBE_BTF=/nonexistent) it checks the tgid alone.
  vs -c: the difference of medians with the -c row of the same mode.""")
    return 1 if b.failed else 0


if __name__ == "__main__":
    sys.exit(main())
