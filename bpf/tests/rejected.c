// SPDX-License-Identifier: GPL-2.0
/* A fixture the verifier must reject: the loader's typed errors and `auto`
 * are tested with it. Two tracepoint programs read a map value without the
 * NULL check the verifier requires; a kprobe program is fine but is never
 * loaded where kprobes are unsupported. */
#include "../bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

/* A hash map: a lookup may always miss (an array lookup with a constant
 * key in range is known never to, by recent verifiers). */
BPF_MAP(rejected_values, BPF_MAP_TYPE_HASH, __u32, __u64, 1);

SEC("kprobe/__x64_sys_getpid")
int fine_kprobe(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int unchecked_first(void *ctx)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&rejected_values, &zero);
	return *v; /* may be NULL: rejected */
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int unchecked_second(void *ctx)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&rejected_values, &zero);
	return *v;
}
