// SPDX-License-Identifier: GPL-2.0
/* The benchmark's floor: the cheapest useful program on the same hook as the
 * probe. It filters on comm like the probe and counts into a per-CPU map,
 * sending nothing to user space. Its overhead is the hook's own cost. The
 * exit programs make the two-hook floor of --exit (count_floor --exits):
 * the same filter and count on sys_exit_*, slot 1. With `clock` set
 * (count_floor --exits --clock), each hook also reads the clock, summed in
 * slot 2 so the read is kept: the least a per-call latency costs (two
 * bpf_ktime_get_ns per call), the floor of `probe top`'s pairing. */
#include "../bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

struct filter {
	char comm[16];
	__u64 clock;
};

BPF_MAP(floor_filter, BPF_MAP_TYPE_ARRAY, __u32, struct filter, 1);
BPF_MAP(floor_counts, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, 3);

static __always_inline int count(__u32 slot)
{
	__u32 zero = 0;
	struct filter *f = bpf_map_lookup_elem(&floor_filter, &zero);
	if (!f)
		return 0;
	/* Zeroed: 5.19 to 6.3 leave the bytes after the NUL unwritten. */
	char comm[16] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	const __u64 *a = (const __u64 *)comm, *b = (const __u64 *)f->comm;
	if (a[0] != b[0] || a[1] != b[1])
		return 0;
	__u64 *n = bpf_map_lookup_elem(&floor_counts, &slot);
	if (n)
		*n += 1;
	if (f->clock) {
		__u32 two = 2;
		__u64 *t = bpf_map_lookup_elem(&floor_counts, &two);
		if (t)
			*t += bpf_ktime_get_ns();
	}
	return 0;
}

/* The same on the raw tracepoints (count_floor --raw), which run for
 * every syscall: the number first (x86-64 read 0, write 1). */
struct raw_args {
	__u64 args[2];
};

SEC("raw_tracepoint/sys_enter")
int floor_raw_enter(struct raw_args *ctx)
{
	if (ctx->args[1] > 1)
		return 0;
	return count(0);
}

SEC("raw_tracepoint/sys_exit")
int floor_raw_exit(struct raw_args *ctx)
{
	/* The number is the registers' orig_ax (struct pt_regs, byte 120). */
	__u64 nr = ~0ULL;
	bpf_probe_read_kernel(&nr, sizeof(nr), (const char *)ctx->args[0] + 120);
	if (nr > 1)
		return 0;
	return count(1);
}

SEC("tracepoint/syscalls/sys_enter_write")
int floor_write(void *ctx)
{
	return count(0);
}

SEC("tracepoint/syscalls/sys_enter_read")
int floor_read(void *ctx)
{
	return count(0);
}

SEC("tracepoint/syscalls/sys_exit_write")
int floor_write_exit(void *ctx)
{
	return count(1);
}

SEC("tracepoint/syscalls/sys_exit_read")
int floor_read_exit(void *ctx)
{
	return count(1);
}
