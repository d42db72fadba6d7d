// SPDX-License-Identifier: GPL-2.0
/* Not shipped: a fixture for the loader's tests. It makes clang emit what
 * probe.c avoids: bpf-to-bpf calls into .text functions, one of which uses a
 * map itself and one of which calls another, plus a .text function that no
 * program reaches (the loader must leave it out, or the verifier rejects
 * the program for unreachable code). */
#include "../bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

BPF_MAP(counters, BPF_MAP_TYPE_ARRAY, __u32, __u64, 4);
BPF_MAP(unused_map, BPF_MAP_TYPE_ARRAY, __u32, __u32, 1);

__attribute__((noinline)) int bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += 1;
	return 0;
}

__attribute__((noinline)) int bump_twice(__u32 slot)
{
	bump(slot);
	return bump(slot + 1);
}

__attribute__((noinline)) int never_called(__u32 slot)
{
	__u32 *v = bpf_map_lookup_elem(&unused_map, &slot);
	return v ? *v : 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	return bump_twice(0);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	bump(3);
	return 0;
}
