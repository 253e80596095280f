/* SPDX-License-Identifier: GPL-2.0-only */
/* Reads of task_struct state: lineage, credentials, terminal, argv. CO-RE ladders live here. */
#ifndef VIGIL_TASK_H
#define VIGIL_TASK_H

#include "common.h"

static __always_inline __u32 task__ppid(struct task_struct *task)
{
	return BPF_CORE_READ(task, real_parent, tgid);
}

/* Process start (the thread-group leader's), CLOCK_BOOTTIME like /proc/PID/stat field 22. */
static __always_inline __u64 task__start_time(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

/* cgroup v2 id of any task (bpf_get_current_cgroup_id only covers current). */
static __always_inline __u64 task__cgroup_id(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

/* Returns false when the kernel has no audit support and so no login uid. */
static __always_inline bool task__loginuid(struct task_struct *task, __u32 *out)
{
	if (!bpf_core_field_exists(task->loginuid))
		return false;
	*out = BPF_CORE_READ(task, loginuid.val);
	return true;
}

/* Controlling terminal as (major << 20) | minor, 0 when there is none. */
static __always_inline __u32 task__tty(struct task_struct *task)
{
	struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);
	__u32 major, minor;

	if (!tty)
		return 0;
	major = BPF_CORE_READ(tty, driver, major);
	minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
	return (major << 20) | (minor & 0xfffff);
}

/* True when the last thread of the task's thread group is leaving. */
static __always_inline bool task__group_dead(struct task_struct *task)
{
	return BPF_CORE_READ(task, signal, live.counter) == 0;
}

/*
 * Copy the NUL-separated argv of the current image into out (VIGIL_ARGS_MAX bytes of room).
 * Called at sched_process_exec, when the kernel has just written the strings, so they are resident.
 * Sets *failed when the strings could not be read.
 */
static __always_inline __u32 task__args(struct task_struct *task, __u8 *out, __u32 *flags, bool *failed)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	__u32 max = cfg_args_max;
	__u64 total = end - start;
	__u32 len;

	if (!mm || end <= start)
		return 0;
	if (max > VIGIL_ARGS_MAX)
		max = VIGIL_ARGS_MAX;
	len = total > max ? max : (__u32)total;
	if (total > len)
		*flags |= VIGIL_F_ARGS_TRUNCATED;
	if (len > VIGIL_ARGS_MAX)
		return 0;
	if (bpf_probe_read_user(out, len, (void *)start)) {
		*failed = true;
		return 0;
	}
	return len;
}

#endif
