// SPDX-License-Identifier: GPL-2.0
/* CO-RE: field offsets that libbpf rewrites to the running kernel's at
 * load time. Loaded without that, they would be the offsets of this local
 * struct, so the parse must refuse the object. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

SEC("tracepoint/syscalls/sys_enter_getppid")
int parent_tgid(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	return BPF_CORE_READ(task, real_parent, tgid);
}
