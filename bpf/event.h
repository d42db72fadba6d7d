/* The record the probe sends to user space and the configuration user space
 * writes for it. src/abi.rs mirrors both layouts field for field, with
 * compile-time checks of every offset. */
#ifndef PROBE_EVENT_H
#define PROBE_EVENT_H

#include "bpf_defs.h"

/* The read/write family (--syscalls): event.syscall and top_key.syscall.
 * src/app/abi.rs Syscall mirrors the numbering. */
#define SYSCALL_READ 0
#define SYSCALL_WRITE 1
#define SYSCALL_PREAD64 2
#define SYSCALL_PWRITE64 3
#define SYSCALL_READV 4
#define SYSCALL_WRITEV 5
#define SYSCALL_PREADV 6
#define SYSCALL_PWRITEV 7
#define SYSCALL_PREADV2 8
#define SYSCALL_PWRITEV2 9
#define SYSCALLS 10
#define IS_WRITE(syscall) ((syscall) & 1)

/* The vector calls' "bytes asked for" is the sum of iov_len over their
 * first IOV_SUMMED entries (read from user memory at entry). */
#define IOV_SUMMED 16

#define COMM_LEN 16
#define PREVIEW_LEN 8

/* event.flags: preview[] holds the first bytes written (or read, once a
 * read returned); the event is a completed call, ret and lat_ns are set
 * (--exit); it is a call still in flight when the monitor stopped (set by
 * user space, which reports those). */
#define EVENT_HAS_PREVIEW 1
#define EVENT_COMPLETED 2
#define EVENT_UNFINISHED 4
#define EVENT_PENDING 8		/* in the inflight map only: not returned yet */

/* An entry event is the first 64 bytes (one cache line; 80 in the ring);
 * a completed call (--exit) all 80. */
#define ENTRY_EVENT_SIZE 64

struct event {
	__u64 ts_ns;		/* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64 count;		/* bytes asked for */
	__s32 fd;
	__u32 pid;		/* thread id */
	__u32 tgid;		/* process id */
	__u32 uid;
	__u32 cpu;
	__u16 syscall;		/* SYSCALL_* */
	__u16 flags;		/* EVENT_HAS_PREVIEW */
	char comm[COMM_LEN];
	__u8 preview[PREVIEW_LEN];
	/* Completed calls only. */
	__s64 ret;		/* the return value: bytes, or -errno */
	__u64 lat_ns;		/* from entry to return */
};

/* What the entry of a call leaves for its exit (--exit), per thread: the
 * event as far as the entry knows it (flags EVENT_PENDING), and where the
 * buffer is. The exit completes it in place (flags EVENT_COMPLETED): the
 * record stays, for the thread's next call. */
struct inflight {
	struct event ev;	/* ret and lat_ns not set yet */
	__u64 buf;
	__u32 slots[SYSCALLS];	/* top: the thread's last row per syscall
				 * (slot + 1; 0: none) */
};

/* Slots of the per-CPU exit_counts map (--exit). */
#define COUNT_STORED 0		/* entries stored */
#define COUNT_MATCHED 1		/* exits that found their entry */
#define COUNT_MISSED_RETURN 2	/* entries that found their thread's record
				 * still pending: the previous call's return
				 * was never seen (a return probe's maxactive) */
#define COUNT_NO_ENTRY 3	/* exits of calls that matched the filters
				 * but whose entry was not seen (in flight
				 * when the probe attached, or evicted) */
#define COUNT_INSERTED 4	/* records added to the inflight map (a
				 * thread's first call): the monitor sweeps
				 * dead threads' records every few thousand */
#define EXIT_COUNTS 5

/* probe top: the aggregation, in the kernel, per key and syscall. */
#define TOP_BY_PROCESS 1	/* tgid + comm */
#define TOP_BY_THREAD 2		/* tgid + tid + comm */
#define TOP_BY_SYSCALL 3	/* the syscall alone */
#define TOP_BY_FILE 4		/* tgid + fd */

/* Log2 histograms: slot k holds [2^k, 2^(k+1)) (slot 0 also holds 0);
 * the last slot holds everything from 2^(SLOTS-1) up. */
#define LAT_SLOTS 40		/* ns: the last from 2^39 ns, about 9 min */
#define SIZE_SLOTS 32		/* bytes moved: a call moves < 2^31 */

/* One errno slot per value up to ERRNO_SLOTS - 1, for the errors that
 * went to the "other" row; the last slot holds any larger one. */
#define ERRNO_SLOTS 544

struct top_key {		/* 32 bytes; fields a --by leaves out are 0 */
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u16 syscall;
	__u16 pad;
	char comm[COMM_LEN];
};

struct top_value {		/* updated with atomic adds: CPUs share it */
	__u64 bytes_req;	/* bytes asked for */
	__u64 bytes_xfer;	/* bytes moved: the sum of the returns >= 0 */
	__u64 lat_ns;		/* the sum of the latencies */
	char comm[COMM_LEN];	/* the first caller's, for the --by that
				 * keep comm out of the key */
	/* Every call adds one to a latency slot and, if it succeeded, one to
	 * a size slot: the calls and the errors are these sums (one atomic
	 * add less per call than counting them apart).
	 * 32-bit slots, half the bytes to read: the monitor reads every row
	 * each interval (at most a minute) and takes differences modulo 2^32,
	 * exact unless one slot of one row gets 2^32 calls between two reads
	 * (70 M calls/s for a minute). */
	__u32 lat_hist[LAT_SLOTS];
	__u32 size_hist[SIZE_SLOTS]; /* successful calls only */
};

/* A slot of the top_rows array: the counts, and the key they are for
 * (the counts first: a program's pointer to the row is one to them). */
struct top_row {
	struct top_value v;
	struct top_key key;
};

struct top_err_key {		/* a row's errors by errno */
	struct top_key key;
	__u32 err;		/* the errno: -ret */
	__u32 pad;
};

struct config {			/* 96 bytes, slot 0 of the config map */
	__u32 verbose;		/* >= 1: copy a preview of written bytes */
	__u32 filter_tgid;	/* 0: any process; else the process id, as
				 * seen from pidns_* in the probe_pidns build */
	__u32 self_tgid;	/* the monitor's host tgid, never reported */
	__u32 filter_comm_set;	/* 0: any comm */
	char filter_comm[COMM_LEN]; /* NUL padded, compared whole */
	__u32 filter_cgroup;	/* 1: only tasks under cgroup_filter[0] */
	__u32 exit_mode;	/* 1: store entries for the exit (--exit) */
	__u64 pidns_dev;	/* the pid namespace of filter_tgid (st_dev and */
	__u64 pidns_ino;	/* st_ino of /proc/self/ns/pid), probe_pidns */
	__u32 top_by;		/* 0: stream events; else TOP_BY_*: count
				 * each call into top_stats (exit_mode 1) */
	__u32 syscalls;		/* raw tracepoints: bit SYSCALL_* set for
				 * each call of --syscalls */
	__u32 compat_status_off; /* raw tracepoints: where the current
				  * task's thread_info.status is, from the
				  * task_struct (TS_COMPAT: an ia32 call) */
	__u32 ring_slots;	/* 0: events go out through the perf rings;
				 * else (a power of two) the slots per CPU of
				 * the event rings in ring_slots/ring_pos */
	/* -p is a process, not a number: the calling process must also be
	 * the one whose group leader started (start_boottime, ns since boot)
	 * in [target_start_lo, target_start_hi). The offsets in task_struct
	 * come from the kernel's BTF; target_start_off 0: no BTF, the number
	 * alone is matched. */
	__u32 target_leader_off;	/* task_struct.group_leader */
	__u32 target_start_off;		/* task_struct.start_boottime */
	__u64 target_start_lo;
	__u64 target_start_hi;
};

/* The event ring of one CPU (--ring map): the programs on that CPU write
 * event slots at `head` and then move it on; the monitor reads up to it
 * and moves `tail`. Each on a cache line of its own. */
struct ring_pos {			/* 128 bytes, ring_pos[cpu] */
	__u64 head;
	__u64 pad1[7];
	__u64 tail;
	__u64 pad2[7];
};

#endif
