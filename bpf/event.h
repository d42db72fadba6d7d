/* The record the probe sends to user space and the configuration user space
 * writes for it. src/abi.rs mirrors both layouts field for field, with
 * compile-time checks of every offset. */
#ifndef PROBE_EVENT_H
#define PROBE_EVENT_H

#include "bpf_defs.h"

#define SYSCALL_READ 0
#define SYSCALL_WRITE 1

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
	__u16 syscall;		/* SYSCALL_READ or SYSCALL_WRITE */
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

struct config {			/* 56 bytes, slot 0 of the config map */
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
};

#endif
