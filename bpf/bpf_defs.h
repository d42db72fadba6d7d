/* The little of libbpf's headers that the probe needs, written out so that
 * building it takes clang and nothing else. Helper ids are the kernel's ABI
 * (include/uapi/linux/bpf.h, enum bpf_func_id): they never change. */
#ifndef PROBE_BPF_DEFS_H
#define PROBE_BPF_DEFS_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed int __s32;
typedef signed long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))

/* Map types and flags used here (enum bpf_map_type). */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERF_EVENT_ARRAY 4
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_CGROUP_ARRAY 8
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_QUEUE 22
#define BPF_F_MMAPABLE (1U << 10)
#define BPF_F_CURRENT_CPU 0xffffffffULL
#define BPF_ANY 0
#define BPF_NOEXIST 1

/* A map as the loader reads it from the "maps" section: five u32 words.
 * max_entries 0 on a perf event array means "one slot per possible CPU". */
/* Legacy maps: a struct bpf_map_def in the "maps" section, read as bytes
 * by the loader. The seed's test programs (bpf/tests, bpf/examples) keep
 * them: the loader still takes them. */
struct bpf_map_def {
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
};
#define BPF_MAP(name, kind, key, value, entries) \
	struct bpf_map_def SEC("maps") name = { \
		.type = kind, .key_size = sizeof(key), \
		.value_size = sizeof(value), .max_entries = entries, \
	}

/* BTF-defined maps, as libbpf 1.x wants them: a variable in ".maps" whose
 * type says everything and whose bytes say nothing. __uint(name, N) is a
 * pointer to an array of N ints, so N lives in the BTF; __type(name, T)
 * a pointer to T, so T's size and its BTF id do. The probe's own maps are
 * these (the loader gives the kernel the key and value types, so
 * `bpftool map dump` prints them as C values). */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define BTF_MAP_FLAGS(_name, _kind, _key, _value, _entries, _flags) \
	struct { \
		__uint(type, _kind); \
		__type(key, _key); \
		__type(value, _value); \
		__uint(max_entries, _entries); \
		__uint(map_flags, _flags); \
	} _name SEC(".maps")
#define BTF_MAP(_name, _kind, _key, _value, _entries) \
	BTF_MAP_FLAGS(_name, _kind, _key, _value, _entries, 0)

/* Helpers, called through their fixed ids. */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key,
				   const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static long (*bpf_map_push_elem)(void *map, const void *value,
				 __u64 flags) = (void *)87;
static long (*bpf_map_pop_elem)(void *map, void *value) = (void *)88;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_task)(void) = (void *)35;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)8;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)15;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static long (*bpf_perf_event_output)(void *ctx, void *map, __u64 flags,
				     void *data, __u64 size) = (void *)25;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size,
				     const void *src) = (void *)113;
static long (*bpf_probe_read_user)(void *dst, __u32 size,
				   const void *src) = (void *)112;
/* 1 when the current task is in the cgroup v2 at map[index], or below it. */
static long (*bpf_current_task_under_cgroup)(void *map, __u32 index) = (void *)37;

/* The current task's ids as seen from the pid namespace (dev, ino); fails
 * unless that is the namespace the task lives in. Linux 5.7+. */
struct bpf_pidns_info {
	__u32 pid;
	__u32 tgid;
};
static long (*bpf_get_ns_current_pid_tgid)(__u64 dev, __u64 ino,
					   struct bpf_pidns_info *nsdata,
					   __u32 size) = (void *)120;

#endif
