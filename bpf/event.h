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

/* Set in event.flags when preview[] holds the first bytes of a write. */
#define EVENT_HAS_PREVIEW 1

struct event {			/* 64 bytes: one cache line, 80 in the ring */
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
};

struct config {			/* 56 bytes, slot 0 of the config map */
	__u32 verbose;		/* >= 1: copy a preview of written bytes */
	__u32 filter_tgid;	/* 0: any process; else the process id, as
				 * seen from pidns_* in the probe_pidns build */
	__u32 self_tgid;	/* the monitor's host tgid, never reported */
	__u32 filter_comm_set;	/* 0: any comm */
	char filter_comm[COMM_LEN]; /* NUL padded, compared whole */
	__u32 filter_cgroup;	/* 1: only tasks under cgroup_filter[0] */
	__u32 pad;
	__u64 pidns_dev;	/* the pid namespace of filter_tgid (st_dev and */
	__u64 pidns_ino;	/* st_ino of /proc/self/ns/pid), probe_pidns */
};

#endif
