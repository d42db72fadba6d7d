// SPDX-License-Identifier: GPL-2.0
/* Legacy maps (samples/bpf, iproute2 and libbpf before 1.0) shared by an
 * XDP program, a socket filter and a tracepoint through a static
 * subprogram: only the tracepoint is of a kind this loader attaches. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

char LICENSE[] SEC("license") = "GPL";

struct bpf_map_def SEC("maps") packets = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 2,
};

struct bpf_map_def SEC("maps") opens = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 1,
};

/* Static and not inlined: every call to it is relocated against the
 * section symbol of .text, whose own name is empty. */
static __attribute__((noinline)) void bump(void *map, u32 slot)
{
	u64 *v = bpf_map_lookup_elem(map, &slot);

	if (v)
		*v += 1;
}

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	bump(&packets, 0);
	return XDP_PASS;
}

SEC("socket")
int count_socket(struct __sk_buff *skb)
{
	bump(&packets, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int count_opens(void *ctx)
{
	bump(&opens, 0);
	return 0;
}
