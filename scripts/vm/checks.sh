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
#   VMTEST_METHODS          attach methods, default "kprobe kprobe-legacy tracepoint raw-tracepoint auto"
#   VMTEST_WRITES           1-byte writes done by loadgen (default 1000)
#   VMTEST_READS            1-byte reads done by loadgen (default 700)
#   VMTEST_AUTO_EXPECT      method --attach auto must pick (default kprobe)
#   VMTEST_SIGKILL          1: run the SIGKILL / stale kprobe_events check (default 1)
#   VMTEST_NAMESPACES       1: run --cgroup, and legacy kprobes of monitors that
#                           are each pid 1 of a pid namespace (default 1)
#   VMTEST_EXIT             1: run --exit on each method: known results call
#                           for call, and (but for auto) more blocked
#                           readers than the return probes hold (default 1)
#   VMTEST_TOP              1: run `probe top` on each method: the family's
#                           known calls summed per syscall (default 1)
#   VMTEST_EXPLAIN          1: run `probe --explain --exit` on each method: every
#                           fd told opened is told closed, every mapping
#                           unmapped, every kprobe_events entry removed, and
#                           the method's own files told (default 1)
#   VMTEST_REUSE            1: run -p on each method (and probe top -p on the
#                           first) with its process's pid reused at once by
#                           an impostor that must never be reported (default 1)
#   VMTEST_EXIT_ROUNDS      times the --exit checks are repeated (default 1;
#                           more to soak the kernel's return probes)
#   VMTEST_CHECK_NO_TRACEFS 1: fail if tracefs is mounted before the first run (default 0)
#   VMTEST_ATTACH_TIMEOUT   seconds to wait for "probe: attached" (default 30)
#   VMTEST_EXIT_TIMEOUT     seconds to wait for exit after SIGINT (default 60)

PROBE=${PROBE:-/probe}
LOADGEN=${LOADGEN:-/loadgen-exe}
OBJRUN=${OBJRUN:-/objrun}
OBJECTS_DIR=${OBJECTS_DIR:-/objects}
VMTEST_TMP=${VMTEST_TMP:-/tmp}
VMTEST_METHODS=${VMTEST_METHODS:-kprobe kprobe-legacy tracepoint raw-tracepoint auto}
VMTEST_WRITES=${VMTEST_WRITES:-1000}
VMTEST_READS=${VMTEST_READS:-700}
VMTEST_AUTO_EXPECT=${VMTEST_AUTO_EXPECT:-kprobe}
VMTEST_SIGKILL=${VMTEST_SIGKILL:-1}
VMTEST_NAMESPACES=${VMTEST_NAMESPACES:-1}
VMTEST_EXIT=${VMTEST_EXIT:-1}
VMTEST_EXIT_ROUNDS=${VMTEST_EXIT_ROUNDS:-1}
VMTEST_TOP=${VMTEST_TOP:-1}
VMTEST_EXPLAIN=${VMTEST_EXPLAIN:-1}
VMTEST_REUSE=${VMTEST_REUSE:-1}
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

# want_rc STDERR-FILE: the exit status of a run that ended normally: 4
# when its summary line counts events lost, else 0.
want_rc() {
    _lost=$(sed -n 's/^probe: received=[0-9]* lost=\([0-9]*\)$/\1/p' "$1" | tail -n 1)
    if [ "${_lost:-0}" -gt 0 ]; then echo 4; else echo 0; fi
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
    [ "$STOP_RC" -eq "$(want_rc "$err")" ] || fail="$fail exit-code:$STOP_RC"

    # Every call received, none lost; or, when the probe says the kernel's
    # recursion protection skipped calls (7.2 preempts raw tracepoint
    # programs; counted before the filters, so perhaps other processes'
    # calls, or other system calls), every call received or among those
    # counted.
    n=$((VMTEST_WRITES + VMTEST_READS))
    last_counts "$err"
    accounted "$received" "$lost" "$n" "$err" ||
        fail="$fail last-stderr-line:'$last'(want:'probe: received=$n lost=0')"
    [ "$lost" = "$(explained_lost "$err")" ] || fail="$fail unexplained-loss"

    if [ -f "$log" ]; then
        writes=$(grep -v '^#' "$log" | grep -c ' syscall=write')
        reads=$(grep -v '^#' "$log" | grep -c ' syscall=read')
        [ $((writes + reads)) = "${received:-x}" ] || fail="$fail log-lines:$((writes + reads))(want:$received)"
        if [ "${received:-x}" = "$n" ]; then
            [ "$writes" -eq "$VMTEST_WRITES" ] || fail="$fail log-writes:$writes(want:$VMTEST_WRITES)"
            [ "$reads" -eq "$VMTEST_READS" ] || fail="$fail log-reads:$reads(want:$VMTEST_READS)"
        fi
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

# run_sigkill [--exit]: a legacy monitor killed with SIGKILL leaves its
# kprobe_events entries (with --exit, its return probes' too); the next run
# removes them and leaves none of its own.
run_sigkill() {
    m=kprobe-legacy
    mode=${1:-}
    name=sigkill-recovery${mode:+-exit}
    fail=
    err1=$VMTEST_TMP/sigkill1.err
    err2=$VMTEST_TMP/sigkill2.err
    t0=$(now_cs)
    say "start kernel=$KERNEL method=$name"

    "$PROBE" $mode --attach "$m" -c loadgen -q --no-log >/dev/null 2>"$err1" &
    pid=$!
    if wait_attached "$pid" "$err1"; then
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null
        if [ -e "$KEV" ]; then
            say "note kernel=$KERNEL kprobe_events after SIGKILL (stale entries expected): '$(tr '\n' ';' <"$KEV")'"
            want_left=2
            [ -n "$mode" ] && want_left=4
            [ "$(grep -c . "$KEV")" = "$want_left" ] || fail="$fail left-after-kill:$(grep -c . "$KEV")(want:$want_left)"
        fi
    else
        fail="$fail first-run-not-attached-after-$(fmt_cs "$ATTACH_CS")s"
        stop_probe "$pid" KILL
    fi

    "$PROBE" --attach "$m" -c loadgen -q --no-log >/dev/null 2>"$err2" &
    pid=$!
    wait_attached "$pid" "$err2" || fail="$fail second-run-not-attached-after-$(fmt_cs "$ATTACH_CS")s"
    stop_probe "$pid" INT
    [ "$STOP_RC" -eq "$(want_rc "$err2")" ] || fail="$fail second-run-exit-code:$STOP_RC"
    last=$(tail -n 1 "$err2")
    case "$last" in
    "probe: received="*" lost="*) ;;
    *) fail="$fail second-run-last-stderr-line:'$last'" ;;
    esac
    kprobe_events_empty || fail="$fail kprobe_events-not-empty-after-second-run"

    result=PASS
    [ -n "$fail" ] && result=FAIL && ALL_OK=0
    say "kernel=$KERNEL method=$name result=$result total_s=$(fmt_cs $(($(now_cs) - t0)))${fail:+ reasons:$fail}"
    if [ -n "$fail" ]; then
        dump_failure sigkill-first-run "$err1"
        dump_failure sigkill-second-run "$err2"
    fi
}

# run_explain METHOD: `probe --explain --exit` narrates set-up and
# teardown whole, whatever the method: each fd it tells opened (`= N<what>`)
# it tells closed, each mmap it tells unmapped, each kprobe_events entry it
# tells added removed; the kprobe PMU's type (kprobe) and the permission
# open of kprobe_events (kprobe-legacy) are told.
run_explain() {
    m=$1
    err=$VMTEST_TMP/explain-$m.err
    fail=
    t0=$(now_cs)
    "$PROBE" --explain --exit --attach "$m" -c nothing -q --no-log -d 0.3 >/dev/null 2>"$err" ||
        fail="$fail exit-code:$?"
    [ "$(tail -n 1 "$err")" = "probe: received=0 lost=0" ] || fail="$fail last-line"
    told=$VMTEST_TMP/explain-$m.told
    sed -n 's/^probe: \[sys\] //p' "$err" >"$told"
    opened=$(sed -n 's/.* = \([0-9][0-9]*<[^>]*>\)$/\1/p' "$told" | sort | tr '\n' ' ')
    closed=$(sed -n 's/^close(\([0-9][0-9]*<[^>]*>\)) = 0$/\1/p' "$told" | sort | tr '\n' ' ')
    [ -n "$opened" ] && [ "$opened" = "$closed" ] || fail="$fail fds-opened:'$opened'closed:'$closed'"
    [ "$(grep -c '^mmap(' "$told")" = "$(grep -c '^munmap(' "$told")" ] || fail="$fail mmaps"
    grep -q '^mmap(' "$told" || fail="$fail no-mmap"
    added=$(sed -n 's/^write([^,]*kprobe_events, "[pr][0-9]*:\([^ ]*\) .*/\1/p' "$told" | sort | tr '\n' ' ')
    removed=$(sed -n 's/^write([^,]*kprobe_events, "-:\([^\\]*\)\\n") = .*/\1/p' "$told" | sort | tr '\n' ' ')
    [ "$added" = "$removed" ] || fail="$fail kprobes-added:'$added'removed:'$removed'"
    case $m in
    kprobe) grep -q '^read(/sys/bus/event_source/devices/kprobe/type) = "[0-9]*"$' "$told" ||
        fail="$fail no-pmu-type-read" ;;
    kprobe-legacy)
        grep -q '^open(.*kprobe_events, O_WRONLY|O_APPEND|O_CLOEXEC) = [0-9]' "$told" ||
            fail="$fail no-kprobe_events-open"
        [ -n "$added" ] || fail="$fail no-kprobe-added" ;;
    esac
    finish "explain-$m" "$t0"
    [ -n "$fail" ] && out "$err"
    rm -f "$err" "$told"
}

# finish NAME T0: print the result line of a check from $fail.
finish() {
    result=PASS
    [ -n "$fail" ] && result=FAIL && ALL_OK=0
    say "kernel=$KERNEL method=$1 result=$result total_s=$(fmt_cs $(($(now_cs) - $2)))${fail:+ reasons:$fail}"
}

# count_log LOG TGID: event lines in LOG, how many are from TGID, and how
# many are not.
count_log() {
    LOG_LINES=$(grep -vc '^#' "$1")
    LOG_FROM=$(grep -v '^#' "$1" | grep -c " tgid=$2 ")
    LOG_OTHERS=$((LOG_LINES - LOG_FROM))
}

# The cgroup v2 mount, mounting one if there is none.
cgroup2_root() {
    _cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    if [ -z "$_cg" ]; then
        _cg=/sys/fs/cgroup
        mount -t cgroup2 none "$_cg" 2>/dev/null || return 1
    fi
    echo "$_cg"
}

# --cgroup: a load in a child cgroup of the one named is reported, exactly;
# the same load outside it is not.
run_cgroup() {
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=cgroup"
    cg=$(cgroup2_root) || { fail=" no-cgroup2"; finish cgroup "$t0"; return; }
    top=$cg/probe-vmtest
    mkdir -p "$top/inner"
    err=$VMTEST_TMP/cg.err
    log=$VMTEST_TMP/cg.log
    rm -f "$err" "$log"
    "$PROBE" --attach tracepoint -c cgload -q --log "$log" --cgroup "$top" 2>"$err" &
    pid=$!
    if wait_attached "$pid" "$err"; then
        sh -c "echo \$\$ > $top/inner/cgroup.procs && exec $LOADGEN --comm cgload --writes 300 --reads 200" &
        inner=$!
        wait "$inner" || fail="$fail inner-loadgen"
        "$LOADGEN" --comm cgload --writes 111 --reads 0 || fail="$fail outer-loadgen"
    else
        fail="$fail not-attached"
    fi
    stop_probe "$pid" INT
    [ "$STOP_RC" -eq "$(want_rc "$err")" ] || fail="$fail exit-code:$STOP_RC"
    last=$(tail -n 1 "$err")
    [ "$last" = "probe: received=500 lost=0" ] || fail="$fail last-line:'$last'(want:received=500)"
    count_log "$log" "$inner"
    [ "$LOG_LINES" = 500 ] && [ "$LOG_OTHERS" = 0 ] || fail="$fail log:$LOG_LINES-lines,$LOG_OTHERS-from-others"
    rmdir "$top/inner" "$top" 2>/dev/null
    finish cgroup "$t0"
    [ -n "$fail" ] && dump_failure cgroup "$err" "$log"
}

# start_ns NAME COMM: a kprobe-legacy probe as pid 1 of a new pid namespace.
# Sets NS_PID (the probe, as the host sees it) and NS_WRAP (unshare).
start_ns() {
    unshare -p -f --mount-proc "$PROBE" --attach kprobe-legacy -c "$2" -q \
        --log "$VMTEST_TMP/$1.log" 2>"$VMTEST_TMP/$1.err" &
    NS_WRAP=$!
    wait_attached "$NS_WRAP" "$VMTEST_TMP/$1.err" || return 1
    NS_PID=$(cat "/proc/$NS_WRAP/task/$NS_WRAP/children" 2>/dev/null | cut -d' ' -f1)
    [ -n "$NS_PID" ] || NS_PID=$(pgrep -P "$NS_WRAP")
    [ -n "$NS_PID" ]
}

# entries_of TGID: kprobe_events lines of the monitor whose kernel tgid is TGID.
entries_of() { grep -c "^p:probe_rs/[A-Za-z0-9_]*_$1 " "$KEV"; }

# Two monitors that are each pid 1 of a pid namespace, on legacy kprobes:
# their entries do not collide, each keeps exact counts, each removes only
# its own; one killed with SIGKILL is cleaned up by the next run, which
# leaves the live one's alone (the kernel says EBUSY for those).
run_pidns_legacy() {
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=pidns-kprobe-legacy"
    start_ns nsa nsa || fail="$fail a-not-attached"
    a=$NS_PID a_wrap=$NS_WRAP
    start_ns nsb nsb || fail="$fail b-not-attached"
    b=$NS_PID b_wrap=$NS_WRAP
    [ "$(entries_of "$a")" = 2 ] && [ "$(entries_of "$b")" = 2 ] ||
        fail="$fail entries:'$(tr '\n' ';' <"$KEV")'"
    "$LOADGEN" --comm nsa --writes 120 --reads 30
    "$LOADGEN" --comm nsb --writes 70 --reads 0
    stop_probe "$a" INT
    wait "$a_wrap" 2>/dev/null
    [ "$(tail -n 1 "$VMTEST_TMP/nsa.err")" = "probe: received=150 lost=0" ] ||
        fail="$fail a:'$(tail -n 1 "$VMTEST_TMP/nsa.err")'"
    [ "$(grep -c . "$KEV")" = 2 ] && [ "$(entries_of "$b")" = 2 ] ||
        fail="$fail after-a-stopped:'$(tr '\n' ';' <"$KEV")'"

    # A third, killed: its entries stay until the next run removes them.
    start_ns nsc nsc || fail="$fail c-not-attached"
    c=$NS_PID c_wrap=$NS_WRAP
    kill -KILL "$c"
    wait "$c_wrap" 2>/dev/null
    [ "$(entries_of "$c")" = 2 ] || fail="$fail c-entries-not-left"
    start_ns nsd nsd || fail="$fail d-not-attached"
    d=$NS_PID d_wrap=$NS_WRAP
    [ "$(entries_of "$c")" = 0 ] || fail="$fail stale-c-not-removed"
    [ "$(entries_of "$b")" = 2 ] || fail="$fail live-b-removed"
    grep -q "removed stale kprobe probe_rs/.*_$c\$" "$VMTEST_TMP/nsd.err" || fail="$fail d-did-not-say"
    "$LOADGEN" --comm nsb --writes 5 --reads 0
    "$LOADGEN" --comm nsd --writes 44 --reads 0
    stop_probe "$b" INT
    wait "$b_wrap" 2>/dev/null
    stop_probe "$d" INT
    wait "$d_wrap" 2>/dev/null
    [ "$(tail -n 1 "$VMTEST_TMP/nsb.err")" = "probe: received=75 lost=0" ] ||
        fail="$fail b:'$(tail -n 1 "$VMTEST_TMP/nsb.err")'"
    [ "$(tail -n 1 "$VMTEST_TMP/nsd.err")" = "probe: received=44 lost=0" ] ||
        fail="$fail d:'$(tail -n 1 "$VMTEST_TMP/nsd.err")'"
    # Each log has its received lines, none of them from its monitor.
    for n in nsa:$a:150 nsb:$b:75 nsd:$d:44; do
        set -- $(echo "$n" | tr ':' ' ')
        count_log "$VMTEST_TMP/$1.log" "$2"
        [ "$LOG_LINES" = "$3" ] && [ "$LOG_FROM" = 0 ] ||
            fail="$fail $1-log:$LOG_LINES-lines,$LOG_FROM-from-the-monitor"
    done
    kprobe_events_empty || fail="$fail kprobe_events-not-empty"
    finish pidns-kprobe-legacy "$t0"
    if [ -n "$fail" ]; then
        for n in nsa nsb nsc nsd; do dump_failure "$n" "$VMTEST_TMP/$n.err"; done
    fi
}

# explained_lost ERRFILE: the sum of N over the probe's "lost N events:"
# lines (`probe top`'s say "lost N calls:"), each of which names its cause.
explained_lost() {
    sed -En 's/^probe: lost ([0-9]+) (events|calls):.*/\1/p' "$1" | awk '{ n += $1 } END { print n + 0 }'
}

# check_via METHOD: the method ATTACH_LINE names is METHOD's (auto's:
# VMTEST_AUTO_EXPECT); else a reason in $fail.
check_via() {
    _via=$(echo "$ATTACH_LINE" | sed -n 's/^probe: attached via \([A-Za-z0-9_-]*\).*/\1/p')
    _want=$1
    [ "$1" = auto ] && _want=$VMTEST_AUTO_EXPECT
    [ "$_via" = "$_want" ] || fail="$fail attached-via:'$_via'(want:$_want)"
}

# last_counts ERRFILE: sets last (its last line), and received and lost
# from it (empty unless it is exactly `probe: received=N lost=M`).
last_counts() {
    last=$(tail -n 1 "$1")
    received=$(echo "$last" | sed -n 's/^probe: received=\([0-9]*\) lost=[0-9]*$/\1/p')
    lost=$(echo "$last" | sed -n 's/^probe: received=[0-9]* lost=\([0-9]*\)$/\1/p')
}

# accounted RECEIVED LOST N ERRFILE: every one of the N calls made was
# received or lost. The kernel's recursion protection skips a program
# before its filters run, so the calls it skipped may be any process's:
# when the probe says so, N lies between RECEIVED and RECEIVED + LOST.
accounted() {
    [ -n "$1" ] || return 1
    [ $(($1 + $2)) = "$3" ] && return 0
    skips_said "$4" && [ "$1" -le "$3" ] && [ $(($1 + $2)) -ge "$3" ]
}

# skips_said ERRFILE: the probe said the kernel's recursion protection
# skipped some of its runs (a task preempted inside a bpf(2) map
# operation on that CPU, or on 7.2 a preempted run of its own raw
# tracepoint program): the one case where a check may see fewer calls than
# were made, as long as the loss is counted.
skips_said() {
    grep -q 'its recursion protection' "$1"
}

# field KEY < LOG: KEY's value on each event line ("-" where absent).
field() {
    grep -v '^#' | awk -v k="$1" '{ v = "-"; for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2); print v }'
}

# --exit on METHOD with loadgen's calls of known results (reads of a file,
# EOF, EBADF, EAGAIN, a read blocked ~50 ms, three threads): every call in
# the log once, with its tid, fd, count and ret exactly as loadgen saw them.
run_exit() {
    m=$1
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=exit-$m"
    err=$VMTEST_TMP/exit-$m.err
    log=$VMTEST_TMP/exit-$m.log
    truth=$VMTEST_TMP/exit-$m.truth
    rm -f "$err" "$log" "$truth"
    "$PROBE" --exit --attach "$m" -c exload -q --log "$log" 2>"$err" &
    pid=$!
    if wait_attached "$pid" "$err"; then
        check_via "$m"
        "$LOADGEN" --comm exload --returns "$VMTEST_TMP" >"$truth" || fail="$fail loadgen"
    else
        fail="$fail not-attached"
    fi
    stop_probe "$pid" INT
    [ "$STOP_RC" -eq "$(want_rc "$err")" ] || fail="$fail exit-code:$STOP_RC"
    n=$(grep -vc '^blocked_read_ns' "$truth")
    last_counts "$err"
    # Every call received or lost; a loss only with its cause said (the
    # kernel's recursion protection can skip a call on any kernel: counted).
    accounted "$received" "$lost" "$n" "$err" ||
        fail="$fail last:'$last'(want:received+lost=$n)"
    [ "$lost" = "$(explained_lost "$err")" ] || fail="$fail unexplained-loss"
    # "TID read|write FD COUNT RET", errno names back to numbers.
    field pid <"$log" >"$log.1"
    field syscall <"$log" >"$log.2"
    field fd <"$log" >"$log.3"
    field count <"$log" >"$log.4"
    field ret <"$log" | sed 's/^EBADF$/-9/; s/^EAGAIN$/-11/' >"$log.5"
    paste -d' ' "$log.1" "$log.2" "$log.3" "$log.4" "$log.5" | sort >"$log.calls"
    grep -v '^blocked_read_ns' "$truth" | sort >"$truth.calls"
    # Call for call: none in the log that loadgen did not make, and as
    # many of loadgen's missing as were counted lost (at most as many when
    # the kernel's recursion protection skipped calls: those are counted
    # before the filters, so some may be other processes'; 7.2 under TCG
    # preempts raw tracepoint programs often enough to skip many).
    diff -U0 "$truth.calls" "$log.calls" >"$log.diff"
    extra=$(grep -c '^+[0-9]' "$log.diff")
    missing=$(grep -c '^-[0-9]' "$log.diff")
    missing_ok=0
    [ "$missing" = "${lost:-x}" ] && missing_ok=1
    skips_said "$err" && [ "$missing" -le "${lost:-0}" ] && missing_ok=1
    if [ "$extra" != 0 ] || [ "$missing_ok" != 1 ]; then
        fail="$fail calls-differ:$extra-extra,$missing-missing"
        head -n 20 "$log.diff" | out
    fi
    # The read that waited for the writer's 50 ms sleep: at least 40 ms
    # (TCG's clocks are loose), and no more than loadgen measured around it.
    lat=$(grep ' syscall=read ' "$log" | grep ' count=16 ' | field lat_ns)
    user=$(sed -n 's/^blocked_read_ns //p' "$truth")
    if [ -n "$lat" ]; then
        [ "$lat" -ge 40000000 ] && [ "$lat" -le "$user" ] ||
            fail="$fail blocked-read-lat:$lat(user:$user)"
    elif [ "${lost:-0}" = 0 ]; then
        fail="$fail no-blocked-read"
    fi
    kprobe_events_empty || fail="$fail kprobe_events-not-empty"
    finish "exit-$m" "$t0"
    say "note kernel=$KERNEL method=exit-$m calls=$n blocked_read_lat_ns=$lat user_ns=$user"
    [ -n "$fail" ] && dump_failure "exit-$m" "$err" "$log"
    rm -f "$log".*
}

# --exit on METHOD with 16 readers blocked at once, more than a return
# probe holds (the PMU's default maxactive is at most max(10, 2 x CPUs);
# legacy ones get --maxactive 4): every call is reported, with ret=1, or
# lost as a missed return, said so; none on tracepoints.
run_exit_missed() {
    m=$1
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=exit-missed-$m"
    err=$VMTEST_TMP/exitm-$m.err
    log=$VMTEST_TMP/exitm-$m.log
    truth=$VMTEST_TMP/exitm-$m.truth
    rm -f "$err" "$log" "$truth"
    max=
    [ "$m" = kprobe-legacy ] && max="--maxactive 4"
    "$PROBE" --exit --attach "$m" $max -c exmany -q --log "$log" 2>"$err" &
    pid=$!
    if wait_attached "$pid" "$err"; then
        "$LOADGEN" --comm exmany --blocked-readers 16 --release-after 1500 >"$truth" ||
            fail="$fail loadgen"
    else
        fail="$fail not-attached"
    fi
    stop_probe "$pid" INT
    [ "$STOP_RC" -eq "$(want_rc "$err")" ] || fail="$fail exit-code:$STOP_RC"
    n=$(grep -vc '^blocked_read_ns' "$truth")
    [ "$n" = 48 ] || fail="$fail loadgen-calls:$n"
    last_counts "$err"
    missed=$(sed -n 's/^probe: lost \([0-9]*\) events: their returns were never seen.*/\1/p' "$err")
    missed=${missed:-0}
    accounted "$received" "$lost" "$n" "$err" ||
        fail="$fail received+lost:'$last'(want:$n)"
    [ "$lost" = "$(explained_lost "$err")" ] || fail="$fail unexplained-loss"
    # The limit the probe says its return probes had (derived for the PMU:
    # the kernel's default): at least 16 - N returns were missed.
    limit=$(sed -n 's/.*each return probe follows at most \([0-9]*\) calls at once.*/\1/p' "$err")
    case $m in
    tracepoint | raw-tracepoint)
        # No maxactive there: a return is missed only when the kernel's
        # recursion protection skipped the exit program, and then said
        # (7.2 preempts syscall tracepoint programs, under TCG often).
        [ "$missed" = 0 ] || grep -q 'skipped the exit hook (its recursion protection' "$err" ||
            fail="$fail tracepoint-missed:$missed"
        ;;
    *)
        [ "$missed" -gt 0 ] || fail="$fail nothing-missed-with-16-in-flight"
        [ -n "$limit" ] && [ "$missed" -ge $((16 - limit)) ] ||
            fail="$fail missed:$missed-but-maxactive:'$limit'"
        ;;
    esac
    lines=$(grep -vc '^#' "$log")
    [ "$lines" = "$received" ] || fail="$fail log-lines:$lines"
    others=$(field ret <"$log" | grep -vc '^1$')
    [ "$others" = 0 ] || fail="$fail rets-not-1:$others"
    kprobe_events_empty || fail="$fail kprobe_events-not-empty"
    finish "exit-missed-$m" "$t0"
    say "note kernel=$KERNEL method=exit-missed-$m received=$received missed=$missed maxactive=${limit:--}"
    [ -n "$fail" ] && dump_failure "exit-missed-$m" "$err" "$log"
    rm -f "$log"
}

# `probe top` on METHOD: loadgen --family makes known calls of every
# syscall of the family; the JSON rows of every interval, summed per
# syscall, must give exactly its calls, bytes moved, bytes asked for and
# errors (a loss only with its cause said, and then every count at most
# loadgen's).
run_top() {
    m=$1
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=top-$m"
    err=$VMTEST_TMP/top-$m.err
    json=$VMTEST_TMP/top-$m.json
    truth=$VMTEST_TMP/top-$m.truth
    rm -rf "$err" "$json" "$truth" "$VMTEST_TMP/fam"
    mkdir -p "$VMTEST_TMP/fam"
    "$PROBE" top --attach "$m" --syscalls all --json -i 0.5 -c famload >"$json" 2>"$err" &
    pid=$!
    if wait_attached "$pid" "$err"; then
        check_via "$m"
        "$LOADGEN" --comm famload --family "$VMTEST_TMP/fam" >"$truth" || fail="$fail loadgen"
        sleep 0.6
    else
        fail="$fail not-attached"
    fi
    stop_probe "$pid" INT
    [ "$STOP_RC" -eq 0 ] || fail="$fail exit-code:$STOP_RC"
    n=$(wc -l <"$truth")
    last_counts "$err"
    accounted "$received" "$lost" "$n" "$err" ||
        fail="$fail last:'$last'(want:received+lost=$n)"
    [ "$lost" = "$(explained_lost "$err")" ] || fail="$fail unexplained-loss"
    # "SYSCALL calls bytes requested errors", from loadgen's lines and from
    # the JSON rows.
    awk '{ c[$2]++; q[$2] += $4; if ($5 < 0) e[$2]++; else b[$2] += $5 }
         END { for (s in c) print s, c[s], b[s] + 0, q[s], e[s] + 0 }' "$truth" | sort >"$truth.sum"
    # (An interval's object of losses, "lost":{...}, is no row.)
    grep -v '"lost":' "$json" | sed 's/"errno":{[^}]*}//; s/[{}]//g' | awk -F, '
        { s = ""; for (i = 1; i <= NF; i++) { split($i, kv, ":"); k = kv[1]; gsub(/"/, "", k)
              v = kv[2]; gsub(/"/, "", v); f[k] = v }
          s = f["syscall"]; c[s] += f["calls"]; b[s] += f["bytes"]; q[s] += f["bytes_requested"]
          e[s] += f["errors"] }
        END { for (s in c) print s, c[s], b[s], q[s], e[s] }' | sort >"$json.sum"
    if [ "${lost:-x}" = 0 ]; then
        cmp -s "$truth.sum" "$json.sum" || {
            fail="$fail sums-differ"
            diff "$truth.sum" "$json.sum" | out
        }
    else
        [ "$(wc -l <"$json.sum")" -le "$(wc -l <"$truth.sum")" ] || fail="$fail extra-syscalls"
    fi
    kprobe_events_empty || fail="$fail kprobe_events-not-empty"
    finish "top-$m" "$t0"
    say "note kernel=$KERNEL method=top-$m calls=$n syscalls=$(wc -l <"$json.sum") intervals=$(sed -n 's/^probe: top: \([0-9]*\) intervals.*/\1/p' "$err")"
    [ -n "$fail" ] && dump_failure "top-$m" "$err" "$json"
    rm -rf "$json" "$json.sum" "$truth" "$truth.sum" "$VMTEST_TMP/fam"
}

# wait_exit PID: wait for PID to exit by itself (at most EXIT_TIMEOUT s;
# then SIGINT, and EXITED=0). Sets STOP_RC.
wait_exit() {
    EXITED=1
    _n=0
    while alive "$1" && [ "$_n" -lt $((EXIT_TIMEOUT * 10)) ]; do
        sleep 0.1
        _n=$((_n + 1))
    done
    alive "$1" && EXITED=0
    stop_probe "$1" INT
}

# -p follows a process, not a number: loadgen --reuse-pid makes a target
# that writes 5 known lines (known000 ... known004) once told, and as soon
# as it exited another process with its very pid (clone3 with set_tid),
# `impostor`, which writes secret!! for 300 ms. The probe (-p TARGET -v;
# with "top": probe top -p TARGET --json) must report exactly the
# target's 5 writes and nothing of the impostor, say the target exited,
# and stop by itself with exit code 0.
run_reuse() {
    m=$1
    top=${2:-}
    name=reuse${top:+-top}-$m
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=$name"
    err=$VMTEST_TMP/$name.err
    out=$VMTEST_TMP/$name.out
    lab=$VMTEST_TMP/$name.lab
    rm -f "$err" "$out" "$lab" "$out.want"
    "$LOADGEN" --comm reuseme --reuse-pid 5 >"$lab" &
    labpid=$!
    _n=0
    while ! grep -q '^target=' "$lab" && [ "$_n" -lt 100 ]; do
        sleep 0.1
        _n=$((_n + 1))
    done
    target=$(sed -n 's/^target=\([0-9]*\) fd=.*/\1/p' "$lab")
    fd=$(sed -n 's/^target=[0-9]* fd=\([0-9]*\)$/\1/p' "$lab")
    if [ -n "$top" ]; then
        "$PROBE" top --attach "$m" --json -i 0.2 -p "$target" >"$out" 2>"$err" &
    else
        "$PROBE" --attach "$m" -v -p "$target" --no-log >"$out" 2>"$err" &
    fi
    pid=$!
    if wait_attached "$pid" "$err"; then
        check_via "$m"
        kill -USR1 "$target"
        wait "$labpid" || fail="$fail lab:'$(tr '\n' ' ' <"$lab")'"
        grep -qx "impostor=$target writes=300" "$lab" || fail="$fail no-impostor-with-the-pid"
    else
        fail="$fail not-attached"
        kill -USR1 "$target"
        wait "$labpid"
    fi
    wait_exit "$pid"
    [ "$EXITED" = 1 ] || fail="$fail did-not-stop-at-the-exit"
    [ "$STOP_RC" -eq 0 ] || fail="$fail exit-code:$STOP_RC"
    grep -qx "probe: process $target (reuseme) exited: stopping" "$err" || fail="$fail exit-not-said"
    last_counts "$err"
    accounted "$received" "$lost" 5 "$err" || fail="$fail last:'$last'(want:received+lost=5)"
    [ "$lost" = "$(explained_lost "$err")" ] || fail="$fail unexplained-loss"
    grep -q -e impostor -e secret "$out" && fail="$fail impostor-reported"
    if [ -n "$top" ]; then
        calls=$(sed -n 's/.*"pid":'"$target"',"comm":"reuseme","syscall":"write","calls":\([0-9]*\),.*/\1/p' "$out" |
            awk '{ n += $1 } END { print n + 0 }')
        rows=$(grep -c . "$out")
        others=$(grep -vc '"pid":'"$target"',"comm":"reuseme","syscall":"write"' "$out")
        [ "$calls" = "${received:-x}" ] && [ "$others" = 0 ] ||
            fail="$fail top-rows:$rows,calls=$calls,others=$others"
    else
        i=0
        while [ "$i" -lt 5 ]; do
            echo "hello sys_write was called pid=$target tgid=$target comm=reuseme fd=$fd count=8 data=known00$i"
            i=$((i + 1))
        done >"$out.want"
        if [ "${received:-x}" = 5 ]; then
            cmp -s "$out.want" "$out" || fail="$fail lines-differ"
        else
            # A loss (counted and said): the lines there are, all the target's.
            [ "$(grep -c . "$out")" = "${received:-x}" ] && [ "$(grep -cvxF -f "$out.want" "$out")" = 0 ] ||
                fail="$fail lines-differ"
        fi
    fi
    kprobe_events_empty || fail="$fail kprobe_events-not-empty"
    finish "$name" "$t0"
    [ -n "$fail" ] && dump_failure "$name" "$err" "$out"
    rm -f "$out" "$out.want" "$lab"
}

# The raw tracepoints see 32-bit calls too, numbered from the ia32 table:
# loadgen --ia32 makes 12 per round (int $0x80) numbered like the
# family's calls on x86-64, then 5 writes and 3 reads of its own; the
# probe (--exit, the whole family) must report exactly those 8, with
# thread_info.status where the kernel version says, and where the
# kernel's BTF says (PROBE_BTF).
run_ia32() {
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=ia32-raw-tracepoint"
    for btf in "" /sys/kernel/btf/vmlinux; do
        err=$VMTEST_TMP/ia32${btf:+-btf}.err
        rm -f "$err"
        env ${btf:+PROBE_BTF=$btf} "$PROBE" --exit --attach raw-tracepoint --syscalls all -c ia32load --no-log -q 2>"$err" &
        pid=$!
        if wait_attached "$pid" "$err"; then
            "$LOADGEN" --comm ia32load --ia32 50 >/dev/null || fail="$fail loadgen-ia32"
            "$LOADGEN" --comm ia32load --writes 5 --reads 3 || fail="$fail loadgen"
        else
            fail="$fail not-attached"
        fi
        stop_probe "$pid" INT
        [ "$STOP_RC" -eq "$(want_rc "$err")" ] || fail="$fail exit-code:$STOP_RC"
        last_counts "$err"
        # All 8 received; a loss only where the probe says the kernel's
        # recursion protection skipped calls (7.2 runs syscall
        # tracepoint programs preemptibly: a preempted raw_enter makes
        # the next one on that CPU skip, whoever's call it is).
        [ "$received" = 8 ] && accounted "$received" "$lost" 8 "$err" &&
            [ "$lost" = "$(explained_lost "$err")" ] ||
            fail="$fail btf=$btf:'$last'(want:received=8 lost=0)"
        [ -n "$fail" ] && dump_failure "ia32-raw-tracepoint" "$err" /dev/null
        rm -f "$err"
    done
    finish "ia32-raw-tracepoint" "$t0"
}

# load_rewritten NAME KINDS: `probe load` of NAME.o loads it whole with its
# BTF; on 5.10 saying "this kernel does not know KINDS: rewritten", on later
# kernels rewriting nothing. Adds to $fail; uses $outf.
load_rewritten() {
    if "$PROBE" load "$OBJECTS_DIR/$1.o" >"$outf" 2>&1; then
        grep -q "BTF not loaded" "$outf" && fail="$fail $1:no-btf"
        case $KERNEL in
        5.10.*)
            grep -q "^BTF: this kernel does not know $2: rewritten" "$outf" ||
                fail="$fail $1:not-rewritten"
            ;;
        *) grep -q "^BTF:" "$outf" && fail="$fail $1:rewritten-needlessly" ;;
        esac
    else
        fail="$fail $1:'$(grep -v accepted "$outf" | head -n 1)'"
    fi
    case $fail in *" $1:"*) out "$outf" ;; esac
}

# Objects written the libbpf 1.x way (BTF-defined maps, global data), run
# through our loader by objrun: exact values after a known number of
# calls; and `probe load` takes the others whole, BTF included.
run_objects() {
    fail=
    t0=$(now_cs)
    say "start kernel=$KERNEL method=objects"
    outf=$VMTEST_TMP/objects.out
    if "$OBJRUN" "$OBJECTS_DIR/globals_count.o" --set target_tgid=self --attach tracepoint \
        --getppid 1000 >"$outf" 2>&1; then
        for want in "global calls=1000" "global since_seven=1007" "map per_tgid entries=1 self=1000"; do
            grep -qx "$want" "$outf" || fail="$fail globals:missing:'$want'"
        done
        # BTF loads on every kernel of the matrix: nothing to say.
        grep -q "^note " "$outf" && fail="$fail globals:note:'$(grep "^note " "$outf" | head -n 1)'"
    else
        fail="$fail globals:exit:'$(tail -n 1 "$outf")'"
    fi
    [ -n "$fail" ] && out "$outf"
    for name in btf_maps rodata_config printk; do
        if "$PROBE" load "$OBJECTS_DIR/$name.o" >"$outf" 2>&1; then
            grep -q "BTF not loaded" "$outf" && fail="$fail $name:no-btf"
        else
            fail="$fail $name:'$(grep -v accepted "$outf" | head -n 1)'"
            out "$outf"
        fi
    done
    # CO-RE against this kernel's BTF: the fields read where this kernel
    # has them (objrun's parent is this shell), __state only since 5.14.
    "$OBJRUN" "$OBJECTS_DIR/core_fields.o" --set target_tgid=self --set comm0=111 \
        --attach tracepoint --getppid 3 >"$outf" 2>&1 &
    objrun_pid=$!
    if wait "$objrun_pid"; then
        case $KERNEL in
        5.10.*) new=0 old=1 ;;
        *) new=1 old=0 ;;
        esac
        for want in "global seen_tgid=$objrun_pid" "global parent_tgid=$$" "global pid_size=4" \
            "global comm_offset_ok=1" "global tgid_enum=1" "global enum_missing=0" \
            "global task_exists=1" "global nothing_exists=0" \
            "global has_state_new=$new" "global has_state_old=$old" "global old_state_read=$old"; do
            grep -qx "$want" "$outf" || fail="$fail core:missing:'$want'"
        done
        [ -n "$fail" ] && out "$outf"
    else
        fail="$fail core:exit:'$(tail -n 1 "$outf")'"
        out "$outf"
    fi
    # FLOAT, DECL_TAG, TYPE_TAG (new_kinds.o) and ENUM64 (enum64.o, from a
    # clang of 15+): 5.10 knows none of them, and the loader must say it
    # rewrote them, not load without BTF; 6.1 and later know all.
    load_rewritten new_kinds "FLOAT, DECL_TAG, TYPE_TAG"
    load_rewritten enum64 "ENUM64"
    rm -f "$outf"
    finish "objects" "$t0"
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
case " $VMTEST_METHODS " in
*" raw-tracepoint "*) run_ia32 ;;
esac
run_objects
if [ "$VMTEST_EXIT" = 1 ]; then
    round=0
    while [ "$round" -lt "$VMTEST_EXIT_ROUNDS" ]; do
        round=$((round + 1))
        for m in $VMTEST_METHODS; do
            run_exit "$m"
            # auto's pair is kprobe's (checked by run_exit's via).
            [ "$m" = auto ] || run_exit_missed "$m"
        done
    done
    [ "$VMTEST_SIGKILL" = 1 ] && run_sigkill --exit
fi
if [ "$VMTEST_TOP" = 1 ]; then
    for m in $VMTEST_METHODS; do
        run_top "$m"
    done
fi
if [ "$VMTEST_EXPLAIN" = 1 ]; then
    for m in $VMTEST_METHODS; do
        run_explain "$m"
    done
fi
if [ "$VMTEST_REUSE" = 1 ]; then
    for m in $VMTEST_METHODS; do
        [ "$m" = auto ] || run_reuse "$m"
    done
    for m in $VMTEST_METHODS; do
        [ "$m" = auto ] || { run_reuse "$m" top; break; }
    done
fi
if [ "$VMTEST_NAMESPACES" = 1 ]; then
    run_cgroup
    case " $VMTEST_METHODS " in
    *" kprobe-legacy "*) [ -e "$KEV" ] && run_pidns_legacy ;;
    esac
fi
if [ -e "$KEV" ]; then
    say "env kernel=$KERNEL kprobe_events_exists=yes (after runs)"
else
    say "env kernel=$KERNEL kprobe_events_exists=no (after runs)"
fi

overall=FAIL
[ "$ALL_OK" = 1 ] && overall=PASS
say "done kernel=$KERNEL result=$overall checks_s=$(fmt_cs $(($(now_cs) - t_checks)))"
[ "$ALL_OK" = 1 ]
