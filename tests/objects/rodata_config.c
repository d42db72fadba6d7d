// SPDX-License-Identifier: GPL-2.0
/* A "const volatile" setting in .rodata, which a libbpf skeleton sets
 * before loading: global data, which this loader does not create. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile int target_tgid = 0;

SEC("tracepoint/syscalls/sys_enter_write")
int on_write(void *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (target_tgid && tgid != target_tgid)
		return 0;
	return 1;
}
