// SPDX-License-Identifier: GPL-2.0
/* Format strings are global data: bpf_printk keeps its own in .rodata, a
 * string literal passed to the helper lands in .rodata.str1.1. The programs
 * that print are skipped; the one beside them is not. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_enter_getpid")
int say_hello(void *ctx)
{
	bpf_printk("hello from %d", (int)(bpf_get_current_pid_tgid() >> 32));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_gettid")
int say_bye(void *ctx)
{
	bpf_trace_printk("bye", sizeof("bye"));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int stay_quiet(void *ctx)
{
	return 0;
}
