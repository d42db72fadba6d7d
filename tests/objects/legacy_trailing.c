// SPDX-License-Identifier: GPL-2.0
/* iproute2's map definition (struct bpf_elf_map): the five fields every
 * loader reads, then id, pinning and inner-map fields. A pinning this
 * loader would ignore must be refused, as libbpf does. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

#define PIN_GLOBAL_NS 2

char LICENSE[] SEC("license") = "GPL";

struct bpf_elf_map SEC("maps") plain = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(u32),
	.size_value = sizeof(u64),
	.max_elem = 1,
};

struct bpf_elf_map SEC("maps") pinned = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(u32),
	.size_value = sizeof(u64),
	.max_elem = 1,
	.pinning = PIN_GLOBAL_NS,
};

SEC("tracepoint/syscalls/sys_enter_getpid")
int use_both(void *ctx)
{
	u32 zero = 0;
	u64 *a = bpf_map_lookup_elem(&plain, &zero);
	u64 *b = bpf_map_lookup_elem(&pinned, &zero);

	return a && b;
}
