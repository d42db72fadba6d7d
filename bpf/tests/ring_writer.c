// SPDX-License-Identifier: GPL-2.0
/* A fixture for the ring reader's tests: on each getppid() of the process
 * the test names, writes one sample of a size the test chooses, holding a
 * sequence number in every 8-byte word, to the perf ring of the current
 * CPU. Counts the samples the kernel refused, as the probe does. */
#include "../bpf_defs.h"

char LICENSE[] SEC("license") = "GPL";

#define MAX_WORDS 64

struct writer_config {
	__u32 tgid;
	__u32 words;		/* sample size in 8-byte words, 1..MAX_WORDS */
	__u64 next_seq;
};

BPF_MAP(ring_events, BPF_MAP_TYPE_PERF_EVENT_ARRAY, __u32, __u32, 0);
BPF_MAP(writer_config, BPF_MAP_TYPE_ARRAY, __u32, struct writer_config, 1);
BPF_MAP(writer_failed, BPF_MAP_TYPE_ARRAY, __u32, __u64, 1);
BPF_MAP(writer_scratch, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64[MAX_WORDS], 1);

SEC("tracepoint/syscalls/sys_enter_getppid")
int write_sample(void *ctx)
{
	__u32 zero = 0;
	struct writer_config *cfg = bpf_map_lookup_elem(&writer_config, &zero);
	if (!cfg || cfg->tgid != bpf_get_current_pid_tgid() >> 32)
		return 0;
	__u64 *words = bpf_map_lookup_elem(&writer_scratch, &zero);
	if (!words)
		return 0;
	__u64 seq = cfg->next_seq++;
	for (int i = 0; i < MAX_WORDS; i++)
		words[i] = seq;
	__u32 n = cfg->words;
	if (n < 1 || n > MAX_WORDS)
		return 0;
	if (bpf_perf_event_output(ctx, &ring_events, BPF_F_CURRENT_CPU, words,
				  (__u64)n * 8) < 0) {
		__u64 *failed = bpf_map_lookup_elem(&writer_failed, &zero);
		if (failed)
			__sync_fetch_and_add(failed, 1);
	}
	return 0;
}
