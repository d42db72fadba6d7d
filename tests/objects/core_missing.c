// SPDX-License-Identifier: GPL-2.0
/* A CO-RE read of a field no kernel has, unguarded: its relocation cannot
 * be resolved, the instruction is poisoned (a call to helper 0xbad2310),
 * and since the program reaches it the verifier refuses it, with
 * "invalid func unknown#195896080"; `probe load` shows the poisoned
 * relocation next to that. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct {
	int no_such_field_in_any_kernel;
} __attribute__((preserve_access_index));

SEC("tracepoint/syscalls/sys_enter_getppid")
int reads_a_missing_field(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	return BPF_CORE_READ(task, no_such_field_in_any_kernel);
}
