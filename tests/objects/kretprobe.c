// SPDX-License-Identifier: GPL-2.0
/* An entry kprobe and its return probe, in libbpf's style: both load. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(unlink_entry, int dfd)
{
	return dfd < 0;
}

SEC("kretprobe/do_unlinkat")
int BPF_KRETPROBE(unlink_exit, long ret)
{
	return ret != 0;
}
