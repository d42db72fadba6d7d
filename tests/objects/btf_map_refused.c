// SPDX-License-Identifier: GPL-2.0
/* BTF-defined maps this loader does not create: one pinned by name (it
 * pins nothing), an array of maps with an inner map (no map-in-map). They
 * are listed as skipped, and so is the program that uses one. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, u32);
	__array(values, struct inner);
} outer SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int uses_pinned(void *ctx)
{
	u32 key = 0;

	return bpf_map_lookup_elem(&pinned, &key) != 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int uses_none(void *ctx)
{
	return 0;
}
