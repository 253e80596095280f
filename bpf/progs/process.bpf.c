/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Process sensor: exec, fork/clone and exit on scheduler tracepoints (tp_btf).
 *
 * Hooks: sched_process_exec (new image installed; argv resident), sched_process_fork (child fully
 * set up, cgroup included) and sched_process_exit (filtered to the last thread of a group).
 * The skeleton attaches them in this order: a child whose fork is seen has its exec seen too.
 */
#include "common.h"
#include "emit.h"
#include "task.h"
#include "path.h"

char LICENSE[] SEC("license") = "GPL";

#define TAIL_MAX (VIGIL_PATH_MAX * 2 + VIGIL_ARGS_MAX)

struct exec_scratch {
	struct vigil_exec_event ev;
	__u8 tail[TAIL_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} vigil_exec_scratch SEC(".maps");

/* Keep ABI types in BTF even where no program names them, so the Rust mirror can be generated. */
struct vigil_exec_event *unused_exec __attribute__((unused));
struct vigil_fork_event *unused_fork __attribute__((unused));
struct vigil_exit_event *unused_exit __attribute__((unused));
enum vigil_event_kind unused_kind __attribute__((unused));
enum vigil_stat unused_stat __attribute__((unused));
enum vigil_limits unused_limits __attribute__((unused));
enum vigil_proc_flags unused_flags __attribute__((unused));
enum vigil_abi unused_abi __attribute__((unused));
/* This object is the ABI's reference for gen-abi: it names every ABI type, used here or not. */
struct vigil_file_event *unused_file_event __attribute__((unused));
struct vigil_syscall_event *unused_syscall_event __attribute__((unused));
struct vigil_prefix_key *unused_prefix_key __attribute__((unused));
enum vigil_file_op unused_fop __attribute__((unused));
enum vigil_syscall unused_sys __attribute__((unused));
enum vigil_filter_action unused_action __attribute__((unused));
struct vigil_conn_event *unused_conn_event __attribute__((unused));
struct vigil_capture_event *unused_capture_event __attribute__((unused));
struct vigil_flow_key *unused_flow_key __attribute__((unused));
struct vigil_flow_value *unused_flow_value __attribute__((unused));
struct vigil_drop_key *unused_drop_key __attribute__((unused));
enum vigil_net_stat unused_net_stat __attribute__((unused));
enum vigil_conn_phase unused_conn_phase __attribute__((unused));
enum vigil_conn_role unused_conn_role __attribute__((unused));
enum vigil_close_reason unused_close_reason __attribute__((unused));
enum vigil_direction unused_direction __attribute__((unused));
struct vigil_enf_net_key *unused_enf_net_key __attribute__((unused));
struct vigil_enf_rule *unused_enf_rule __attribute__((unused));
struct vigil_enf_cfg *unused_enf_cfg __attribute__((unused));
struct vigil_enf_proc *unused_enf_proc __attribute__((unused));
struct vigil_enforce_event *unused_enforce_event __attribute__((unused));
enum vigil_enf_hook unused_enf_hook __attribute__((unused));
enum vigil_enf_outcome unused_enf_outcome __attribute__((unused));
enum vigil_enf_limits unused_enf_limits __attribute__((unused));
enum vigil_enf_dim unused_enf_dim __attribute__((unused));
struct vigil_cgroup_event *unused_cgroup_event __attribute__((unused));
struct vigil_budget *unused_budget __attribute__((unused));
enum vigil_cgroup_op unused_cgroup_op __attribute__((unused));
struct vigil_lat_key *unused_lat_key __attribute__((unused));
struct vigil_lat_value *unused_lat_value __attribute__((unused));
enum vigil_lat_metric unused_lat_metric __attribute__((unused));
enum vigil_lat_limits unused_lat_limits __attribute__((unused));
enum vigil_lat_stat unused_lat_stat __attribute__((unused));

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, exe_len, cwd_len, args_len, size;
	struct exec_scratch *s;
	struct vigil_exec_event *ev;
	struct file *exe_file;
	bool trunc, failed = false;
	int argc;

	if (vigil_paused)
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid) {
		stats__inc(VIGIL_EV_EXEC, VIGIL_STAT_FILTERED);
		return 0;
	}
	s = bpf_map_lookup_elem(&vigil_exec_scratch, &zero);
	if (!s)
		return 0;
	ev = &s->ev;
	ev->start_time_ns = task__start_time(task);
	ev->ppid = task__ppid(task);
	ev->uid = BPF_CORE_READ(task, cred, uid.val);
	ev->gid = BPF_CORE_READ(task, cred, gid.val);
	ev->euid = BPF_CORE_READ(task, cred, euid.val);
	ev->egid = BPF_CORE_READ(task, cred, egid.val);
	ev->flags = 0;
	ev->loginuid = (__u32)-1;
	if (!task__loginuid(task, &ev->loginuid))
		ev->flags |= VIGIL_F_NO_LOGINUID;
	ev->tty_dev = task__tty(task);
	argc = BPF_CORE_READ(bprm, argc);
	ev->args_count = argc > 0xffff ? 0xffff : argc; /* saturates */
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));

	exe_file = BPF_CORE_READ(bprm, file);
	exe_len = path__resolve(BPF_CORE_READ(exe_file, f_path.mnt), BPF_CORE_READ(exe_file, f_path.dentry),
				s->tail, &trunc);
	if (trunc)
		ev->flags |= VIGIL_F_EXE_TRUNCATED;
	exe_len &= VIGIL_PATH_MAX - 1;

	cwd_len = path__resolve(BPF_CORE_READ(task, fs, pwd.mnt), BPF_CORE_READ(task, fs, pwd.dentry),
				&s->tail[exe_len], &trunc);
	if (trunc)
		ev->flags |= VIGIL_F_CWD_TRUNCATED;
	cwd_len &= VIGIL_PATH_MAX - 1;

	args_len = task__args(task, &s->tail[(exe_len + cwd_len) & (VIGIL_PATH_MAX * 2 - 1)], &ev->flags,
			      &failed);
	if (failed || !exe_len)
		stats__inc(VIGIL_EV_EXEC, VIGIL_STAT_READ_ERROR);

	ev->exe_len = exe_len;
	ev->cwd_len = cwd_len;
	ev->args_len = args_len;
	size = sizeof(*ev) + exe_len + cwd_len + args_len;
	if (size > sizeof(*s))
		size = sizeof(*s);
	emit__header(&ev->hdr, VIGIL_EV_EXEC, size);
	emit__output(s, size, VIGIL_EV_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_fork, struct task_struct *parent, struct task_struct *child)
{
	struct vigil_fork_event *ev;
	__u32 pid = BPF_CORE_READ(child, pid), tgid = BPF_CORE_READ(child, tgid);
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	bool thread = pid != tgid;

	if (vigil_paused)
		return 0;
	if (parent_tgid == cfg_self_tgid || (thread && !cfg_emit_threads)) {
		stats__inc(VIGIL_EV_FORK, VIGIL_STAT_FILTERED);
		return 0;
	}
	ev = emit__reserve(sizeof(*ev), VIGIL_EV_FORK);
	if (!ev)
		return 0;
	emit__header(&ev->hdr, VIGIL_EV_FORK, sizeof(*ev));
	ev->hdr.pid = pid;
	ev->hdr.tgid = tgid;
	ev->hdr.cgroup_id = task__cgroup_id(child);
	ev->start_time_ns = BPF_CORE_READ(child, start_boottime);
	ev->parent_pid = BPF_CORE_READ(parent, pid);
	ev->parent_tgid = parent_tgid;
	ev->flags = thread ? VIGIL_F_THREAD : 0;
	ev->_pad = 0;
	BPF_CORE_READ_STR_INTO(&ev->comm, child, comm);
	emit__submit(ev, VIGIL_EV_FORK);
	return 0;
}

/*
 * Set by user space once its process table is seeded from /proc. Until then an exit may be of a
 * process that exec'd before vigil_exec was attached and is gone before the /proc scan reads it:
 * the agent knows nothing of its image, so the record carries the exe the kernel holds. Reading
 * it costs a path walk per exit, hence only during start-up.
 */
__u32 vigil_seeded = 0;

struct exit_scratch {
	struct vigil_exit_event ev;
	__u8 exe[VIGIL_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exit_scratch);
} vigil_exit_scratch SEC(".maps");

static __always_inline void exit__fill(struct vigil_exit_event *ev, struct task_struct *task,
				       __u32 size)
{
	__u32 code = BPF_CORE_READ(task, exit_code);

	emit__header(&ev->hdr, VIGIL_EV_EXIT, size);
	ev->start_time_ns = task__start_time(task);
	ev->ppid = task__ppid(task);
	ev->exit_code = code;
	ev->flags = (code & 0x80) ? VIGIL_F_CORE_DUMPED : 0;
	ev->exe_len = 0;
	ev->_pad = 0;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

/*
 * The record with the exe of mm->exe_file. This tracepoint fires before exit_mm() on recent
 * kernels (6.18 here); where it fires after (and for kernel threads) mm is NULL: no exe.
 */
static __always_inline void exit__emit_with_exe(struct task_struct *task)
{
	struct file *exe_file = BPF_CORE_READ(task, mm, exe_file);
	struct exit_scratch *s;
	__u32 zero = 0, len = 0, size;
	bool trunc = false;

	s = bpf_map_lookup_elem(&vigil_exit_scratch, &zero);
	if (!s)
		return;
	if (exe_file)
		len = path__resolve(BPF_CORE_READ(exe_file, f_path.mnt),
				    BPF_CORE_READ(exe_file, f_path.dentry), s->exe, &trunc);
	len &= VIGIL_PATH_MAX - 1;
	size = sizeof(s->ev) + len;
	exit__fill(&s->ev, task, size);
	s->ev.exe_len = len;
	if (trunc)
		s->ev.flags |= VIGIL_F_EXE_TRUNCATED;
	if (size <= sizeof(*s))
		emit__output(s, size, VIGIL_EV_EXIT);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_exit, struct task_struct *task)
{
	struct vigil_exit_event *ev;

	if (vigil_paused || !task__group_dead(task))
		return 0; /* a thread, not the process: not an event */
	if (BPF_CORE_READ(task, tgid) == cfg_self_tgid) {
		stats__inc(VIGIL_EV_EXIT, VIGIL_STAT_FILTERED);
		return 0;
	}
	if (!vigil_seeded) {
		exit__emit_with_exe(task);
		return 0;
	}
	ev = emit__reserve(sizeof(*ev), VIGIL_EV_EXIT);
	if (!ev)
		return 0;
	exit__fill(ev, task, sizeof(*ev));
	emit__submit(ev, VIGIL_EV_EXIT);
	return 0;
}

struct cgroup_scratch {
	struct vigil_cgroup_event ev;
	__u8 path[VIGIL_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgroup_scratch);
} vigil_cgroup_scratch SEC(".maps");

/* Only the cgroup v2 hierarchy (a hybrid host also has v1 hierarchies): the one of every task's
 * dfl_cgrp. */
static __always_inline int cgroup__emit(struct cgroup *cgrp, const char *path, __u8 op)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct cgroup_scratch *s;
	__u32 zero = 0, size;
	long n;

	if (vigil_paused || cgrp->root != t->cgroups->dfl_cgrp->root)
		return 0;
	s = bpf_map_lookup_elem(&vigil_cgroup_scratch, &zero);
	if (!s)
		return 0;
	emit__header(&s->ev.hdr, VIGIL_EV_CGROUP, 0);
	s->ev.id = cgrp->kn->id;
	s->ev.level = cgrp->level;
	s->ev.op = op;
	s->ev._pad = 0;
	n = bpf_probe_read_kernel_str(s->path, sizeof(s->path), path);
	if (n <= 0) {
		n = 1;
		stats__inc(VIGIL_EV_CGROUP, VIGIL_STAT_READ_ERROR);
	}
	s->ev.path_len = n - 1;
	size = sizeof(s->ev) + ((n - 1) & (VIGIL_PATH_MAX - 1));
	s->ev.hdr.size = size;
	if (size <= sizeof(*s))
		emit__output(s, size, VIGIL_EV_CGROUP);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(vigil_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	return cgroup__emit(cgrp, path, VIGIL_CG_MKDIR);
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(vigil_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	return cgroup__emit(cgrp, path, VIGIL_CG_RMDIR);
}
