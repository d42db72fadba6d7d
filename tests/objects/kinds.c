// SPDX-License-Identifier: GPL-2.0
/* One program of each kind libbpf knows by its section name and this
 * loader does not attach, beside one it does, plus a static function in a
 * program section and a kprobe section with no function to attach to. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define PROGRAM(section, name) \
	SEC(section) int name(void *ctx) { return 0; }

PROGRAM("tracepoint/syscalls/sys_enter_getpid", supported)
PROGRAM("uprobe//bin/sh:main", an_uprobe)
PROGRAM("fentry/do_unlinkat", an_fentry)
PROGRAM("fexit/do_unlinkat", an_fexit)
PROGRAM("raw_tracepoint.w/sys_enter", a_raw_tracepoint)
PROGRAM("tp_btf/sched_switch", a_tp_btf)
PROGRAM("lsm/file_open", an_lsm)
PROGRAM("cgroup_skb/ingress", a_cgroup_skb)
PROGRAM("cgroup/connect4", a_cgroup_sock_addr)
PROGRAM("tc", a_tc)
PROGRAM("classifier", a_classifier)
PROGRAM("perf_event", a_perf_event)
PROGRAM("iter/task", an_iter)
PROGRAM("kprobe", a_kprobe_without_function)
PROGRAM("my_custom_section", unknown_kind)

SEC("tracepoint/syscalls/sys_enter_getppid")
static int a_static_function(void *ctx)
{
	return 0;
}
