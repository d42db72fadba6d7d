// SPDX-License-Identifier: GPL-2.0
/* CO-RE of every kind a test can check exactly, run through our loader:
 * the running kernel's offsets for fields of our own small task_struct
 * (preserve_access_index), a field that exists only since 5.14 (__state)
 * and one only before it (state), sizes, a flavor (___old), an enum value,
 * types that exist and one that does not. Each result goes to a .bss
 * variable for objrun and tests/global_data.rs to read. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct {
	int pid;
	int tgid;
	unsigned int __state;
	struct task_struct *real_parent;
	char comm[16];
} __attribute__((preserve_access_index));

/* The same struct as kernels before 5.14 have it: a flavor, matched to
 * task_struct by the name before ___. */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

enum pid_type {
	PIDTYPE_PID,
	PIDTYPE_TGID,
	PIDTYPE_NOT_IN_ANY_KERNEL = 99,
};

struct no_such_struct_anywhere {
	int x;
} __attribute__((preserve_access_index));

const volatile u32 target_tgid = 0;
/* The first byte of the calling thread's comm, set by the runner. */
const volatile char comm0 = 0;

u32 seen_tgid = 0;
u32 parent_tgid = 0;
u32 has_state_new = 7;
u32 has_state_old = 7;
u32 pid_size = 0;
u32 comm_offset_ok = 0;
u64 tgid_enum = 77;
u32 enum_missing = 7;
u32 task_exists = 7;
u32 nothing_exists = 7;
u32 task_size = 0;
/* Read only where the field exists: elsewhere the read's relocation
 * cannot be resolved and is poisoned, on a path the verifier never takes
 * (the guard is a constant 0 there). */
u64 old_state_read = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int core_fields(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct task_struct___old *old = (void *)task;

	if ((u32)(bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	seen_tgid = BPF_CORE_READ(task, tgid);
	parent_tgid = BPF_CORE_READ(task, real_parent, tgid);
	has_state_new = bpf_core_field_exists(task->__state);
	has_state_old = bpf_core_field_exists(old->state);
	if (bpf_core_field_exists(old->state))
		old_state_read = 1 + (BPF_CORE_READ(old, state) & 0);
	pid_size = bpf_core_field_size(task->pid);
	/* comm is where the kernel says: its first byte is the comm's. */
	char c = 0;
	bpf_core_read(&c, 1, &task->comm[0]);
	comm_offset_ok = c == comm0;
	tgid_enum = bpf_core_enum_value(enum pid_type, PIDTYPE_TGID);
	enum_missing =
		bpf_core_enum_value_exists(enum pid_type, PIDTYPE_NOT_IN_ANY_KERNEL);
	task_exists = bpf_core_type_exists(struct task_struct);
	nothing_exists = bpf_core_type_exists(struct no_such_struct_anywhere);
	task_size = bpf_core_type_size(struct task_struct);
	return 0;
}
