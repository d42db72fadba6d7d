// SPDX-License-Identifier: GPL-2.0
/* bpf_loop takes a callback: a 64-bit load of a function's address, which
 * the loader would have to mark as such (BPF_PSEUDO_FUNC). It does not: the
 * program is skipped, the one beside it is not. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

static int step(u32 index, void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int loop_four_times(void *ctx)
{
	bpf_loop(4, step, 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int no_loop(void *ctx)
{
	return 0;
}
