/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * In-kernel enforcement: generic programs that decide from maps the agent fills from rules with
 * an action. No code per rule; every decision is a fixed number of map lookups, however many
 * entries are in force.
 *
 * - deny: cgroup connect4/6, sendmsg4/6 and bind4/6 on the cgroup v2 root return "reject"
 *   (the caller gets EPERM; nothing leaves the host).
 * - kill: SIGKILL at exec (tp_btf/sched_process_exec: after the new image is installed, before
 *   it runs a single instruction) and when a file is opened for writing (at syscall exit: the
 *   open, with its O_CREAT/O_TRUNC effects, has happened; the process dies before it can write).
 *
 * Masks: each rule in force has an id (0..63) and a bit. A lookup per dimension gives the rules
 * that match on it; a rule matches when its bit survives all of them. Maps and links are pinned
 * by the agent, so enforcement holds while it restarts or after it dies.
 */
#include "common.h"
#include "sys.h"
#include "path.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define PF_KTHREAD 0x00200000
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_APPEND 02000
#define __O_TMPFILE 020000000

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} vigil_enf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_enf_net_key);
	__type(value, __u64);
} vigil_enf_net SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_ENF_RULES_MAX);
	__type(key, __u32);
	__type(value, struct vigil_enf_rule);
} vigil_enf_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_enf_cfg);
} vigil_enf_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} vigil_enf_uid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct vigil_enf_proc);
} vigil_enf_procs SEC(".maps");

/* cgroup id -> rules whose workload scope includes that cgroup (and everything below it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} vigil_enf_workload SEC(".maps");

/* Path tries: executable scope, allow-list, executed files, files opened for writing. */
#define PATH_TRIE(name, value_type)                              \
	struct {                                                 \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);             \
		__uint(max_entries, 16384);                      \
		__uint(map_flags, BPF_F_NO_PREALLOC);            \
		__type(key, struct vigil_prefix_key);            \
		__type(value, value_type);                       \
	} name SEC(".maps")

PATH_TRIE(vigil_enf_exe, __u64);
PATH_TRIE(vigil_enf_allow, __u8);
PATH_TRIE(vigil_enf_exec_path, __u64);
PATH_TRIE(vigil_enf_write_path, __u64);

/* Kill rate limit: kills in the current one-second window (approximate across CPUs). */
struct rate {
	__u64 window_ns;
	__u32 count;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate);
} vigil_enf_rate SEC(".maps");

/* Per outcome (enum vigil_enf_outcome) and the events lost to a full ring buffer (slot 0). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} vigil_enf_stats SEC(".maps");

struct enf_scratch {
	struct vigil_prefix_key key;
	__u8 path[VIGIL_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enf_scratch);
} vigil_enf_scratch SEC(".maps");

static __always_inline void enf_stat(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&vigil_enf_stats, &slot);

	if (v)
		*v += 1;
}

/* Index of the lowest set bit (m != 0), by de Bruijn multiplication. */
static const __u8 debruijn[64] = {
	0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4,
	62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
	63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
	46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6,
};

static __always_inline __u32 lowest_bit(__u64 m)
{
	return debruijn[(((m & -m) * 0x03f79d71b4cb0a89ULL) >> 58) & 63];
}

/* The effective uid (Falco's user.uid), not the real one bpf_get_current_uid_gid() gives. */
static __always_inline __u32 current_euid(void)
{
	return bpf_get_current_task_btf()->cred->euid.val;
}

/*
 * Rules whose workload scope includes the current task: the entries of its cgroup and of its
 * ancestors (a pod's cgroup is known before its containers', which closes the race with a
 * container's first exec).
 */
static __always_inline __u64 workload_mask(void)
{
	__u64 id = bpf_get_current_cgroup_id(), m = 0, *v;

	v = bpf_map_lookup_elem(&vigil_enf_workload, &id);
	if (v)
		m |= *v;
	for (int level = 1; level <= VIGIL_ENF_CGROUP_DEPTH; level++) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;
		v = bpf_map_lookup_elem(&vigil_enf_workload, &id);
		if (v)
			m |= *v;
	}
	return m;
}

/* Of the rules `m`, those whose uid, executable and workload scopes include the current task. */
static __always_inline __u64 scope_mask(const struct vigil_enf_cfg *cfg, __u64 m, bool exe_scope)
{
	__u32 uid = current_euid();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct vigil_enf_proc *p;
	__u64 *u;

	u = bpf_map_lookup_elem(&vigil_enf_uid, &uid);
	m &= cfg->any[VIGIL_DIM_UID] | (u ? *u : 0);
	if (exe_scope) {
		p = bpf_map_lookup_elem(&vigil_enf_procs, &tgid);
		m &= cfg->any[VIGIL_DIM_EXE] | (p ? p->exe_mask : 0);
	}
	if (m & ~cfg->any[VIGIL_DIM_WORKLOAD])
		m &= cfg->any[VIGIL_DIM_WORKLOAD] | workload_mask();
	return m;
}

/* Reports a decision; the path (exec/open) is in the per-CPU scratch. */
static __always_inline void enf_emit(const struct vigil_enf_cfg *cfg, __u64 rules, __u8 hook,
				     __u8 outcome, const struct vigil_enf_net_key *net,
				     const __u8 *path, __u32 path_len)
{
	struct {
		struct vigil_enforce_event ev;
		__u8 path[VIGIL_ENF_PATH_MAX];
	} *r;
	__u64 id = bpf_get_current_pid_tgid();

	enf_stat(outcome);
	r = bpf_ringbuf_reserve(&vigil_enf_events, sizeof(*r), 0);
	if (!r) {
		enf_stat(0);
		return;
	}
	r->ev.hdr.kind = VIGIL_EV_ENFORCE;
	r->ev.hdr.abi_version = VIGIL_ABI_VERSION;
	r->ev.hdr.time_ns = bpf_ktime_get_boot_ns();
	r->ev.hdr.pid = (__u32)id;
	r->ev.hdr.tgid = id >> 32;
	r->ev.hdr.cgroup_id = bpf_get_current_cgroup_id();
	r->ev.rules = rules;
	r->ev.rule = lowest_bit(rules);
	r->ev.generation = cfg->generation;
	r->ev.uid = current_euid();
	r->ev.hook = hook;
	r->ev.outcome = outcome;
	r->ev._pad = 0;
	bpf_get_current_comm(r->ev.comm, sizeof(r->ev.comm));
	if (net) {
		r->ev.port = bpf_ntohs(net->port);
		r->ev.protocol = net->protocol;
		r->ev.family = net->addr[10] == 0xff && net->addr[11] == 0xff &&
				       !net->addr[0] && !net->addr[8] ? 2 : 10;
		if (r->ev.family == 2) {
			__builtin_memset(r->ev.addr, 0, 16);
			__builtin_memcpy(r->ev.addr, &net->addr[12], 4);
		} else {
			__builtin_memcpy(r->ev.addr, net->addr, 16);
		}
	} else {
		r->ev.port = 0;
		r->ev.protocol = 0;
		r->ev.family = 0;
		__builtin_memset(r->ev.addr, 0, 16);
	}
	path_len &= VIGIL_ENF_PATH_MAX - 1;
	r->ev.path_len = path_len;
	if (path && path_len)
		bpf_probe_read_kernel(r->path, path_len, path);
	r->ev.hdr.size = sizeof(r->ev) + path_len;
	/* No wakeup: the agent drains on its timer, after the sensors' records of the same moment. */
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

/* ---- deny: connect, sendmsg, bind ---- */

static __always_inline int net_check(struct bpf_sock_addr *ctx, __u8 hook, bool v6)
{
	struct vigil_enf_net_key k = {};
	struct vigil_enf_cfg *cfg;
	__u32 zero = 0;
	__u64 m = 0, *v;
	__u16 port;
	__u8 proto;

	if (v6) {
		__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1];
		__u32 a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];

		__builtin_memcpy(&k.addr[0], &a0, 4);
		__builtin_memcpy(&k.addr[4], &a1, 4);
		__builtin_memcpy(&k.addr[8], &a2, 4);
		__builtin_memcpy(&k.addr[12], &a3, 4);
	} else {
		__u32 a = ctx->user_ip4;

		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], &a, 4);
	}
	port = (__u16)ctx->user_port;
	proto = ctx->protocol;
	k.hook = hook;
	k.prefixlen = 32 + 128;
	/* (protocol, port), (any, port), (protocol, any), (any, any). */
	for (int i = 0; i < 4; i++) {
		k.protocol = i & 1 ? 0 : proto;
		k.port = i & 2 ? 0 : port;
		v = bpf_map_lookup_elem(&vigil_enf_net, &k);
		if (v)
			m |= *v;
	}
	if (!m)
		return 1;
	cfg = bpf_map_lookup_elem(&vigil_enf_cfg, &zero);
	if (!cfg)
		return 1;
	m = scope_mask(cfg, m, true);
	if (!m)
		return 1;
	k.protocol = proto;
	k.port = port;
	if (m & ~cfg->audit) {
		enf_emit(cfg, m & ~cfg->audit, hook, VIGIL_OUT_DENIED, &k, NULL, 0);
		return 0;
	}
	enf_emit(cfg, m, hook, VIGIL_OUT_AUDIT, &k, NULL, 0);
	return 1;
}

SEC("cgroup/connect4")
int vigil_enf_connect4(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, VIGIL_HOOK_CONNECT, false);
}

SEC("cgroup/connect6")
int vigil_enf_connect6(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, VIGIL_HOOK_CONNECT, true);
}

SEC("cgroup/sendmsg4")
int vigil_enf_sendmsg4(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, VIGIL_HOOK_SENDMSG, false);
}

SEC("cgroup/sendmsg6")
int vigil_enf_sendmsg6(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, VIGIL_HOOK_SENDMSG, true);
}

SEC("cgroup/bind4")
int vigil_enf_bind4(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, VIGIL_HOOK_BIND, false);
}

SEC("cgroup/bind6")
int vigil_enf_bind6(struct bpf_sock_addr *ctx)
{
	return net_check(ctx, VIGIL_HOOK_BIND, true);
}

/* ---- kill: exec, open for writing ---- */

/* Fills the scratch trie key with path + NUL (an exact entry is stored the same way). */
static __always_inline struct vigil_prefix_key *path_key(struct enf_scratch *s, __u32 len)
{
	__u32 n = len < VIGIL_ENF_PATH_MAX - 1 ? len : VIGIL_ENF_PATH_MAX - 1;

	n &= VIGIL_ENF_PATH_MAX - 1;
	bpf_probe_read_kernel(s->key.data, n, s->path);
	s->key.data[n & (VIGIL_ENF_PATH_MAX - 1)] = 0;
	s->key.prefixlen = (n + 1) * 8;
	return &s->key;
}

static __always_inline __u64 trie_mask(void *trie, struct vigil_prefix_key *key)
{
	__u64 *v = bpf_map_lookup_elem(trie, key);

	return v ? *v : 0;
}

static __always_inline bool kill_allowed(struct vigil_enf_cfg *cfg)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct vigil_enf_proc *p;

	if (tgid == 1 || (t->flags & PF_KTHREAD))
		return false;
	if (tgid == cfg->agent_tgid && t->group_leader->start_time == cfg->agent_start_ns)
		return false;
	p = bpf_map_lookup_elem(&vigil_enf_procs, &tgid);
	return !(p && p->protected_);
}

static __always_inline bool rate_ok(struct vigil_enf_cfg *cfg)
{
	__u32 zero = 0;
	struct rate *r = bpf_map_lookup_elem(&vigil_enf_rate, &zero);
	__u64 now = bpf_ktime_get_boot_ns();

	if (!r)
		return false;
	if (now - r->window_ns >= 1000000000ULL) {
		r->window_ns = now;
		r->count = 0;
	}
	if (r->count >= cfg->kills_per_sec)
		return false;
	__sync_fetch_and_add(&r->count, 1);
	return true;
}

static __always_inline void kill_or_audit(struct vigil_enf_cfg *cfg, __u64 m, __u8 hook,
					  struct enf_scratch *s, __u32 len)
{
	__u64 enforce = m & ~cfg->audit;
	__u8 outcome;

	if (!enforce)
		outcome = VIGIL_OUT_AUDIT;
	else if (!kill_allowed(cfg))
		outcome = VIGIL_OUT_PROTECTED;
	else if (!rate_ok(cfg))
		outcome = VIGIL_OUT_RATE_LIMITED;
	else if (bpf_send_signal(SIGKILL))
		outcome = VIGIL_OUT_RATE_LIMITED;
	else
		outcome = VIGIL_OUT_KILLED;
	enf_emit(cfg, enforce ? enforce : m, hook, outcome, NULL, s->path, len);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_enf_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32, len;
	struct vigil_enf_proc tags = {};
	struct vigil_prefix_key *key;
	struct vigil_enf_cfg *cfg;
	struct enf_scratch *s;
	struct file *f;
	bool truncated;
	__u8 *allow;
	__u64 m;

	s = bpf_map_lookup_elem(&vigil_enf_scratch, &zero);
	cfg = bpf_map_lookup_elem(&vigil_enf_cfg, &zero);
	if (!s || !cfg)
		return 0;
	f = bprm->file;
	len = path__resolve(f->f_path.mnt, f->f_path.dentry, s->path, &truncated);
	key = path_key(s, len);

	/* A new image: the process's tags are those of its new executable. */
	tags.exe_mask = trie_mask(&vigil_enf_exe, key);
	allow = bpf_map_lookup_elem(&vigil_enf_allow, key);
	tags.protected_ = allow ? 1 : 0;
	if (tags.exe_mask || tags.protected_)
		bpf_map_update_elem(&vigil_enf_procs, &tgid, &tags, BPF_ANY);
	else
		bpf_map_delete_elem(&vigil_enf_procs, &tgid);

	m = trie_mask(&vigil_enf_exec_path, key);
	if (!m)
		return 0;
	m = scope_mask(cfg, m, false);
	if (m)
		kill_or_audit(cfg, m, VIGIL_HOOK_EXEC, s, len);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_enf_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;

	if (task->pid == task->tgid)
		bpf_map_delete_elem(&vigil_enf_procs, &tgid);
	return 0;
}

/* A successful open with write intent: resolve the opened file and check it. */
static __always_inline int open_check(long ret, __u64 flags)
{
	__u32 zero = 0, len;
	struct vigil_prefix_key *key;
	struct vigil_enf_cfg *cfg;
	struct enf_scratch *s;
	struct file *f;
	bool truncated;
	__u64 m;

	if (ret < 0 ||
	    ((flags & O_ACCMODE) == 0 && !(flags & (O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE))))
		return 0;
	s = bpf_map_lookup_elem(&vigil_enf_scratch, &zero);
	cfg = bpf_map_lookup_elem(&vigil_enf_cfg, &zero);
	f = fd__file(ret);
	if (!s || !cfg || !f)
		return 0;
	len = path__resolve(BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry), s->path,
			    &truncated);
	key = path_key(s, len);
	m = trie_mask(&vigil_enf_write_path, key);
	if (!m)
		return 0;
	m = scope_mask(cfg, m, true);
	if (m)
		kill_or_audit(cfg, m, VIGIL_HOOK_OPEN_WRITE, s, len);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int vigil_enf_openat(struct trace_event_raw_sys_exit *ctx)
{
	return open_check(ctx->ret, SYS_ARG3(sys__regs()));
}

SEC("tracepoint/syscalls/sys_exit_open")
int vigil_enf_open(struct trace_event_raw_sys_exit *ctx)
{
	return open_check(ctx->ret, SYS_ARG2(sys__regs()));
}

SEC("tracepoint/syscalls/sys_exit_creat")
int vigil_enf_creat(struct trace_event_raw_sys_exit *ctx)
{
	return open_check(ctx->ret, O_CREAT | O_TRUNC | 1);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int vigil_enf_openat2(struct trace_event_raw_sys_exit *ctx)
{
	__u64 flags = 0;

	/* struct open_how starts with the flags. */
	bpf_probe_read_user(&flags, sizeof(flags), (void *)SYS_ARG3(sys__regs()));
	return open_check(ctx->ret, flags);
}
