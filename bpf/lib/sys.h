/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Syscall arguments at syscall exit, and fd lookups.
 *
 * Programs run on syscalls:sys_exit_* only: the arguments are read from the user registers the
 * kernel saved at entry (they hold what the kernel acted on), and user strings are read now that
 * the syscall has faulted their pages in. This needs no entry program and no per-task map.
 */
#ifndef VIGIL_SYS_H
#define VIGIL_SYS_H

#include "common.h"

#define AT_FDCWD_VAL -100

static __always_inline struct pt_regs *sys__regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/*
 * bpf_task_pt_regs returns a trusted BTF pointer: plain loads (PT_REGS_PARMn_SYSCALL), one
 * instruction each, instead of a probe-read helper call per argument.
 */
#define SYS_ARG1(r) PT_REGS_PARM1_SYSCALL(r)
#define SYS_ARG2(r) PT_REGS_PARM2_SYSCALL(r)
#define SYS_ARG3(r) PT_REGS_PARM3_SYSCALL(r)
#define SYS_ARG4(r) PT_REGS_PARM4_SYSCALL(r)
#define SYS_ARG5(r) PT_REGS_PARM5_SYSCALL(r)

/* The agent's own syscalls, and everything once the agent is shutting down. */
static __always_inline bool sys__skip(void)
{
	return vigil_paused || (bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid;
}

/* The struct file behind fd in the current task, or NULL. */
static __always_inline struct file *fd__file(int fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#endif
