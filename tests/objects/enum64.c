// SPDX-License-Identifier: GPL-2.0
/* A 64-bit enum in a map's value: clang 15 and later describe it with
 * BTF's ENUM64 (Linux 6.0), which 5.10 and 5.15 do not know. Compiled with
 * a clang of 15 or more (scripts/test installs clang-16 for it). */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

enum wide {
	WIDE_SMALL = 1,
	WIDE_BIG = 0x1234567890ULL,
};

struct holder {
	enum wide w;
	u64 n;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct holder);
} holders SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int store_wide(void *ctx)
{
	u32 key = 0;
	struct holder *h = bpf_map_lookup_elem(&holders, &key);

	if (h) {
		h->w = WIDE_BIG;
		__sync_fetch_and_add(&h->n, 1);
	}
	return 0;
}
