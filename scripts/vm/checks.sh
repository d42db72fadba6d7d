#!/bin/sh
# Probe checks shared by the VM init (scripts/vm/init) and the host run of
# scripts/vmtest.  POSIX sh (busybox ash in the VM, dash/bash on the host).
#
# Prints one result line per check, prefixed with "VMTEST: ", diagnostics
# prefixed with "VMTEST-OUT: ", and finally "VMTEST: done ... result=PASS|FAIL".
# Exit status 0 if every check passed.
#
# Environment:
#   PROBE, LOADGEN          paths of the (static) binaries.  The loadgen
#                           file must NOT be named "loadgen": its comm would
#                           then be "loadgen" from execve on, and the Rust/glibc
#                           start-up code's read of /proc/self/maps (before
#                           main) would be counted.  loadgen sets its comm to
#                           "loadgen" itself with prctl just around its loop.
#   VMTEST_TMP              scratch directory (default /tmp)
#   VMTEST_METHODS          attach methods, default "kprobe kprobe-legacy tracepoint auto"
#   VMTEST_WRITES           1-byte writes done by loadgen (default 1000)
#   VMTEST_READS            1-byte reads done by loadgen (default 700)
#   VMTEST_AUTO_EXPECT      method --attach auto must pick (default kprobe)
#   VMTEST_SIGKILL          1: run the SIGKILL / stale kprobe_events check (default 1)
#   VMTEST_CHECK_NO_TRACEFS 1: fail if tracefs is mounted before the first run (default 0)
#   VMTEST_ATTACH_TIMEOUT   seconds to wait for "probe: attached" (default 30)
#   VMTEST_EXIT_TIMEOUT     seconds to wait for exit after SIGINT (default 60)

PROBE=${PROBE:-/probe}
LOADGEN=${LOADGEN:-/loadgen-exe}
VMTEST_TMP=${VMTEST_TMP:-/tmp}
VMTEST_METHODS=${VMTEST_METHODS:-kprobe kprobe-legacy tracepoint auto}
VMTEST_WRITES=${VMTEST_WRITES:-1000}
VMTEST_READS=${VMTEST_READS:-700}
VMTEST_AUTO_EXPECT=${VMTEST_AUTO_EXPECT:-kprobe}
VMTEST_SIGKILL=${VMTEST_SIGKILL:-1}
VMTEST_CHECK_NO_TRACEFS=${VMTEST_CHECK_NO_TRACEFS:-0}
ATTACH_TIMEOUT=${VMTEST_ATTACH_TIMEOUT:-30}
EXIT_TIMEOUT=${VMTEST_EXIT_TIMEOUT:-60}

TRACEFS=/sys/kernel/tracing
KEV=$TRACEFS/kprobe_events
KERNEL=$(uname -r)
ALL_OK=1

say() { echo "VMTEST: $*"; }
out() { sed 's/^/VMTEST-OUT: /' "$@"; }

# uptime in centiseconds
now_cs() {
    read -r _up _rest </proc/uptime
    _cs=$(echo "${_up%.*}${_up#*.}" | sed 's/^0*//')
    echo "${_cs:-0}"
}
# centiseconds -> "S.SS"
fmt_cs() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }

# alive PID: true while the process exists and is not a zombie
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    read -r _st <"/proc/$1/stat" 2>/dev/null || return 1
    case "$_st" in
    *") Z "*) return 1 ;;
    esac
    return 0
}

# wait_attached PID ERRFILE: poll ERRFILE for a line starting "probe: attached".
# Sets ATTACH_LINE and ATTACH_CS (centiseconds waited).
wait_attached() {
    _t0=$(now_cs)
    ATTACH_LINE=
    while :; do
        ATTACH_LINE=$(grep -m1 '^probe: attached' "$2" 2>/dev/null)
        ATTACH_CS=$(($(now_cs) - _t0))
        [ -n "$ATTACH_LINE" ] && return 0
        alive "$1" || return 1
        [ "$ATTACH_CS" -ge $((ATTACH_TIMEOUT * 100)) ] && return 1
        sleep 0.1
    done
}

# stop_probe PID SIGNAL: send SIGNAL and wait for the process (a watchdog
# SIGKILLs it after EXIT_TIMEOUT seconds).  Sets STOP_RC.
stop_probe() {
    kill "-$2" "$1" 2>/dev/null
    (
        _n=0
        while [ "$_n" -lt $((EXIT_TIMEOUT * 10)) ]; do
            alive "$1" || exit 0
            sleep 0.1
            _n=$((_n + 1))
        done
        echo "VMTEST-OUT: probe pid $1 still running ${EXIT_TIMEOUT}s after SIG$2, sending SIGKILL"
        kill -KILL "$1" 2>/dev/null
    ) &
    _wd=$!
    wait "$1"
    STOP_RC=$?
    wait "$_wd" 2>/dev/null
}

kprobe_events_empty() {
    [ ! -e "$KEV" ] && return 0
    [ -z "$(cat "$KEV")" ]
}

# dump_failure NAME STDERR-FILE [LOG-FILE]
dump_failure() {
    echo "VMTEST-OUT: ---- probe stderr ($1) ----"
    [ -f "$2" ] && out "$2"
    if [ -n "${3:-}" ] && [ -f "$3" ]; then
        echo "VMTEST-OUT: ---- first 10 lines of the log ($1, $(wc -l <"$3") lines) ----"
        head -n 10 "$3" | out
    fi
    if [ -e "$KEV" ]; then
        echo "VMTEST-OUT: ---- $KEV ----"
        out "$KEV"
    fi
    echo "VMTEST-OUT: ---- end ($1) ----"
}

run_method() {
    m=$1
    err=$VMTEST_TMP/$m.err
    log=$VMTEST_TMP/$m.log
    rm -f "$err" "$log"
    fail=
    received=? lost=? writes=? reads=? attach=- via=?
    t0=$(now_cs)
    say "start kernel=$KERNEL method=$m"

    "$PROBE" --attach "$m" -c loadgen -q --log "$log" >/dev/null 2>"$err" &
    pid=$!
    if wait_attached "$pid" "$err"; then
        attach=$(fmt_cs "$ATTACH_CS")
        via=$(echo "$ATTACH_LINE" | sed -n 's/^probe: attached via \([A-Za-z0-9_-]*\).*/\1/p')
        want_via=$m
        [ "$m" = auto ] && want_via=$VMTEST_AUTO_EXPECT
        [ "$via" = "$want_via" ] || fail="$fail attached-via:'$via'(want:$want_via)"
        timeout "$EXIT_TIMEOUT" "$LOADGEN" --writes "$VMTEST_WRITES" --reads "$VMTEST_READS" ||
            fail="$fail loadgen-exit-code:$?"
    else
        fail="$fail not-attached-after-$(fmt_cs "$ATTACH_CS")s"
    fi
    stop_probe "$pid" INT
    [ "$STOP_RC" -eq 0 ] || fail="$fail exit-code:$STOP_RC"

    last=$(tail -n 1 "$err")
    want="probe: received=$((VMTEST_WRITES + VMTEST_READS)) lost=0"
    case "$last" in
    "probe: received="*)
        received=$(echo "$last" | sed -n 's/.*received=\([0-9]*\).*/\1/p')
        lost=$(echo "$last" | sed -n 's/.*lost=\([0-9]*\).*/\1/p')
        ;;
    esac
    [ "$last" = "$want" ] || fail="$fail last-stderr-line:'$last'(want:'$want')"

    if [ -f "$log" ]; then
        writes=$(grep -v '^#' "$log" | grep -c ' syscall=write')
        reads=$(grep -v '^#' "$log" | grep -c ' syscall=read')
        [ "$writes" -eq "$VMTEST_WRITES" ] || fail="$fail log-writes:$writes(want:$VMTEST_WRITES)"
        [ "$reads" -eq "$VMTEST_READS" ] || fail="$fail log-reads:$reads(want:$VMTEST_READS)"
    else
        fail="$fail no-log-file"
    fi
    kprobe_events_empty || fail="$fail kprobe_events-not-empty-after-exit"

    result=PASS
    [ -n "$fail" ] && result=FAIL && ALL_OK=0
    say "kernel=$KERNEL method=$m result=$result via=$via received=$received lost=$lost log_writes=$writes log_reads=$reads attach_s=$attach total_s=$(fmt_cs $(($(now_cs) - t0)))${fail:+ reasons:$fail}"
    [ -n "$fail" ] && dump_failure "$m" "$err" "$log"
    rm -f "$log"
}

run_sigkill() {
    m=kprobe-legacy
    fail=
    err1=$VMTEST_TMP/sigkill1.err
    err2=$VMTEST_TMP/sigkill2.err
    t0=$(now_cs)
    say "start kernel=$KERNEL method=sigkill-recovery"

    "$PROBE" --attach "$m" -c loadgen -q --no-log >/dev/null 2>"$err1" &
    pid=$!
    if wait_attached "$pid" "$err1"; then
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null
        if [ -e "$KEV" ]; then
            say "note kernel=$KERNEL kprobe_events after SIGKILL (stale entries expected): '$(tr '\n' ';' <"$KEV")'"
        fi
    else
        fail="$fail first-run-not-attached-after-$(fmt_cs "$ATTACH_CS")s"
        stop_probe "$pid" KILL
    fi

    "$PROBE" --attach "$m" -c loadgen -q --no-log >/dev/null 2>"$err2" &
    pid=$!
    wait_attached "$pid" "$err2" || fail="$fail second-run-not-attached-after-$(fmt_cs "$ATTACH_CS")s"
    stop_probe "$pid" INT
    [ "$STOP_RC" -eq 0 ] || fail="$fail second-run-exit-code:$STOP_RC"
    last=$(tail -n 1 "$err2")
    case "$last" in
    "probe: received="*" lost="*) ;;
    *) fail="$fail second-run-last-stderr-line:'$last'" ;;
    esac
    kprobe_events_empty || fail="$fail kprobe_events-not-empty-after-second-run"

    result=PASS
    [ -n "$fail" ] && result=FAIL && ALL_OK=0
    say "kernel=$KERNEL method=sigkill-recovery result=$result total_s=$(fmt_cs $(($(now_cs) - t0)))${fail:+ reasons:$fail}"
    if [ -n "$fail" ]; then
        dump_failure sigkill-first-run "$err1"
        dump_failure sigkill-second-run "$err2"
    fi
}

# ---------------------------------------------------------------------------
if [ -e /sys/bus/event_source/devices/kprobe/type ]; then
    say "env kernel=$KERNEL kprobe_pmu=yes type=$(cat /sys/bus/event_source/devices/kprobe/type)"
else
    say "env kernel=$KERNEL kprobe_pmu=no"
fi
if grep -q " $TRACEFS " /proc/mounts; then
    if [ "$VMTEST_CHECK_NO_TRACEFS" = 1 ]; then
        say "kernel=$KERNEL method=tracefs-not-premounted result=FAIL reasons: $TRACEFS is mounted before the first run"
        ALL_OK=0
    else
        say "env kernel=$KERNEL tracefs_mounted_before_first_run=yes"
    fi
else
    say "env kernel=$KERNEL tracefs_mounted_before_first_run=no"
fi

t_checks=$(now_cs)
for m in $VMTEST_METHODS; do
    run_method "$m"
done
[ "$VMTEST_SIGKILL" = 1 ] && run_sigkill
if [ -e "$KEV" ]; then
    say "env kernel=$KERNEL kprobe_events_exists=yes (after runs)"
else
    say "env kernel=$KERNEL kprobe_events_exists=no (after runs)"
fi

overall=FAIL
[ "$ALL_OK" = 1 ] && overall=PASS
say "done kernel=$KERNEL result=$overall checks_s=$(fmt_cs $(($(now_cs) - t_checks)))"
[ "$ALL_OK" = 1 ]
