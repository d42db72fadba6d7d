// SPDX-License-Identifier: GPL-2.0
/* Maps declared the way libbpf 1.x wants them: BTF-defined, in ".maps".
 * Not read by this loader: the maps and the program using one are skipped,
 * the program that uses none is not. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u64);
} unlinks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} unused_ring SEC(".maps");

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(count_unlinks, int dfd)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u64 one = 1, *count;

	count = bpf_map_lookup_elem(&unlinks, &tgid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&unlinks, &tgid, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int no_map(void *ctx)
{
	return 0;
}
