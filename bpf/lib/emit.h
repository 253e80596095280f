/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Ring-buffer output with batched wakeups and per-kind accounting.
 *
 * A wakeup per record costs ~2 µs; records are submitted with BPF_RB_NO_WAKEUP and the consumer
 * is woken only once cfg_wakeup_bytes are pending (user space also drains on a short timer).
 */
#ifndef VIGIL_EMIT_H
#define VIGIL_EMIT_H

#include "common.h"

/* Security channel: never sampled; every loss is counted in vigil_stats. Sized by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} vigil_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_EV_KIND_MAX * VIGIL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_stats SEC(".maps");

/* Per-cgroup budgets (rate 0: none). Set by user space before load. */
const volatile __u32 cfg_budget_rate = 0;   /* events per second per cgroup */
const volatile __u32 cfg_budget_burst = 0;  /* events a quiet cgroup may send at once */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct vigil_budget);
} vigil_budget SEC(".maps");

static __always_inline void stats__inc(__u32 kind, __u32 stat)
{
	__u32 key = kind * VIGIL_STAT_MAX + stat;
	__u64 *v = bpf_map_lookup_elem(&vigil_stats, &key);

	if (v)
		*v += 1;
}

/*
 * Wake the consumer whenever at least cfg_wakeup_bytes are pending. Below that, records wait for
 * the consumer's timer. Above it every record wakes it (~2 µs each): this only happens while the
 * consumer lags, and that cost in the producer is deliberate back-pressure. Waking only when the
 * threshold is crossed was measured: a watched-open storm then outran the consumer and lost 10%
 * of its events to a full ring buffer, where this loses none.
 */
static __always_inline __u64 emit__wakeup_flag(void)
{
	if (bpf_ringbuf_query(&vigil_events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/*
 * Fairness: a noisy cgroup cannot fill the shared ring buffer and starve the others. Each cgroup
 * has a token bucket; an event over budget is not sent and is counted, for its kind and for its
 * cgroup. The bucket is one word (GCRA: the time at which it would be full again) advanced with
 * compare-and-swap, so a cgroup flooding from every CPU at once gets its rate, not a multiple of
 * it. A swap lost to other CPUs BUDGET_TRIES times in a row counts as over budget.
 */
#define BUDGET_TRIES 4

static __always_inline bool emit__admit(__u64 cgroup, __u32 kind)
{
	struct vigil_budget *b, init = {};
	__u64 now, cost, slack, seen, tat;

	if (!cfg_budget_rate)
		return true;
	cost = 1000000000ULL / cfg_budget_rate;
	slack = cfg_budget_burst > 1 ? cost * (cfg_budget_burst - 1) : 0;
	now = bpf_ktime_get_boot_ns();
	b = bpf_map_lookup_elem(&vigil_budget, &cgroup);
	if (!b) {
		init.tat_ns = now + cost;
		bpf_map_update_elem(&vigil_budget, &cgroup, &init, BPF_NOEXIST);
		return true;
	}
	for (int i = 0; i < BUDGET_TRIES; i++) {
		seen = *(volatile __u64 *)&b->tat_ns;
		tat = seen > now ? seen : now;
		if (tat - now > slack)
			break;
		if (__sync_val_compare_and_swap(&b->tat_ns, seen, tat + cost) == seen)
			return true;
	}
	__sync_fetch_and_add(&b->dropped, 1);
	stats__inc(kind, VIGIL_STAT_BUDGET);
	return false;
}

static __always_inline void emit__header(struct vigil_event_header *h, __u16 kind, __u32 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->kind = kind;
	h->abi_version = VIGIL_ABI_VERSION;
	h->size = size;
	h->time_ns = bpf_ktime_get_boot_ns();
	h->pid = (__u32)id;
	h->tgid = id >> 32;
	h->cgroup_id = bpf_get_current_cgroup_id();
}

/* Copy a record built in scratch memory into the ring buffer (variable-size records). */
static __always_inline void emit__output(void *data, __u32 size, __u16 kind)
{
	if (bpf_ringbuf_output(&vigil_events, data, size, emit__wakeup_flag()))
		stats__inc(kind, VIGIL_STAT_RINGBUF_FULL);
	else
		stats__inc(kind, VIGIL_STAT_SUBMITTED);
}

/* Reserve a fixed-size record; on failure the loss is counted and NULL returned. */
static __always_inline void *emit__reserve(__u32 size, __u16 kind)
{
	void *rec = bpf_ringbuf_reserve(&vigil_events, size, 0);

	if (!rec)
		stats__inc(kind, VIGIL_STAT_RINGBUF_FULL);
	return rec;
}

static __always_inline void emit__submit(void *rec, __u16 kind)
{
	bpf_ringbuf_submit(rec, emit__wakeup_flag());
	stats__inc(kind, VIGIL_STAT_SUBMITTED);
}

#endif
