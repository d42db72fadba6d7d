// SPDX-License-Identifier: GPL-2.0
/* BTF kinds newer than some kernels of the matrix: FLOAT (5.13), DECL_TAG
 * (5.16), TYPE_TAG (5.17), in a map's value type. On a kernel without
 * them the loader rewrites them as older kinds (and says so) rather than
 * load the object without BTF. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct sample {
	float ratio;
	int n __attribute__((btf_decl_tag("counted")));
	int __attribute__((btf_type_tag("user"))) *where;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sample);
} samples SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int touch(void *ctx)
{
	u32 key = 0;
	struct sample *s = bpf_map_lookup_elem(&samples, &key);

	if (s)
		__sync_fetch_and_add(&s->n, 1);
	return 0;
}
