// SPDX-License-Identifier: GPL-2.0
/* An extern that libbpf fills in at load time (from the running kernel's
 * version): this loader cannot, so the object is refused. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern int LINUX_KERNEL_VERSION __kconfig;

SEC("tracepoint/syscalls/sys_enter_getpid")
int new_kernels_only(void *ctx)
{
	return LINUX_KERNEL_VERSION >= 0x050500;
}
