// SPDX-License-Identifier: GPL-2.0
/* A perf event array declared with no key or value size, as many legacy
 * objects do: loaders give it 4 and 4 (a CPU index, a perf event fd). */
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

struct bpf_map_def SEC("maps") events = {
	.type = BPF_MAP_TYPE_PERF_EVENT_ARRAY,
};

SEC("tracepoint/syscalls/sys_enter_getpid")
int send_tgid(void *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &tgid, sizeof(tgid));
	return 0;
}
