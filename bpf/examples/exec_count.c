// SPDX-License-Identifier: GPL-2.0
/* An embedder's own BPF program (examples/exec_count.rs loads it through
 * probe's library): counts execve calls per process name, in the kernel. */
#include "../bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

struct comm_key {
	char comm[16];
};

BPF_MAP(exec_counts, BPF_MAP_TYPE_HASH, struct comm_key, __u64, 1024);

SEC("tracepoint/syscalls/sys_enter_execve")
int count_exec(void *ctx)
{
	struct comm_key key = {};
	__u64 one = 1;

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	__u64 *n = bpf_map_lookup_elem(&exec_counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&exec_counts, &key, &one, BPF_NOEXIST);
	return 0;
}
