// SPDX-License-Identifier: GPL-2.0
/* Entry probes for read(2) and write(2): one event per call into a per-CPU
 * perf ring. Kept branch-light: this runs on every read and write on the
 * machine, so anything filtered out returns before touching the ring.
 *
 * Built twice: probe.bpf.o, and probe_pidns.bpf.o with PIDNS_FILTER, which
 * matches -p against the process id in the monitor's pid namespace (a
 * helper of Linux 5.7+, so kept out of the build every kernel loads, and
 * used only by a monitor outside the initial pid namespace). */
#include "bpf_defs.h"
#include "event.h"

char LICENSE[] SEC("license") = "GPL";

BPF_MAP(events, BPF_MAP_TYPE_PERF_EVENT_ARRAY, __u32, __u32, 0);
BPF_MAP(config_map, BPF_MAP_TYPE_ARRAY, __u32, struct config, 1);
/* Slot 0: events bpf_perf_event_output could not write (ring full). */
BPF_MAP(drops, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, 1);
/* Slot 0: the cgroup v2 directory of --cgroup (an fd, set by the monitor). */
BPF_MAP(cgroup_filter, BPF_MAP_TYPE_CGROUP_ARRAY, __u32, __u32, 1);

/* x86-64 struct pt_regs offsets (arch/x86/include/asm/ptrace.h). */
#define PT_REGS_DX 96
#define PT_REGS_SI 104
#define PT_REGS_DI 112

/* A tracepoint's context: struct trace_event_raw_sys_enter for read/write,
 * as events/syscalls/sys_enter_write/format lays it out. */
struct sys_enter_rw_args {
	__u64 common;		/* type, flags, preempt count, pid */
	__s32 syscall_nr;
	__u32 pad;
	__u64 fd;
	__u64 buf;
	__u64 count;
};

static __always_inline int comm_matches(const char *comm,
					const struct config *cfg)
{
	const __u64 *a = (const __u64 *)comm;
	const __u64 *b = (const __u64 *)cfg->filter_comm;
	return a[0] == b[0] && a[1] == b[1];
}

/* -p: the calling process is the one asked for. */
static __always_inline int is_filtered_process(__u32 tgid,
					       const struct config *cfg)
{
#ifdef PIDNS_FILTER
	struct bpf_pidns_info ns = {};
	/* Fails for a task of another namespace: never the one asked for. */
	if (bpf_get_ns_current_pid_tgid(cfg->pidns_dev, cfg->pidns_ino, &ns,
					sizeof(ns)))
		return 0;
	return ns.tgid == cfg->filter_tgid;
#else
	return tgid == cfg->filter_tgid;
#endif
}

static __always_inline int emit(void *ctx, __u16 syscall, __u64 fd,
				__u64 buf, __u64 count)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (!cfg)
		return 0;

	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == cfg->self_tgid)
		return 0;
	if (cfg->filter_tgid && !is_filtered_process(tgid, cfg))
		return 0;
	if (cfg->filter_cgroup &&
	    bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return 0;

	struct event ev = {};
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (cfg->filter_comm_set && !comm_matches(ev.comm, cfg))
		return 0;

	ev.ts_ns = bpf_ktime_get_ns();
	ev.count = count;
	ev.fd = (__s32)fd;
	ev.pid = (__u32)pid_tgid;
	ev.tgid = tgid;
	ev.uid = (__u32)bpf_get_current_uid_gid();
	ev.cpu = bpf_get_smp_processor_id();
	ev.syscall = syscall;
	/* Reading user memory costs a fault-safe copy per call: only when the
	 * user asked for details, and only for writes, whose buffer is filled
	 * at entry (a read's is not filled until the call returns). */
	if (cfg->verbose && syscall == SYSCALL_WRITE && count) {
		__u32 n = count < PREVIEW_LEN ? count : PREVIEW_LEN;
		if (bpf_probe_read_user(ev.preview, n & (PREVIEW_LEN * 2 - 1),
					(void *)buf) == 0)
			ev.flags = EVENT_HAS_PREVIEW;
	}

	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &ev,
				  sizeof(ev)) < 0) {
		__u64 *lost = bpf_map_lookup_elem(&drops, &zero);
		if (lost)
			*lost += 1;
	}
	return 0;
}

/* __x64_sys_read(const struct pt_regs *regs): since 4.17 the wrapper gets
 * the user's registers as one pointer, so the arguments are read from that
 * inner struct, not from the kprobe's own registers. */
static __always_inline int from_wrapper(void *ctx, __u16 syscall)
{
	const char *regs;
	__u64 fd = 0, buf = 0, count = 0;
	regs = (const char *)*(__u64 *)((char *)ctx + PT_REGS_DI);
	bpf_probe_read_kernel(&fd, sizeof(fd), regs + PT_REGS_DI);
	bpf_probe_read_kernel(&buf, sizeof(buf), regs + PT_REGS_SI);
	bpf_probe_read_kernel(&count, sizeof(count), regs + PT_REGS_DX);
	return emit(ctx, syscall, fd, buf, count);
}

SEC("kprobe/__x64_sys_read")
int kprobe_read(void *ctx)
{
	return from_wrapper(ctx, SYSCALL_READ);
}

SEC("kprobe/__x64_sys_write")
int kprobe_write(void *ctx)
{
	return from_wrapper(ctx, SYSCALL_WRITE);
}

SEC("tracepoint/syscalls/sys_enter_read")
int tracepoint_read(struct sys_enter_rw_args *args)
{
	return emit(args, SYSCALL_READ, args->fd, args->buf, args->count);
}

SEC("tracepoint/syscalls/sys_enter_write")
int tracepoint_write(struct sys_enter_rw_args *args)
{
	return emit(args, SYSCALL_WRITE, args->fd, args->buf, args->count);
}

/* Never called: it puts struct event and struct config in the object's BTF,
 * where tests/layouts.rs checks them against src/abi.rs field by field. The
 * loader appends only the .text functions a program reaches, so it costs
 * the probe nothing. */
__attribute__((noinline)) int probe_layouts(struct event *e, struct config *c)
{
	return e != 0 && c != 0;
}
