/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The contract between Vigil's BPF programs and user space.
 *
 * Every struct, limit and event kind that crosses the kernel/user boundary is defined here and
 * nowhere else. crates/vigil-abi is generated from the BTF that clang emits for this header
 * (`cargo run -p vigil-bpf --bin gen-abi`), and a test checks that the two never drift.
 *
 * Rules: fixed-width types, explicit padding, append-only. Numbers are never reused; a layout
 * change bumps VIGIL_ABI_VERSION. Constants are enum members so that they reach BTF (and so Rust).
 */
#ifndef VIGIL_ABI_H
#define VIGIL_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum vigil_abi {
	VIGIL_ABI_VERSION = 1,
};

/* Event kinds: the first field of every record. Never renumber. */
enum vigil_event_kind {
	VIGIL_EV_EXEC = 1,
	VIGIL_EV_FORK = 2,
	VIGIL_EV_EXIT = 3,
	VIGIL_EV_KIND_MAX = 4,
};

/* Per-kind counters kept by the kernel side; index = kind * VIGIL_STAT_MAX + stat. */
enum vigil_stat {
	VIGIL_STAT_SUBMITTED = 0,     /* records handed to the ring buffer */
	VIGIL_STAT_RINGBUF_FULL = 1,  /* reservation/output failed: the record is lost */
	VIGIL_STAT_READ_ERROR = 2,    /* a helper read failed: the record is sent, a field is missing */
	VIGIL_STAT_FILTERED = 3,      /* dropped on purpose in the kernel (self, threads off) */
	VIGIL_STAT_MAX = 4,
};

enum vigil_limits {
	VIGIL_COMM_LEN = 16,
	VIGIL_PATH_MAX = 4096,         /* exe and cwd are each at most PATH_MAX - 1 bytes */
	VIGIL_ARGS_MAX = 8192,         /* hard ceiling of the argv capture; config may lower it */
	VIGIL_PATH_DEPTH = 64,         /* steps (components + mount crossings) walked per path */
};

/* Flags in exec/fork/exit records. */
enum vigil_proc_flags {
	VIGIL_F_ARGS_TRUNCATED = 1 << 0,
	VIGIL_F_EXE_TRUNCATED = 1 << 1,
	VIGIL_F_CWD_TRUNCATED = 1 << 2,
	VIGIL_F_THREAD = 1 << 3,       /* fork: a thread (CLONE_THREAD), not a process */
	VIGIL_F_CORE_DUMPED = 1 << 4,  /* exit */
	VIGIL_F_NO_LOGINUID = 1 << 5,  /* kernel built without audit: loginuid unknown */
};

/* Common header. pid/tgid are the subject's (for fork: the child's). time_ns is CLOCK_BOOTTIME. */
struct vigil_event_header {
	__u16 kind;
	__u16 abi_version;
	__u32 size;        /* whole record, header and tail included */
	__u64 time_ns;
	__u32 pid;
	__u32 tgid;
	__u64 cgroup_id;   /* cgroup v2 id = inode number of the cgroup directory */
};

/*
 * Exec, emitted once the new image is installed. Variable tail, in order:
 * exe path (exe_len bytes), cwd (cwd_len bytes), argv (args_len bytes, each argument NUL-ended).
 */
struct vigil_exec_event {
	struct vigil_event_header hdr;
	__u64 start_time_ns; /* CLOCK_BOOTTIME of the process start (fork), not of this exec */
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 loginuid;
	__u32 tty_dev;       /* (major << 20) | minor, 0 without a controlling terminal */
	__u32 flags;
	__u16 exe_len;
	__u16 cwd_len;
	__u16 args_len;
	__u16 args_count;    /* argc of the exec, saturating at 65535 */
	__u8 comm[VIGIL_COMM_LEN];
	/* the tail follows */
};

/* A new process or thread. hdr.pid/tgid is the child; parent_* is the creator. */
struct vigil_fork_event {
	struct vigil_event_header hdr;
	__u64 start_time_ns;
	__u32 parent_pid;
	__u32 parent_tgid;
	__u32 flags;
	__u32 _pad;
	__u8 comm[VIGIL_COMM_LEN];
};

/* The last thread of a process exited. exit_code is the raw wait status (code << 8 | signal). */
struct vigil_exit_event {
	struct vigil_event_header hdr;
	__u64 start_time_ns;
	__u32 ppid;
	__u32 exit_code;
	__u32 flags;
	__u32 _pad;
	__u8 comm[VIGIL_COMM_LEN];
};

#endif /* VIGIL_ABI_H */
