// SPDX-License-Identifier: GPL-2.0
/* Probes for read(2) and write(2): one event per call into a per-CPU perf
 * ring. Kept branch-light: this runs on every read and write on the
 * machine, so anything filtered out returns before touching the ring.
 *
 * Three modes. By default the entry of each call sends its event (the only
 * hook attached). With --exit (config.exit_mode), the entry stores the
 * event in the per-thread `inflight` map instead, and the exit hook
 * (sys_exit tracepoint or kretprobe) completes it with the return value
 * and the latency and sends it. `probe top` (config.top_by) pairs them
 * the same way and counts the completed call into a table instead of
 * sending it. Filters apply at entry.
 *
 * The programs cover the read/write family (read, write, pread64,
 * pwrite64, readv, writev, preadv, pwritev, preadv2, pwritev2); only those
 * of --syscalls are loaded and attached.
 *
 * The raw tracepoint method (raw_enter, raw_exit) is one program per end
 * for every syscall of the machine: it filters on the syscall number
 * first, then on config.syscalls, then leaves out ia32 calls.
 *
 * Built twice: probe.bpf.o, and probe_pidns.bpf.o with PIDNS_FILTER, which
 * matches -p against the process id in the monitor's pid namespace (a
 * helper of Linux 5.7+, so kept out of the build every kernel loads, and
 * used only by a monitor outside the initial pid namespace). */
#include "bpf_defs.h"
#include "event.h"

char LICENSE[] SEC("license") = "GPL";

BTF_MAP(events, BPF_MAP_TYPE_PERF_EVENT_ARRAY, __u32, __u32, 0);
BTF_MAP(config_map, BPF_MAP_TYPE_ARRAY, __u32, struct config, 1);
/* --ring map: one single-producer ring of event slots per CPU, in two
 * arrays the monitor maps into its memory (BPF_F_MMAPABLE, 5.5+): CPU c
 * owns slots [c * ring_slots, (c + 1) * ring_slots) of ring_events and
 * ring_pos[c]. One writer per CPU at a time is what the kernel already
 * guarantees: programs run with migration off, kprobe and perf-tracepoint
 * programs never run while another runs on that CPU (bpf_prog_active),
 * and a raw tracepoint program never inside itself (and one program
 * writes: raw_enter, or with --exit raw_exit). The monitor sizes both
 * maps (1 entry when the perf rings are used). */
BTF_MAP_FLAGS(ring_pos, BPF_MAP_TYPE_ARRAY, __u32, struct ring_pos, 1,
	      BPF_F_MMAPABLE);
BTF_MAP_FLAGS(ring_events, BPF_MAP_TYPE_ARRAY, __u32, struct event, 1,
	      BPF_F_MMAPABLE);
/* Slot 0: events bpf_perf_event_output could not write (ring full). */
BTF_MAP(drops, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, 1);
/* Slot 0: the cgroup v2 directory of --cgroup (an fd, set by the monitor). */
BTF_MAP(cgroup_filter, BPF_MAP_TYPE_CGROUP_ARRAY, __u32, __u32, 1);
/* --exit: one record per thread, by thread id, reused in place from call
 * to call (EVENT_PENDING while the call is in flight): a map update and a
 * delete per call would cost more than the rest of the probe. LRU: the
 * records of threads that died must not fill the map for good (the monitor
 * also removes them, inflight.rs); an eviction of a pending record is
 * found by the counts (stored - matched - missed - left at the end). */
BTF_MAP(inflight, BPF_MAP_TYPE_LRU_HASH, __u32, struct inflight, 65536);
/* --exit: the COUNT_* slots of event.h. */
BTF_MAP(exit_counts, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, EXIT_COUNTS);
/* probe top: cumulative counts per key and syscall, never reset here (the
 * monitor computes each interval's share, and recycles the rows of exited
 * processes after reading them). A row lives in a slot of top_rows, an
 * array the monitor maps into its memory (BPF_F_MMAPABLE, 5.5+): it reads
 * every row each interval with no system call. top_index finds a key's
 * slot; a new key takes a free slot from the top_free queue (pop is
 * atomic, so two CPUs never take the same one; 5.10 has no atomic fetch
 * to count slots out). No free slot: the call counts in its syscall's
 * slot of top_other; nothing is ever evicted. The monitor shrinks these
 * maps to 1 entry when it is not top, and fills top_free at the start. */
BTF_MAP(top_index, BPF_MAP_TYPE_HASH, struct top_key, __u32, 10240);
BTF_MAP_FLAGS(top_rows, BPF_MAP_TYPE_ARRAY, __u32, struct top_row, 10240,
	      BPF_F_MMAPABLE);
/* A queue has no key. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__type(value, __u32);
	__uint(max_entries, 10240);
} top_free SEC(".maps");
BTF_MAP(top_other, BPF_MAP_TYPE_ARRAY, __u32, struct top_value, SYSCALLS);
/* Each row's errors by errno; when full, in top_errors_other by syscall
 * and errno (so are the errors of the calls in top_other). */
BTF_MAP(top_errors, BPF_MAP_TYPE_HASH, struct top_err_key, __u64, 10240);
BTF_MAP(top_errors_other, BPF_MAP_TYPE_ARRAY, __u32, __u64,
	SYSCALLS * ERRNO_SLOTS);

/* x86-64 struct pt_regs offsets (arch/x86/include/asm/ptrace.h). */
#define PT_REGS_AX 80
#define PT_REGS_DX 96
#define PT_REGS_SI 104
#define PT_REGS_DI 112
#define PT_REGS_ORIG_AX 120

/* thread_info.status: a 32-bit (ia32) system call is running. */
#define TS_COMPAT 0x0002

/* A raw tracepoint's context: the tracepoint's arguments as they are. For
 * sys_enter: the user's registers (struct pt_regs *) and the syscall
 * number; for sys_exit: the registers and the return value. */
struct bpf_raw_tracepoint_args {
	__u64 args[2];
};

/* A tracepoint's context: struct trace_event_raw_sys_enter for read/write,
 * as events/syscalls/sys_enter_write/format lays it out. */
struct sys_enter_rw_args {
	__u64 common;		/* type, flags, preempt count, pid */
	__s32 syscall_nr;
	__u32 pad;
	__u64 fd;
	__u64 buf;
	__u64 count;
};

/* struct trace_event_raw_sys_exit, as events/syscalls/sys_exit_read/format
 * lays it out. */
struct sys_exit_args {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__s64 ret;
};

static __always_inline void bump(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&exit_counts, &slot);
	if (n)
		*n += 1;
}

static __always_inline int comm_matches(const char *comm,
					const struct config *cfg)
{
	const __u64 *a = (const __u64 *)comm;
	const __u64 *b = (const __u64 *)cfg->filter_comm;
	return a[0] == b[0] && a[1] == b[1];
}

/* -p: the calling process is the very one asked for, not one that reused
 * its pid after it exited: its group leader started when the target did
 * (start_boottime, what /proc/PID/stat shows in clock ticks). Made only
 * for calls whose pid matched: one read of kernel memory when the caller
 * is the group leader itself (its thread id is the process id: a
 * single-threaded process's every call), two from another thread (its
 * group_leader first). A read that fails is no match. */
static __always_inline int is_target(const struct config *cfg, __u64 pid_tgid)
{
	const char *task = (const char *)bpf_get_current_task();
	const char *leader = task;
	__u64 start = 0;
	if ((__u32)pid_tgid != pid_tgid >> 32 &&
	    bpf_probe_read_kernel(&leader, sizeof(leader),
				  task + cfg->target_leader_off))
		return 0;
	if (bpf_probe_read_kernel(&start, sizeof(start),
				  leader + cfg->target_start_off))
		return 0;
	return start >= cfg->target_start_lo && start < cfg->target_start_hi;
}

/* -p: the calling process is the one asked for. */
static __always_inline int is_filtered_process(__u64 pid_tgid,
					       const struct config *cfg)
{
#ifdef PIDNS_FILTER
	struct bpf_pidns_info ns = {};
	/* Fails for a task of another namespace: never the one asked for. */
	if (bpf_get_ns_current_pid_tgid(cfg->pidns_dev, cfg->pidns_ino, &ns,
					sizeof(ns)))
		return 0;
	if (ns.tgid != cfg->filter_tgid)
		return 0;
#else
	if (pid_tgid >> 32 != cfg->filter_tgid)
		return 0;
#endif
	return !cfg->target_start_off || is_target(cfg, pid_tgid);
}

/* The filters, on the current task: its config if they let it through. */
static __always_inline struct config *wanted(__u64 pid_tgid, char *comm)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (!cfg)
		return 0;
	if (pid_tgid >> 32 == cfg->self_tgid)
		return 0;
	if (cfg->filter_tgid && !is_filtered_process(pid_tgid, cfg))
		return 0;
	if (cfg->filter_cgroup &&
	    bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return 0;
	/* Zeroed first: from 5.19 to 6.3 (Debian's 6.1 among them) the helper
	 * copies up to the NUL and leaves the bytes after it as they were,
	 * and the filter compares all 16 (so does the reader of the event). */
	__builtin_memset(comm, 0, COMM_LEN);
	bpf_get_current_comm(comm, COMM_LEN);
	if (cfg->filter_comm_set && !comm_matches(comm, cfg))
		return 0;
	return cfg;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&drops, &zero);
	if (lost)
		*lost += 1;
}

/* --ring map: this CPU's next free slot, to be written and then
 * published with ring_publish; None (the event dropped and counted, like
 * for a full perf ring) when the ring is full. */
static __always_inline struct event *ring_reserve(const struct config *cfg,
						  struct ring_pos **pos_out)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct ring_pos *pos = bpf_map_lookup_elem(&ring_pos, &cpu);
	if (!pos) {
		count_drop();
		return 0;
	}
	__u64 head = pos->head;
	__u64 slots = cfg->ring_slots;
	if (head - *(volatile __u64 *)&pos->tail >= slots) {
		count_drop();
		return 0;
	}
	__u32 at = cpu * slots + (head & (slots - 1));
	struct event *slot = bpf_map_lookup_elem(&ring_events, &at);
	if (!slot)
		count_drop();
	*pos_out = pos;
	return slot;
}

/* The slot written: the head moved on (a compiler barrier first: x86-64
 * keeps stores in order, so the monitor, reading the head with acquire
 * ordering, sees the slot written). */
static __always_inline void ring_publish(struct ring_pos *pos)
{
	asm volatile("" ::: "memory");
	pos->head = pos->head + 1;
}

/* --ring map: a copy of `ev` into this CPU's next slot. */
static __always_inline void ring_send(const struct config *cfg,
				      const struct event *ev)
{
	struct ring_pos *pos = 0;
	struct event *slot = ring_reserve(cfg, &pos);
	if (!slot || !pos)
		return;
	*slot = *ev;
	ring_publish(pos);
}

/* --ring perf: `size` bytes of `ev` into this CPU's perf ring. */
static __always_inline void perf_send(void *ctx, struct event *ev, __u64 size)
{
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ev, size) <
	    0)
		count_drop();
}

static __always_inline void send(void *ctx, const struct config *cfg,
				 struct event *ev, __u64 size)
{
	if (cfg->ring_slots)
		ring_send(cfg, ev);
	else
		perf_send(ctx, ev, size);
}

/* The first bytes of `buf`, `len` of them at most, into ev->preview. */
static __always_inline void preview(struct event *ev, __u64 buf, __u64 len)
{
	__u32 n = len < PREVIEW_LEN ? len : PREVIEW_LEN;
	if (n && bpf_probe_read_user(ev->preview, n & (PREVIEW_LEN * 2 - 1),
				     (void *)buf) == 0)
		ev->flags |= EVENT_HAS_PREVIEW;
}

/* The event as far as the entry knows it; `lean` (top): only what the
 * counting needs, not the uid and CPU (two helper calls per call). */
static __always_inline void fill(struct event *ev, __u64 pid_tgid,
				 const char *comm, __u16 syscall, __u64 fd,
				 __u64 count, int lean)
{
	ev->ts_ns = bpf_ktime_get_ns();
	ev->count = count;
	ev->fd = (__s32)fd;
	ev->pid = (__u32)pid_tgid;
	ev->tgid = pid_tgid >> 32;
	if (!lean) {
		ev->uid = (__u32)bpf_get_current_uid_gid();
		ev->cpu = bpf_get_smp_processor_id();
	}
	ev->syscall = syscall;
	ev->flags = 0;
	__builtin_memcpy(ev->comm, comm, COMM_LEN);
}

/* --exit: the call into its thread's record, for the exit to complete. */
static __always_inline void store(__u64 pid_tgid, const char *comm,
				  __u16 syscall, __u64 fd, __u64 buf,
				  __u64 count, int lean)
{
	__u32 tid = (__u32)pid_tgid;
	struct inflight *f = bpf_map_lookup_elem(&inflight, &tid);
	if (f) {
		/* A thread's system calls do not nest: a record still
		 * pending is a call whose return was never seen. */
		if (f->ev.flags & EVENT_PENDING)
			bump(COUNT_MISSED_RETURN);
		fill(&f->ev, pid_tgid, comm, syscall, fd, count, lean);
		f->buf = buf;
		f->ev.flags = EVENT_PENDING;
	} else {
		/* The thread's first call since the probe attached (or since
		 * its record was evicted or swept). */
		struct inflight n = {};
		fill(&n.ev, pid_tgid, comm, syscall, fd, count, lean);
		n.buf = buf;
		n.ev.flags = EVENT_PENDING;
		bpf_map_update_elem(&inflight, &tid, &n, BPF_NOEXIST);
		bump(COUNT_INSERTED);
	}
	bump(COUNT_STORED);
}

static __always_inline int on_entry(void *ctx, __u16 syscall, __u64 fd,
				    __u64 buf, __u64 count)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	char comm[COMM_LEN];
	struct config *cfg = wanted(pid_tgid, comm);
	if (!cfg)
		return 0;
	if (cfg->exit_mode) {
		store(pid_tgid, comm, syscall, fd, buf, count, cfg->top_by != 0);
		return 0;
	}
	/* Reading user memory costs a fault-safe copy per call: only when the
	 * user asked for details, and only for writes, whose buffer is filled
	 * at entry (a read's is not filled until the call returns). */
	int with_preview =
		cfg->verbose && IS_WRITE(syscall) && syscall < SYSCALL_READV;
	if (cfg->ring_slots) {
		/* Filled where it goes: no event on the stack to zero and copy.
		 * A slot's preview bytes stay as they were unless flagged. */
		struct ring_pos *pos = 0;
		struct event *slot = ring_reserve(cfg, &pos);
		if (!slot || !pos)
			return 0;
		/* The first 64 bytes only: an entry's event is that long (the
		 * monitor reads ret and lat_ns of completed calls alone), and
		 * the streaming monitor makes its slots 64 bytes, one cache
		 * line each. */
		fill(slot, pid_tgid, comm, syscall, fd, count, 0);
		if (with_preview)
			preview(slot, buf, count);
		ring_publish(pos);
		return 0;
	}
	struct event ev = {};
	fill(&ev, pid_tgid, comm, syscall, fd, count, 0);
	if (with_preview)
		preview(&ev, buf, count);
	perf_send(ctx, &ev, ENTRY_EVENT_SIZE);
	return 0;
}

/* floor(log2(v)), 0 for 0 and 1: a histogram slot. */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r, shift;
	r = (v > 0xFFFFFFFF) << 5;
	v >>= r;
	shift = (v > 0xFFFF) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* The masks below stay inside the row whatever the index: */
_Static_assert(LAT_SLOTS <= 64 && SIZE_SLOTS == 32, "the masks of aggregate()");
_Static_assert(__builtin_offsetof(struct top_value, lat_hist) + 64 * sizeof(__u32) <=
		       sizeof(struct top_value),
	       "lat_hist[slot & 63] within the row");

/* min(slot, last), in a register the compiler must keep: the masks at
 * the uses (which cannot change a clamped value) are then what the
 * verifier sees bound the index. Before 6.x, it loses the bound of a
 * clamp compiled as a conditional move, and rejects the access. */
static __always_inline __u32 clamp_slot(__u32 slot, __u32 last)
{
	if (slot > last)
		slot = last;
	asm volatile("" : "+r"(slot));
	return slot;
}

/* Two keys are the same row. */
static __always_inline int same_key(const struct top_key *a,
				    const struct top_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* The counts of `k`'s row, in a free slot at its first call; None when
 * no slot is free. `cache` is the calling thread's last slot for this
 * syscall (plus one; 0: none), in its in-flight record: a thread makes
 * call after call of the same row, and an array lookup and a key compare
 * cost less than the index's hash of a 32-byte key. A cached slot is good
 * while its row's key is ours (a slot recycled for another key is not;
 * a slot is only recycled once its process exited, and the key holds the
 * pid, except --by syscall, whose rows are never recycled). */
static __always_inline struct top_value *top_row(const struct top_key *k,
						 const char *comm,
						 __u32 *cache)
{
	struct top_row *r;
	__u32 slot = *cache;
	if (slot) {
		slot -= 1;
		r = bpf_map_lookup_elem(&top_rows, &slot);
		if (r && same_key(&r->key, k))
			return &r->v;
	}
	__u32 *at = bpf_map_lookup_elem(&top_index, k);
	if (at) {
		slot = *at;
		r = bpf_map_lookup_elem(&top_rows, &slot);
		if (!r)
			return 0;
		*cache = slot + 1;
		return &r->v;
	}
	if (bpf_map_pop_elem(&top_free, &slot))
		return 0;
	r = bpf_map_lookup_elem(&top_rows, &slot);
	if (!r)
		return 0;
	/* A free slot's counts are zero (the monitor clears a slot before
	 * freeing it) and no other program writes it: the key goes in before
	 * the index points at it. */
	r->key = *k;
	__builtin_memcpy(r->v.comm, comm, COMM_LEN);
	if (bpf_map_update_elem(&top_index, k, &slot, BPF_NOEXIST)) {
		/* Another CPU indexed the same key first: its slot, and
		 * this one back to the queue (its counts still zero). */
		bpf_map_push_elem(&top_free, &slot, 0);
		at = bpf_map_lookup_elem(&top_index, k);
		if (!at)
			return 0;
		slot = *at;
		r = bpf_map_lookup_elem(&top_rows, &slot);
		if (!r)
			return 0;
	}
	*cache = slot + 1;
	return &r->v;
}

/* One more error `err` for row `k` (or for its syscall's other row). */
static __always_inline void count_errno(const struct top_key *k, __u32 err,
					int in_other)
{
	__u64 *n;
	if (!in_other) {
		struct top_err_key ek = {};
		ek.key = *k;
		ek.err = err;
		n = bpf_map_lookup_elem(&top_errors, &ek);
		if (!n) {
			__u64 zero = 0;
			bpf_map_update_elem(&top_errors, &ek, &zero,
					    BPF_NOEXIST);
			n = bpf_map_lookup_elem(&top_errors, &ek);
		}
		if (n) {
			__sync_fetch_and_add(n, 1);
			return;
		}
	}
	__u32 slot = err < ERRNO_SLOTS ? err : ERRNO_SLOTS - 1;
	slot += (__u32)k->syscall * ERRNO_SLOTS;
	n = bpf_map_lookup_elem(&top_errors_other, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* probe top: the completed call `ev` into its row. Atomic adds: the row
 * is shared by the CPUs (a per-CPU table would cost its size times the
 * CPUs). */
static __always_inline void aggregate(const struct config *cfg,
				      struct inflight *f)
{
	const struct event *ev = &f->ev;
	__u32 s = ev->syscall;
	if (s >= SYSCALLS)
		return;
	struct top_key k = {};
	__u32 by = cfg->top_by;
	if (by != TOP_BY_SYSCALL)
		k.tgid = ev->tgid;
	if (by == TOP_BY_THREAD)
		k.tid = ev->pid;
	if (by == TOP_BY_FILE)
		k.fd = ev->fd;
	if (by == TOP_BY_PROCESS || by == TOP_BY_THREAD)
		__builtin_memcpy(k.comm, ev->comm, COMM_LEN);
	k.syscall = ev->syscall;
	int in_other = 0;
	struct top_value *v = top_row(&k, ev->comm, &f->slots[s]);
	if (!v) {
		v = bpf_map_lookup_elem(&top_other, &s);
		if (!v)
			return;
		in_other = 1;
	}
	__s64 ret = ev->ret;
	__sync_fetch_and_add(&v->bytes_req, ev->count);
	__sync_fetch_and_add(&v->lat_ns, ev->lat_ns);
	__u32 lat = clamp_slot(log2_slot(ev->lat_ns), LAT_SLOTS - 1);
	if (ret >= 0) {
		/* The success before the call (a reader between the two adds
		 * sees errors = calls - successes too low, never too high). */
		__sync_fetch_and_add(&v->bytes_xfer, ret);
		__u32 size = clamp_slot(log2_slot(ret), SIZE_SLOTS - 1);
		__sync_fetch_and_add(&v->size_hist[size & 31], 1);
		__sync_fetch_and_add(&v->lat_hist[lat & 63], 1);
		return;
	}
	__sync_fetch_and_add(&v->lat_hist[lat & 63], 1);
	count_errno(&k, (__u32)-ret, in_other);
}

static __always_inline int on_exit(void *ctx, __s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct inflight *f = bpf_map_lookup_elem(&inflight, &tid);
	if (!f || !(f->ev.flags & EVENT_PENDING)) {
		/* Not one of ours, or one whose entry came before us. */
		char comm[COMM_LEN];
		if (wanted(pid_tgid, comm))
			bump(COUNT_NO_ENTRY);
		return 0;
	}
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	/* -p: a record the target left pending (its return never seen) is
	 * keyed by a thread id that a process reusing the target's pid may
	 * have now: that process's return must not complete it. */
	if (cfg && cfg->target_start_off && !is_target(cfg, pid_tgid))
		return 0;
	/* Completed in place and sent from the record itself: no copy. */
	struct event *ev = &f->ev;
	ev->lat_ns = bpf_ktime_get_ns() - ev->ts_ns;
	ev->ret = ret;
	ev->flags = EVENT_COMPLETED;
	bump(COUNT_MATCHED);
	if (!cfg) {
		count_drop();
		return 0;
	}
	if (cfg->top_by) {
		aggregate(cfg, f);
		return 0;
	}
	/* A write's buffer held its bytes all along; a read's holds them now,
	 * as many as it returned. (Not for the vector calls: their buffer is
	 * the iovec array.) */
	if (cfg->verbose && ev->syscall < SYSCALL_READV)
		preview(ev, f->buf,
			IS_WRITE(ev->syscall) ? ev->count :
						(ret > 0 ? ret : 0));
	send(ctx, cfg, ev, sizeof(*ev));
	return 0;
}

/* readv, writev, preadv, pwritev, preadv2, pwritev2: the bytes asked for
 * are the sum of iov_len over the first IOV_SUMMED entries of the vector
 * (one 8-byte read of user memory each, for these calls only). An entry
 * that cannot be read ends the sum. */
static __always_inline __u64 iov_bytes(__u64 vec, __u64 vlen)
{
	__u64 sum = 0;
#pragma unroll
	for (int i = 0; i < IOV_SUMMED; i++) {
		__u64 len;
		if (i >= vlen ||
		    bpf_probe_read_user(&len, sizeof(len),
					(void *)(vec + i * 16 + 8)))
			break;
		sum += len;
	}
	return sum;
}

/* The entry of any call of the family: its first three arguments are the
 * fd, the buffer (or iovec array) and the count (or the vector's length). */
static __always_inline int family_entry(void *ctx, __u16 syscall, __u64 fd,
					__u64 buf, __u64 count)
{
	if (syscall >= SYSCALL_READV)
		count = iov_bytes(buf, count);
	return on_entry(ctx, syscall, fd, buf, count);
}

/* __x64_sys_read(const struct pt_regs *regs): since 4.17 the wrapper gets
 * the user's registers as one pointer, so the arguments are read from that
 * inner struct, not from the kprobe's own registers. */
static __always_inline int from_wrapper(void *ctx, __u16 syscall)
{
	const char *regs;
	__u64 fd = 0, buf = 0, count = 0;
	regs = (const char *)*(__u64 *)((char *)ctx + PT_REGS_DI);
	bpf_probe_read_kernel(&fd, sizeof(fd), regs + PT_REGS_DI);
	bpf_probe_read_kernel(&buf, sizeof(buf), regs + PT_REGS_SI);
	bpf_probe_read_kernel(&count, sizeof(count), regs + PT_REGS_DX);
	return family_entry(ctx, syscall, fd, buf, count);
}

/* Four programs per call of the family: kprobe and tracepoint entries,
 * kretprobe and tracepoint exits. The monitor attaches those of the
 * --syscalls asked for (read and write by default), of one method. */
#define FAMILY(name, id)                                                      \
	SEC("kprobe/__x64_sys_" #name)                                        \
	int kprobe_##name(void *ctx)                                          \
	{                                                                     \
		return from_wrapper(ctx, id);                                 \
	}                                                                     \
	SEC("tracepoint/syscalls/sys_enter_" #name)                           \
	int tracepoint_##name(struct sys_enter_rw_args *args)                 \
	{                                                                     \
		return family_entry(args, id, args->fd, args->buf,            \
				    args->count);                             \
	}                                                                     \
	SEC("kretprobe/__x64_sys_" #name)                                     \
	int kretprobe_##name(void *ctx)                                       \
	{                                                                     \
		return on_exit(ctx, *(__s64 *)((char *)ctx + PT_REGS_AX));    \
	}                                                                     \
	SEC("tracepoint/syscalls/sys_exit_" #name)                            \
	int tracepoint_##name##_exit(struct sys_exit_args *args)              \
	{                                                                     \
		return on_exit(args, args->ret);                              \
	}

FAMILY(read, SYSCALL_READ)
FAMILY(write, SYSCALL_WRITE)
FAMILY(pread64, SYSCALL_PREAD64)
FAMILY(pwrite64, SYSCALL_PWRITE64)
FAMILY(readv, SYSCALL_READV)
FAMILY(writev, SYSCALL_WRITEV)
FAMILY(preadv, SYSCALL_PREADV)
FAMILY(pwritev, SYSCALL_PWRITEV)
FAMILY(preadv2, SYSCALL_PREADV2)
FAMILY(pwritev2, SYSCALL_PWRITEV2)

/* The family's number for x86-64 syscall `nr`, SYSCALLS for any other. */
static __always_inline __u32 family_of(__u64 nr)
{
	if (nr <= 1)
		return nr == 0 ? SYSCALL_READ : SYSCALL_WRITE;
	if (nr >= 17 && nr <= 20)
		return SYSCALL_PREAD64 + (nr - 17);
	if (nr == 295 || nr == 296)
		return SYSCALL_PREADV + (nr - 295);
	if (nr == 327 || nr == 328)
		return SYSCALL_PREADV2 + (nr - 327);
	return SYSCALLS;
}

/* The current call is an ia32 one (its number is of the 32-bit table):
 * thread_info, first in task_struct, says so while the call runs. */
static __always_inline int ia32_call(const struct config *cfg)
{
	__u32 status = 0;
	const char *task = (const char *)bpf_get_current_task();
	bpf_probe_read_kernel(&status, sizeof(status),
			      task + cfg->compat_status_off);
	return status & TS_COMPAT;
}

/* A call of --syscalls of the family, not an ia32 one: its number in the
 * family, else SYSCALLS. The number test comes first: this runs for every
 * syscall of the machine. */
static __always_inline __u32 wanted_call(__u64 nr)
{
	__u32 s = family_of(nr);
	if (s >= SYSCALLS)
		return SYSCALLS;
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	if (!cfg || !(cfg->syscalls & (1U << s)) || ia32_call(cfg))
		return SYSCALLS;
	return s;
}

SEC("raw_tracepoint/sys_enter")
int raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 s = wanted_call(ctx->args[1]);
	if (s >= SYSCALLS)
		return 0;
	/* fd, buf and count are di, si and dx: dx first, 24 bytes, one read. */
	__u64 regs[3] = {};
	bpf_probe_read_kernel(regs, sizeof(regs),
			      (const char *)ctx->args[0] + PT_REGS_DX);
	return family_entry(ctx, s, regs[2], regs[1], regs[0]);
}

SEC("raw_tracepoint/sys_exit")
int raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	/* The number is not an argument here: it is the registers' orig_ax
	 * (a read on every syscall's exit; the tracepoint has it so too). */
	__u64 nr = ~0ULL;
	bpf_probe_read_kernel(&nr, sizeof(nr),
			      (const char *)ctx->args[0] + PT_REGS_ORIG_AX);
	if (wanted_call(nr) >= SYSCALLS)
		return 0;
	return on_exit(ctx, (__s64)ctx->args[1]);
}

/* Never called: it puts struct event, struct inflight and struct config in
 * the object's BTF, where tests/layouts.rs checks them against
 * src/app/abi.rs field by field. The loader appends only the .text
 * functions a program reaches, so it costs the probe nothing. */
__attribute__((noinline)) int probe_layouts(struct event *e, struct config *c,
					    struct inflight *f,
					    struct top_row *r,
					    struct top_err_key *k)
{
	return e != 0 && c != 0 && f != 0 && r != 0 && k != 0;
}

/* The same for struct ring_pos (a BPF function takes at most 5 arguments). */
__attribute__((noinline)) int probe_ring_layout(struct ring_pos *p)
{
	return p != 0;
}
