/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Latency sensor: per-cgroup histograms aggregated in the kernel (vigil_lat_hist) that user space
 * reads periodically. No ring buffer: only the aggregated maps cross.
 *
 * Hooks, by family (user space loads only the families that are on):
 * - syscalls: tp_btf/sys_enter and tp_btf/sys_exit, which fire for every syscall; the class of a
 *   syscall number comes from vigil_lat_class (filled by user space; 0: not measured). tp_btf runs
 *   through the same bpf_trace_run path as raw_tp and, unlike syscalls:sys_enter_* tracepoints,
 *   fills no perf record. The entry time lives in task storage (no per-tid hash to clean up).
 * - run queue: sched_wakeup and sched_wakeup_new (woken), and sched_switch away from a task that
 *   is still runnable (preempted or yielding) start its clock; sched_switch to it stops it.
 * - block: block_io_start (in the submitter's context: the cgroup the request is charged to),
 *   block_rq_issue (clock starts: handed to the driver), the last block_rq_complete (stops).
 */
#include "common.h"
#include "hist.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);      /* sized by user space */
	__type(key, struct vigil_lat_key);
	__type(value, struct vigil_lat_value);
} vigil_lat_hist SEC(".maps");

/* Syscall number -> enum vigil_lat_metric (0: not measured). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_LAT_SYSCALL_NR_MAX);
	__type(key, __u32);
	__type(value, __u32);
} vigil_lat_class SEC(".maps");

struct lat_task {
	__u64 sys_ns;       /* syscall entered at; 0: none being measured */
	__u64 runq_ns;      /* runnable since; 0: not waiting */
	__u32 sys_metric;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct lat_task);
} vigil_lat_task SEC(".maps");

/* A block request between submission and completion, keyed by its struct request pointer. */
struct lat_rq {
	__u64 cgroup_id;
	__u64 issue_ns;     /* 0: submitted, not yet issued */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct lat_rq);
} vigil_lat_rq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_LAT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_lat_stats SEC(".maps");

/* What new histograms start from (a value is too large for the 512-byte stack). */
const struct vigil_lat_value lat_zero = {};

/* ----- helpers ----------------------------------------------------------------------------- */

static __always_inline void lat__stat(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&vigil_lat_stats, &stat);

	if (v)
		*v += 1;
}

/*
 * Counts one sample in the (cgroup, metric) histogram. A plain hash with atomic adds, not a
 * per-CPU one: a per-CPU value would cost 1.3 KB per CPU per entry, and user space reads totals.
 */
static __always_inline void lat__record(__u64 cgroup_id, __u32 metric, __u64 delta_ns)
{
	struct vigil_lat_key key = { .cgroup_id = cgroup_id, .metric = metric };
	struct vigil_lat_value *h;
	__u64 us = delta_ns / 1000;
	__u32 i;

	h = bpf_map_lookup_elem(&vigil_lat_hist, &key);
	if (!h) {
		/* Another CPU may create it meanwhile (NOEXIST fails); both then use that entry. */
		bpf_map_update_elem(&vigil_lat_hist, &key, &lat_zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&vigil_lat_hist, &key);
		if (!h) {
			lat__stat(VIGIL_LAT_HIST_FULL);
			return;
		}
	}
	i = hist__bucket(us);
	/* hist__bucket already caps i; the opaque asm keeps clang from dropping the check that
	 * the verifier needs to see. */
	asm volatile("" : "+r"(i));
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_us, us);
	if (i < VIGIL_LAT_BUCKETS)
		__sync_fetch_and_add(&h->buckets[i], 1);
}

static __always_inline struct lat_task *lat__task(struct task_struct *task, __u64 flags)
{
	struct lat_task *t = bpf_task_storage_get(&vigil_lat_task, task, 0, flags);

	if (!t && flags)
		lat__stat(VIGIL_LAT_NO_TASK_STORAGE);
	return t;
}

/* ----- syscalls ---------------------------------------------------------------------------- */

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_lat_sys_enter, struct pt_regs *regs, long id)
{
	__u32 nr = (__u32)id, *metric;
	struct lat_task *t;

	if (id < 0 || id >= VIGIL_LAT_SYSCALL_NR_MAX)
		return 0;
	metric = bpf_map_lookup_elem(&vigil_lat_class, &nr);
	if (!metric || !*metric || (bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid)
		return 0;
	t = lat__task(bpf_get_current_task_btf(), BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	t->sys_metric = *metric;
	t->sys_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_lat_sys_exit, struct pt_regs *regs, long ret)
{
	struct lat_task *t = lat__task(bpf_get_current_task_btf(), 0);
	__u64 start;

	/* No entry time: a syscall not measured, or one entered before the program was attached. */
	if (!t || !t->sys_ns)
		return 0;
	start = t->sys_ns;
	t->sys_ns = 0;
	lat__record(bpf_get_current_cgroup_id(), t->sys_metric, bpf_ktime_get_ns() - start);
	return 0;
}

/* ----- run queue --------------------------------------------------------------------------- */

/* The idle tasks (pid 0) and the agent are not measured. */
static __always_inline bool runq__skip(struct task_struct *p)
{
	return !p->pid || p->tgid == cfg_self_tgid;
}

static __always_inline void runq__start(struct task_struct *p)
{
	struct lat_task *t;

	if (runq__skip(p))
		return;
	t = lat__task(p, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t)
		t->runq_ns = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(vigil_lat_wakeup, struct task_struct *p)
{
	runq__start(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(vigil_lat_wakeup_new, struct task_struct *p)
{
	runq__start(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(vigil_lat_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct lat_task *t;
	__u64 start;

	/* TASK_RUNNING (0): switched out but still runnable, so it waits in the queue again. */
	if (prev_state == 0)
		runq__start(prev);
	if (runq__skip(next))
		return 0;
	t = lat__task(next, 0);
	if (!t || !t->runq_ns)
		return 0;
	start = t->runq_ns;
	t->runq_ns = 0;
	/* current is still prev here: next's cgroup is read from next (BTF loads, no helper). */
	lat__record(next->cgroups->dfl_cgrp->kn->id, VIGIL_LAT_RUNQ, bpf_ktime_get_ns() - start);
	return 0;
}

/* ----- block I/O --------------------------------------------------------------------------- */

/*
 * Attribution: the cgroup of the task that submitted the request (block_io_start runs in
 * blk_mq_submit_bio). At issue and completion the running task may be a kworker or whoever took
 * the interrupt. The blkcg of the request's bio is not used: it names a cgroup of the io
 * controller, which on a cgroup v1/v2 hybrid is not a v2 cgroup, and writeback is charged to
 * the dirtier only with the io and memory controllers on.
 */
SEC("tp_btf/block_io_start")
int BPF_PROG(vigil_lat_block_start, struct request *rq)
{
	struct lat_rq v = { .cgroup_id = bpf_get_current_cgroup_id() };
	__u64 key = (__u64)rq;

	/* A request pointer is reused once freed: this overwrites any stale entry. */
	if (bpf_map_update_elem(&vigil_lat_rq, &key, &v, BPF_ANY))
		lat__stat(VIGIL_LAT_RQ_FULL);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(vigil_lat_block_issue, struct request *rq)
{
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns();
	struct lat_rq *v = bpf_map_lookup_elem(&vigil_lat_rq, &key), fresh;

	/* A requeued request is issued again: its latency counts from the last issue. */
	if (v) {
		v->issue_ns = now;
		return 0;
	}
	/* Not seen at submission (flushes, passthrough): charged to the task issuing it. */
	fresh.cgroup_id = bpf_get_current_cgroup_id();
	fresh.issue_ns = now;
	if (bpf_map_update_elem(&vigil_lat_rq, &key, &fresh, BPF_ANY))
		lat__stat(VIGIL_LAT_RQ_FULL);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(vigil_lat_block_done, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	struct lat_rq *v = bpf_map_lookup_elem(&vigil_lat_rq, &key);

	if (!v || !v->issue_ns)
		return 0;
	/* A partial completion leaves the rest in flight (__data_len is what remains). */
	if (nr_bytes < rq->__data_len)
		return 0;
	lat__record(v->cgroup_id, VIGIL_LAT_BLOCK, bpf_ktime_get_ns() - v->issue_ns);
	bpf_map_delete_elem(&vigil_lat_rq, &key);
	return 0;
}
