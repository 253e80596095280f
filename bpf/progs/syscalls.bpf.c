/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Security-sensitive syscalls: privilege (setuid family, capset), namespaces (unshare, setns,
 * clone/clone3 with CLONE_NEW*), mounts and roots, ptrace, memfd_create, execveat, bpf, raw and
 * packet sockets, dup2/dup3 of a socket onto stdio, signals, prctl, module loading, and io_uring
 * submissions (which would otherwise hide file and network activity from syscall hooks).
 *
 * Hooks: syscalls:sys_exit_* (arguments from the saved user registers, strings read at exit),
 * sys_enter_execveat (its registers are gone by exit when the exec succeeds), and
 * tp_btf/io_uring_submit_req.
 */
#include "common.h"
#include "emit.h"
#include "sys.h"

char LICENSE[] SEC("license") = "GPL";

#pragma clang diagnostic ignored "-Winitializer-overrides"

#define STR_MAX VIGIL_PATH_MAX
#define TAIL_MASK (VIGIL_PATH_MAX * 4 - 1)

struct sys_scratch {
	struct vigil_syscall_event ev;
	__u8 tail[VIGIL_PATH_MAX * 4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sys_scratch);
} vigil_sys_scratch SEC(".maps");


/* What one syscall asks of the common emitter. */
struct sys_call {
	__u32 syscall;
	__u64 args[VIGIL_SYS_ARGS];
	const void *str[VIGIL_SYS_STRS];   /* user strings, NULL for none */
	const void *raw;                   /* kernel bytes for str slot 0 (addresses), or NULL */
	__u32 raw_len;
	bool str0_kernel;                  /* str[0] is a kernel string, not a user one */
};

static __always_inline int sys__emit(long ret, struct sys_call *c)
{
	__u32 zero = 0, off = 0, size;
	struct vigil_syscall_event *ev;
	struct sys_scratch *s;

	if (sys__skip()) {
		stats__inc(VIGIL_EV_SYSCALL, VIGIL_STAT_FILTERED);
		return 0;
	}
	s = bpf_map_lookup_elem(&vigil_sys_scratch, &zero);
	if (!s)
		return 0;
	ev = &s->ev;
	ev->event_flags = 0;
	for (int i = 0; i < VIGIL_SYS_STRS; i++) {
		long n = 0;

		if (i == 0 && c->raw) {
			__u32 len = c->raw_len;

			BOUND(len, 63);
			if (!bpf_probe_read_kernel(s->tail, len, c->raw))
				n = len + 1;
		} else if (c->str[i]) {
			void *dst = &s->tail[off & (VIGIL_PATH_MAX * 2 - 1)];

			if (i == 0 && c->str0_kernel)
				n = bpf_probe_read_kernel_str(dst, STR_MAX, c->str[i]);
			else
				n = bpf_probe_read_user_str(dst, STR_MAX, c->str[i]);
			if (n <= 0)
				ev->event_flags |= VIGIL_F_READ_FAILED;
			else if (n >= STR_MAX)
				ev->event_flags |= VIGIL_F_PATH_TRUNCATED;
		}
		/* Strings are stored without their NUL. */
		n = n > 0 ? n - 1 : 0;
		ev->str_len[i] = n & (VIGIL_PATH_MAX - 1);
		off += ev->str_len[i];
	}
	if (ev->event_flags & VIGIL_F_READ_FAILED)
		stats__inc(VIGIL_EV_SYSCALL, VIGIL_STAT_READ_ERROR);
	ev->result = ret;
	ev->syscall = c->syscall;
	ev->_pad = 0;
	for (int i = 0; i < VIGIL_SYS_ARGS; i++)
		ev->args[i] = c->args[i];
	size = sizeof(*ev) + (off & TAIL_MASK);
	if (size > sizeof(*s))
		size = sizeof(*s);
	emit__header(&ev->hdr, VIGIL_EV_SYSCALL, size);
	if (emit__admit(ev->hdr.cgroup_id, VIGIL_EV_SYSCALL))
		emit__output(s, size, VIGIL_EV_SYSCALL);
	return 0;
}

static __always_inline int sys__filtered(void)
{
	stats__inc(VIGIL_EV_SYSCALL, VIGIL_STAT_FILTERED);
	return 0;
}

#define EXIT_PROG(name) \
	SEC("tracepoint/syscalls/sys_exit_" #name) \
	int vigil_sys_##name(struct trace_event_raw_sys_exit *ctx)

#define EMIT(...) do { struct sys_call c = { __VA_ARGS__ }; return sys__emit(ctx->ret, &c); } while (0)

/* Syscalls whose first N arguments are plain numbers, reported as they are. */
#define NUMERIC_PROG(name, id) \
	EXIT_PROG(name) \
	{ \
		struct pt_regs *r = sys__regs(); \
		EMIT(.syscall = id, .args = { SYS_ARG1(r), SYS_ARG2(r), SYS_ARG3(r), SYS_ARG4(r) }); \
	}

NUMERIC_PROG(ptrace, VIGIL_SYS_PTRACE)
NUMERIC_PROG(setuid, VIGIL_SYS_SETUID)
NUMERIC_PROG(setgid, VIGIL_SYS_SETGID)
NUMERIC_PROG(setreuid, VIGIL_SYS_SETREUID)
NUMERIC_PROG(setregid, VIGIL_SYS_SETREGID)
NUMERIC_PROG(setresuid, VIGIL_SYS_SETRESUID)
NUMERIC_PROG(setresgid, VIGIL_SYS_SETRESGID)
NUMERIC_PROG(setfsuid, VIGIL_SYS_SETFSUID)
NUMERIC_PROG(setfsgid, VIGIL_SYS_SETFSGID)
NUMERIC_PROG(unshare, VIGIL_SYS_UNSHARE)
NUMERIC_PROG(setns, VIGIL_SYS_SETNS)
NUMERIC_PROG(bpf, VIGIL_SYS_BPF)
NUMERIC_PROG(tkill, VIGIL_SYS_TKILL)
NUMERIC_PROG(tgkill, VIGIL_SYS_TGKILL)

/* capset: args = effective, permitted, inheritable (64-bit masks from the two u32 words). */
EXIT_PROG(capset)
{
	struct pt_regs *r = sys__regs();
	struct { __u32 effective, permitted, inheritable; } d[2] = {};

	bpf_probe_read_user(&d, sizeof(d), (void *)SYS_ARG2(r));
	EMIT(.syscall = VIGIL_SYS_CAPSET,
	     .args = { d[0].effective | ((__u64)d[1].effective << 32),
		       d[0].permitted | ((__u64)d[1].permitted << 32),
		       d[0].inheritable | ((__u64)d[1].inheritable << 32) });
}

#define CLONE_NEW_ANY (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | \
		       0x20000000 | 0x40000000 | 0x00000080)

/* clone/clone3: reported only when they create namespaces (fork events cover the rest). */
EXIT_PROG(clone)
{
	struct pt_regs *r = sys__regs();
	__u64 flags = SYS_ARG1(r);

	if (ctx->ret == 0 || !(flags & CLONE_NEW_ANY))
		return sys__filtered(); /* the child's return, or no namespace */
	EMIT(.syscall = VIGIL_SYS_CLONE, .args = { flags });
}

EXIT_PROG(clone3)
{
	struct pt_regs *r = sys__regs();
	__u64 flags = 0;

	bpf_probe_read_user(&flags, sizeof(flags), (void *)SYS_ARG1(r));
	if (ctx->ret == 0 || !(flags & CLONE_NEW_ANY))
		return sys__filtered();
	EMIT(.syscall = VIGIL_SYS_CLONE3, .args = { flags });
}

EXIT_PROG(mount)
{
	struct pt_regs *r = sys__regs();
	EMIT(.syscall = VIGIL_SYS_MOUNT, .args = { 0, 0, 0, SYS_ARG4(r) },
	     .str = { (void *)SYS_ARG1(r), (void *)SYS_ARG2(r), (void *)SYS_ARG3(r) });
}

EXIT_PROG(umount)
{
	struct pt_regs *r = sys__regs();
	EMIT(.syscall = VIGIL_SYS_UMOUNT2, .args = { 0, SYS_ARG2(r) }, .str = { (void *)SYS_ARG1(r) });
}

EXIT_PROG(chroot)
{
	struct pt_regs *r = sys__regs();
	EMIT(.syscall = VIGIL_SYS_CHROOT, .str = { (void *)SYS_ARG1(r) });
}

EXIT_PROG(pivot_root)
{
	struct pt_regs *r = sys__regs();
	EMIT(.syscall = VIGIL_SYS_PIVOT_ROOT, .str = { (void *)SYS_ARG1(r), (void *)SYS_ARG2(r) });
}

EXIT_PROG(memfd_create)
{
	struct pt_regs *r = sys__regs();
	EMIT(.syscall = VIGIL_SYS_MEMFD_CREATE, .args = { 0, SYS_ARG2(r) }, .str = { (void *)SYS_ARG1(r) });
}

/* socket: only packet sockets and raw sockets (sniffing, spoofing); others are counted. */
EXIT_PROG(socket)
{
	struct pt_regs *r = sys__regs();
	__u64 family = SYS_ARG1(r), type = SYS_ARG2(r);

	if (family != 17 /* AF_PACKET */ && (type & 0xf) != 3 /* SOCK_RAW */)
		return sys__filtered();
	EMIT(.syscall = VIGIL_SYS_SOCKET, .args = { family, type, SYS_ARG3(r) });
}

/*
 * dup2/dup3 of a socket onto fd 0, 1 or 2: the shape of a reverse shell. args = oldfd, newfd,
 * flags, socket family, peer port; str0 = the peer address (4 or 16 raw bytes).
 */
static __always_inline int sys__dup(struct trace_event_raw_sys_exit *ctx, __u32 id, __u64 flags)
{
	struct pt_regs *r = sys__regs();
	int oldfd = SYS_ARG1(r), newfd = SYS_ARG2(r);
	struct file *f;
	struct socket *sock;
	struct sock *sk;
	__u16 family, port;

	if (ctx->ret < 0 || newfd < 0 || newfd > 2)
		return sys__filtered();
	f = fd__file(newfd);
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & 0170000) != 0140000 /* S_IFSOCK */)
		return sys__filtered();
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == 10 /* AF_INET6 */) {
		struct sys_call c = { .syscall = id, .args = { oldfd, newfd, flags, family, port },
				      .raw = &sk->__sk_common.skc_v6_daddr, .raw_len = 16 };
		return sys__emit(ctx->ret, &c);
	}
	struct sys_call c = { .syscall = id, .args = { oldfd, newfd, flags, family, port },
			      .raw = &sk->__sk_common.skc_daddr, .raw_len = 4 };
	return sys__emit(ctx->ret, &c);
}

EXIT_PROG(dup2)
{
	return sys__dup(ctx, VIGIL_SYS_DUP2, 0);
}

EXIT_PROG(dup3)
{
	struct pt_regs *r = sys__regs();
	return sys__dup(ctx, VIGIL_SYS_DUP3, SYS_ARG3(r));
}

/* kill: signal 0 only probes for existence and is not reported. */
EXIT_PROG(kill)
{
	struct pt_regs *r = sys__regs();
	__u64 sig = SYS_ARG2(r);

	if (sig == 0)
		return sys__filtered();
	EMIT(.syscall = VIGIL_SYS_KILL, .args = { SYS_ARG1(r), sig });
}

/* prctl: only options that change privilege, tracing, identity or sandboxing. */
EXIT_PROG(prctl)
{
	struct pt_regs *r = sys__regs();
	__u64 opt = SYS_ARG1(r);

	switch (opt) {
	case 4:          /* PR_SET_DUMPABLE */
	case 15:         /* PR_SET_NAME */
	case 22:         /* PR_SET_SECCOMP */
	case 24:         /* PR_CAPBSET_DROP */
	case 35:         /* PR_SET_MM */
	case 36:         /* PR_SET_CHILD_SUBREAPER */
	case 38:         /* PR_SET_NO_NEW_PRIVS */
	case 47:         /* PR_CAP_AMBIENT */
	case 0x59616d61: /* PR_SET_PTRACER */
		break;
	default:
		return sys__filtered();
	}
	if (opt == 15)
		EMIT(.syscall = VIGIL_SYS_PRCTL, .args = { opt }, .str = { (void *)SYS_ARG2(r) });
	EMIT(.syscall = VIGIL_SYS_PRCTL, .args = { opt, SYS_ARG2(r), SYS_ARG3(r) });
}

EXIT_PROG(init_module)
{
	struct pt_regs *r = sys__regs();
	EMIT(.syscall = VIGIL_SYS_INIT_MODULE, .args = { 0, SYS_ARG2(r) }, .str = { 0, (void *)SYS_ARG3(r) });
}

EXIT_PROG(finit_module)
{
	struct pt_regs *r = sys__regs();
	EMIT(.syscall = VIGIL_SYS_FINIT_MODULE, .args = { SYS_ARG1(r), 0, SYS_ARG3(r) },
	     .str = { 0, (void *)SYS_ARG2(r) });
}

/*
 * execveat failures. A successful execveat is the exec event (one event per program start, as
 * in Falco), and sys_exit_execveat does not even fire after one; a failure keeps its registers,
 * but the arguments are saved at entry all the same, in an LRU map that forgets the entries of
 * successful execs. args = dirfd, flags; str0 = the path.
 */
struct execveat_args {
	__u64 dirfd;
	__u64 flags;
	const char *path;
};

/* LRU: an entry whose exec neither succeeded nor failed visibly (killed mid-exec) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct execveat_args);
} vigil_execveat_args SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execveat")
int vigil_sys_enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	struct execveat_args a = { .dirfd = ctx->args[0], .path = (void *)ctx->args[1], .flags = ctx->args[4] };
	__u64 id = bpf_get_current_pid_tgid();

	bpf_map_update_elem(&vigil_execveat_args, &id, &a, BPF_ANY);
	return 0;
}

EXIT_PROG(execveat)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct execveat_args *a = bpf_map_lookup_elem(&vigil_execveat_args, &id);
	struct execveat_args copy;

	if (!a)
		return 0;
	copy = *a;
	bpf_map_delete_elem(&vigil_execveat_args, &id);
	/* After a successful exec the old image's memory is gone: the path cannot be read. */
	EMIT(.syscall = VIGIL_SYS_EXECVEAT, .args = { copy.dirfd, copy.flags },
	     .str = { ctx->ret < 0 ? copy.path : NULL });
}

/* One io_uring request entering submission. args = opcode, user_data. */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(vigil_sys_io_uring_submit, struct io_kiocb *req)
{
	__u64 opcode = BPF_CORE_READ(req, opcode);

	struct sys_call c = { .syscall = VIGIL_SYS_IO_URING_SUBMIT,
			      .args = { opcode, BPF_CORE_READ(req, cqe.user_data) } };
	return sys__emit(0, &c);
}
