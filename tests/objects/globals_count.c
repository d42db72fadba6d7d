// SPDX-License-Identifier: GPL-2.0
/* Global data and a BTF-defined map, loaded and run: a "const volatile"
 * filter set by name before loading (.rodata), a counter in .bss, one in
 * .data with a first value, a per-process count in a hash, and a
 * bpf_printk (its format in .rodata). tests/global_data.rs checks every
 * value exactly. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile u32 target_tgid = 0;
u64 calls = 0;
u64 since_seven = 7;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} per_tgid SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u64 one = 1, *count;

	if (tgid != target_tgid)
		return 0;
	__sync_fetch_and_add(&calls, 1);
	__sync_fetch_and_add(&since_seven, 1);
	count = bpf_map_lookup_elem(&per_tgid, &tgid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&per_tgid, &tgid, &one, BPF_ANY);
	bpf_printk("getppid from %d", tgid);
	return 0;
}
