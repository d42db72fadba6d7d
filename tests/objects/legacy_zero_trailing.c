// SPDX-License-Identifier: GPL-2.0
/* iproute2's map definition with every field past the fifth left at zero:
 * nothing is lost by reading only the five, so it loads. */
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

char LICENSE[] SEC("license") = "GPL";

struct bpf_elf_map SEC("maps") counters = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(u32),
	.size_value = sizeof(u64),
	.max_elem = 4,
};

SEC("tracepoint/syscalls/sys_enter_getpid")
int count(void *ctx)
{
	u32 zero = 0;
	u64 *v = bpf_map_lookup_elem(&counters, &zero);

	if (v)
		*v += 1;
	return 0;
}
