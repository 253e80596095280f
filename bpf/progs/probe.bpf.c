/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Feature probes: one trivial program per hook kind. `vigil probe` loads (and where a target is
 * implied, attaches) each on its own, so "supported" means "loads here", not "the kernel has it".
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_process_exec")
int BPF_PROG(probe_tp_btf) { return 0; }

SEC("raw_tp/sched_process_exec")
int probe_raw_tp(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep")
int probe_kprobe(void *ctx) { return 0; }

SEC("fentry/do_nanosleep")
int BPF_PROG(probe_fentry) { return 0; }

SEC("lsm/bprm_check_security")
int BPF_PROG(probe_lsm) { return 0; }

SEC("perf_event")
int probe_perf_event(void *ctx) { return 0; }

SEC("tc")
int probe_tc(struct __sk_buff *skb) { return 0; }

SEC("xdp")
int probe_xdp(struct xdp_md *ctx) { return XDP_PASS; }

SEC("cgroup_skb/egress")
int probe_cgroup_skb(struct __sk_buff *skb) { return 1; }

SEC("cgroup/connect4")
int probe_cgroup_sock_addr(struct bpf_sock_addr *ctx) { return 1; }

/* bpf_loop (5.17+) bounds the dentry walk of every path the sensors report. */
static long probe_loop_cb(__u32 i, void *ctx) { return 1; }

SEC("raw_tp/sched_process_exec")
int probe_bpf_loop(void *ctx)
{
	bpf_loop(1, probe_loop_cb, NULL, 0);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_ringbuf SEC(".maps");

SEC("raw_tp/sched_process_exec")
int probe_ringbuf_output(void *ctx)
{
	__u64 v = 0;

	bpf_ringbuf_output(&probe_ringbuf, &v, sizeof(v), BPF_RB_NO_WAKEUP);
	return 0;
}
