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
	VIGIL_EV_FILE = 4,
	VIGIL_EV_SYSCALL = 5,
	VIGIL_EV_CONN = 6,      /* a TCP connection changed phase (connect, accept, close, ...) */
	VIGIL_EV_CAPTURE = 7,   /* the first bytes of a DNS or HTTP message, parsed in user space */
	VIGIL_EV_ENFORCE = 8,   /* an enforcement rule blocked, killed or audited something */
	VIGIL_EV_CGROUP = 9,    /* a cgroup v2 directory was created or removed (identity) */
	VIGIL_EV_KIND_MAX = 10,
};

/* Per-kind counters kept by the kernel side; index = kind * VIGIL_STAT_MAX + stat. */
enum vigil_stat {
	VIGIL_STAT_SUBMITTED = 0,     /* records handed to the ring buffer */
	VIGIL_STAT_RINGBUF_FULL = 1,  /* reservation/output failed: the record is lost */
	VIGIL_STAT_READ_ERROR = 2,    /* a helper read failed: the record is sent, a field is missing */
	VIGIL_STAT_FILTERED = 3,      /* dropped on purpose in the kernel (self, threads off) */
	VIGIL_STAT_BUDGET = 4,        /* over its cgroup's event budget: not sent (per-cgroup counts
				       * in vigil_budget) */
	VIGIL_STAT_MAX = 5,
};

enum vigil_limits {
	VIGIL_COMM_LEN = 16,
	VIGIL_PATH_MAX = 4096,         /* exe and cwd are each at most PATH_MAX - 1 bytes */
	VIGIL_ARGS_MAX = 8192,         /* hard ceiling of the argv capture; config may lower it */
	VIGIL_PATH_DEPTH = 64,         /* steps (components + mount crossings) walked per path */
	VIGIL_PREFIX_MAX = 256,        /* bytes of a path the in-kernel prefix filter looks at */
	VIGIL_SYS_ARGS = 6,
	VIGIL_SYS_STRS = 3,
	VIGIL_CAPTURE_MAX = 512,       /* payload bytes captured per DNS/HTTP message */
};

/* Flags in exec/fork/exit records. */
enum vigil_proc_flags {
	VIGIL_F_ARGS_TRUNCATED = 1 << 0,
	VIGIL_F_EXE_TRUNCATED = 1 << 1,
	VIGIL_F_CWD_TRUNCATED = 1 << 2,
	VIGIL_F_THREAD = 1 << 3,       /* fork: a thread (CLONE_THREAD), not a process */
	VIGIL_F_CORE_DUMPED = 1 << 4,  /* exit */
	VIGIL_F_NO_LOGINUID = 1 << 5,  /* kernel built without audit: loginuid unknown */
	VIGIL_F_PATH_TRUNCATED = 1 << 6,  /* file/syscall: a path or string was cut at PATH_MAX */
	VIGIL_F_READ_FAILED = 1 << 7,     /* file/syscall: a user string could not be read */
	VIGIL_F_UNFILTERED = 1 << 8,      /* file: a path needs normalising ("..", ".", "//"): the
					   * kernel sent it unjudged, user space applies the filter */
};

/* What a file event did, whichever syscall did it. */
enum vigil_file_op {
	VIGIL_FOP_OPEN = 1,
	VIGIL_FOP_UNLINK = 2,
	VIGIL_FOP_RENAME = 3,
	VIGIL_FOP_MKDIR = 4,
	VIGIL_FOP_RMDIR = 5,
	VIGIL_FOP_CHMOD = 6,
	VIGIL_FOP_CHOWN = 7,
	VIGIL_FOP_LINK = 8,
	VIGIL_FOP_SYMLINK = 9,
	VIGIL_FOP_TRUNCATE = 10,
};

/* The syscall behind a file or syscall event (architecture-independent numbers). */
enum vigil_syscall {
	VIGIL_SYS_OPEN = 1,
	VIGIL_SYS_OPENAT = 2,
	VIGIL_SYS_OPENAT2 = 3,
	VIGIL_SYS_CREAT = 4,
	VIGIL_SYS_UNLINK = 5,
	VIGIL_SYS_UNLINKAT = 6,
	VIGIL_SYS_RENAME = 7,
	VIGIL_SYS_RENAMEAT = 8,
	VIGIL_SYS_RENAMEAT2 = 9,
	VIGIL_SYS_MKDIR = 10,
	VIGIL_SYS_MKDIRAT = 11,
	VIGIL_SYS_RMDIR = 12,
	VIGIL_SYS_CHMOD = 13,
	VIGIL_SYS_FCHMOD = 14,
	VIGIL_SYS_FCHMODAT = 15,
	VIGIL_SYS_FCHMODAT2 = 16,
	VIGIL_SYS_CHOWN = 17,
	VIGIL_SYS_LCHOWN = 18,
	VIGIL_SYS_FCHOWN = 19,
	VIGIL_SYS_FCHOWNAT = 20,
	VIGIL_SYS_LINK = 21,
	VIGIL_SYS_LINKAT = 22,
	VIGIL_SYS_SYMLINK = 23,
	VIGIL_SYS_SYMLINKAT = 24,
	VIGIL_SYS_TRUNCATE = 25,
	VIGIL_SYS_FTRUNCATE = 26,
	VIGIL_SYS_PTRACE = 40,
	VIGIL_SYS_SETUID = 41,
	VIGIL_SYS_SETGID = 42,
	VIGIL_SYS_SETREUID = 43,
	VIGIL_SYS_SETREGID = 44,
	VIGIL_SYS_SETRESUID = 45,
	VIGIL_SYS_SETRESGID = 46,
	VIGIL_SYS_SETFSUID = 47,
	VIGIL_SYS_SETFSGID = 48,
	VIGIL_SYS_CAPSET = 49,
	VIGIL_SYS_UNSHARE = 50,
	VIGIL_SYS_SETNS = 51,
	VIGIL_SYS_CLONE = 52,
	VIGIL_SYS_CLONE3 = 53,
	VIGIL_SYS_MOUNT = 54,
	VIGIL_SYS_UMOUNT2 = 55,
	VIGIL_SYS_CHROOT = 56,
	VIGIL_SYS_PIVOT_ROOT = 57,
	VIGIL_SYS_MEMFD_CREATE = 58,
	VIGIL_SYS_EXECVEAT = 59,
	VIGIL_SYS_BPF = 60,
	VIGIL_SYS_SOCKET = 61,
	VIGIL_SYS_DUP2 = 62,
	VIGIL_SYS_DUP3 = 63,
	VIGIL_SYS_KILL = 64,
	VIGIL_SYS_TKILL = 65,
	VIGIL_SYS_TGKILL = 66,
	VIGIL_SYS_PRCTL = 67,
	VIGIL_SYS_INIT_MODULE = 68,
	VIGIL_SYS_FINIT_MODULE = 69,
	VIGIL_SYS_IO_URING_SUBMIT = 70, /* one io_uring submission (not a syscall of its own) */
};

/* Values of the in-kernel path filter (an LPM trie of path prefixes). */
enum vigil_filter_action {
	VIGIL_FILTER_WATCH = 1,   /* report every access below, reads included */
	VIGIL_FILTER_IGNORE = 2,  /* report nothing below, modifications included */
	VIGIL_FILTER_MODIFY = 3,  /* report modifications below (inside an ignored tree), not reads */
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

/*
 * The last thread of a process exited. exit_code is the raw wait status (code << 8 | signal).
 * Variable tail: the exe path (exe_len bytes), only in records made while user space seeds its
 * process table from /proc, and only where the process still had its memory map.
 */
struct vigil_exit_event {
	struct vigil_event_header hdr;
	__u64 start_time_ns;
	__u32 ppid;
	__u32 exit_code;
	__u32 flags;         /* VIGIL_F_CORE_DUMPED, VIGIL_F_EXE_TRUNCATED */
	__u16 exe_len;
	__u16 _pad;
	__u8 comm[VIGIL_COMM_LEN];
	/* the tail follows */
};

/*
 * A file operation, reported at syscall exit with its result. Variable tail, in order:
 * path (path_len), base (base_len), path2 (path2_len), base2 (base2_len).
 * path/path2 are as the process gave them; base/base2 are the absolute directory a relative
 * path was resolved against (cwd or dirfd), empty for absolute paths. fd-based calls (fchmod,
 * fchown, ftruncate) carry the fd's own absolute path in `path`.
 */
struct vigil_file_event {
	struct vigil_event_header hdr;
	__s64 result;    /* the syscall's return: fd or 0, or -errno */
	__s64 length;    /* truncate/ftruncate */
	__u32 syscall;   /* enum vigil_syscall */
	__u32 op;        /* enum vigil_file_op */
	__u32 flags;     /* open flags, AT_* flags, RENAME_* flags */
	__u32 mode;      /* open/creat/mkdir/chmod mode */
	__s32 dirfd;     /* -100 = AT_FDCWD */
	__s32 dirfd2;
	__s32 fd;        /* fchmod/fchown/ftruncate: the fd; -1 otherwise */
	__u32 uid;       /* chown: new owner (-1 = unchanged) */
	__u32 gid;
	__u32 event_flags; /* VIGIL_F_PATH_TRUNCATED, VIGIL_F_READ_FAILED */
	__u16 path_len;
	__u16 base_len;
	__u16 path2_len;
	__u16 base2_len;
	/* the tail follows */
};

/*
 * A security-sensitive syscall, reported at exit. args[] are the syscall's arguments as the
 * kernel acted on them, except where docs/events.md says otherwise (capset, clone3, dup2/dup3,
 * io_uring). Strings (paths, names, raw addresses) follow in the tail: str0 | str1 | str2.
 */
struct vigil_syscall_event {
	struct vigil_event_header hdr;
	__s64 result;
	__u64 args[VIGIL_SYS_ARGS];
	__u32 syscall;   /* enum vigil_syscall */
	__u32 event_flags;
	__u16 str_len[VIGIL_SYS_STRS];
	__u16 _pad;
	/* the tail follows */
};

/* Network sensor counters (map vigil_net_stats, per CPU): losses outside the ring buffer. */
enum vigil_net_stat {
	VIGIL_NET_FLOW_MAP_FULL = 0,    /* a new UDP flow found vigil_udp_flows full: not counted */
	VIGIL_NET_DROP_MAP_FULL = 1,    /* a new drop key found vigil_drops full: not counted */
	VIGIL_NET_STAT_MAX = 2,
};

/* What a connection record reports. */
enum vigil_conn_phase {
	VIGIL_CONN_CONNECT = 1,         /* an active open reached ESTABLISHED */
	VIGIL_CONN_CONNECT_FAILED = 2,  /* an active open went from SYN_SENT to CLOSE */
	VIGIL_CONN_ACCEPT = 3,          /* accept()/accept4() returned the socket */
	VIGIL_CONN_CLOSE = 4,           /* an established connection's socket is destroyed */
};

enum vigil_conn_role {
	VIGIL_ROLE_CLIENT = 1,
	VIGIL_ROLE_SERVER = 2,
};

/* Why an established connection ended, from the states and resets seen. */
enum vigil_close_reason {
	VIGIL_CLOSE_LOCAL = 1,          /* this side sent the first FIN */
	VIGIL_CLOSE_PEER = 2,           /* the peer sent the first FIN */
	VIGIL_CLOSE_RESET_RECEIVED = 3,
	VIGIL_CLOSE_RESET_SENT = 4,
	VIGIL_CLOSE_ERROR = 5,          /* ended by another error (sk_err set) */
};

enum vigil_direction {
	VIGIL_DIR_EGRESS = 1,           /* sent by the local socket */
	VIGIL_DIR_INGRESS = 2,          /* received by the local socket */
};

/*
 * A TCP connection. hdr.pid/tgid/cgroup_id are the socket's owner as recorded in process context
 * (the connect() caller; the listener's owner for accepted sockets; for ACCEPT the accept() caller),
 * not whatever task the kernel was running when the state changed. Addresses are in network byte
 * order (IPv4 in the first 4 bytes), ports in host order. Counters are final on CLOSE only.
 */
struct vigil_conn_event {
	struct vigil_event_header hdr;
	__u64 cookie;              /* socket cookie (SO_COOKIE) */
	__u64 connect_latency_ns;  /* SYN sent -> ESTABLISHED (or -> failure); 0 if not measured */
	__u64 duration_ns;         /* CLOSE: ESTABLISHED -> CLOSE */
	__u64 bytes_sent;          /* CLOSE: bytes acked by the peer */
	__u64 bytes_received;      /* CLOSE: bytes received in order */
	__u32 segs_out;
	__u32 segs_in;
	__u32 srtt_us;
	__u32 retransmits;
	__u32 netns;               /* network namespace inode */
	__u32 sk_err;              /* CONNECT_FAILED: the socket error (0: aborted by its owner) */
	__u16 resets_sent;
	__u16 resets_received;
	__u16 local_port;
	__u16 remote_port;
	__u8 phase;                /* enum vigil_conn_phase */
	__u8 role;                 /* enum vigil_conn_role */
	__u8 family;               /* AF_INET or AF_INET6 */
	__u8 close_reason;         /* enum vigil_close_reason */
	__u32 _pad;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u8 comm[VIGIL_COMM_LEN]; /* the owner's */
};

/*
 * The first bytes of a packet's payload on a local socket, when they look like DNS (port 53) or
 * HTTP/1.x (a method or "HTTP/1."). hdr.pid/tgid are the socket's owner when known (0 if not).
 * The tail holds captured_len bytes of payload.
 */
struct vigil_capture_event {
	struct vigil_event_header hdr;
	__u64 cookie;
	__u32 netns;
	__u32 payload_len;         /* the payload's real length in this packet */
	__u16 local_port;
	__u16 remote_port;
	__u16 captured_len;
	__u8 family;
	__u8 protocol;             /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 direction;            /* enum vigil_direction */
	__u8 _pad[7];
	__u8 local_addr[16];
	__u8 remote_addr[16];
	/* the tail follows */
};

/* UDP flows, aggregated in the kernel (map vigil_udp_flows); user space reads and resets them. */
struct vigil_flow_key {
	__u64 cgroup_id;           /* the socket's cgroup */
	__u32 netns;
	__u16 local_port;
	__u16 remote_port;
	__u8 family;
	__u8 _pad[7];
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

struct vigil_flow_value {
	__u64 packets_sent;
	__u64 bytes_sent;
	__u64 packets_received;
	__u64 bytes_received;
	__u64 first_ns;
	__u64 last_ns;
	__u64 cookie;              /* the socket last seen */
	__u32 tgid;                /* the socket's owner when known, else 0 */
	__u32 pid;
	__u8 comm[VIGIL_COMM_LEN];
};

/* Packet drops counted in the kernel per key (map vigil_drops). */
struct vigil_drop_key {
	__u64 cgroup_id;           /* the socket's cgroup when the skb has one, else 0 */
	__u32 reason;              /* enum skb_drop_reason of the running kernel */
	__u32 netns;
	__u32 ifindex;
	__u8 protocol;             /* IP protocol when parsed, else 0 */
	__u8 _pad[3];
};

/* Enforcement: which hook a rule runs on. */
enum vigil_enf_hook {
	VIGIL_HOOK_CONNECT = 1,     /* cgroup connect4/connect6 */
	VIGIL_HOOK_SENDMSG = 2,     /* cgroup sendmsg4/sendmsg6 (unconnected UDP) */
	VIGIL_HOOK_BIND = 3,        /* cgroup bind4/bind6 */
	VIGIL_HOOK_EXEC = 4,        /* sched_process_exec: the executed file */
	VIGIL_HOOK_OPEN_WRITE = 5,  /* open for writing: the opened file */
	VIGIL_HOOK_MAX = 6,
};

/* What the kernel did about a match. */
enum vigil_enf_outcome {
	VIGIL_OUT_DENIED = 1,       /* the call failed with EPERM */
	VIGIL_OUT_KILLED = 2,       /* SIGKILL sent */
	VIGIL_OUT_AUDIT = 3,        /* audit mode: would have been blocked; nothing done */
	VIGIL_OUT_RATE_LIMITED = 4, /* a kill was due but the kill rate limit was reached */
	VIGIL_OUT_PROTECTED = 5,    /* a kill was due but the target is protected (pid 1, the agent,
				     * the allow-list) */
};

enum vigil_enf_limits {
	VIGIL_ENF_RULES_MAX = 64,   /* rules in force at once: one bit each in the masks */
	VIGIL_ENF_PATH_MAX = 256,   /* path bytes matched (the rest of a longer path is ignored) */
	VIGIL_ENF_NAME_MAX = 60,
	VIGIL_ENF_CGROUP_DEPTH = 8, /* cgroup ancestors searched for a workload scope */
};

/* Scope dimensions: a rule not constrained on one is in vigil_enf_cfg.any[dim]. */
enum vigil_enf_dim {
	VIGIL_DIM_UID = 0,
	VIGIL_DIM_EXE = 1,
	VIGIL_DIM_WORKLOAD = 2,     /* the acting process's cgroup (Kubernetes namespace, pod labels) */
	VIGIL_DIM_MAX = 3,
};

/*
 * Key of the destination trie (vigil_enf_net). The prefix always covers hook, protocol and port
 * (32 bits) then as many address bits as the rule's network has. IPv4 is stored IPv4-mapped
 * (::ffff:a.b.c.d) so both families share the trie. protocol 0 and port 0 mean "any": the
 * programs look up the four combinations.
 */
struct vigil_enf_net_key {
	__u32 prefixlen;
	__u8 hook;
	__u8 protocol;
	__u16 port;                 /* network byte order */
	__u8 addr[16];
};

/* One rule in force (vigil_enf_rules[id]). */
struct vigil_enf_rule {
	__u8 hook;                  /* enum vigil_enf_hook */
	__u8 kill;                  /* 1: SIGKILL, 0: deny */
	__u8 audit;                 /* 1: report only */
	__u8 in_use;
	__u8 name[VIGIL_ENF_NAME_MAX]; /* the rule's name (cut), for `vigil enforce status` */
};

/* Global settings (vigil_enf_cfg[0]), written by the agent that installed the rules. */
struct vigil_enf_cfg {
	__u64 any[VIGIL_DIM_MAX];   /* per dimension: rules not constrained on it */
	__u64 audit;                /* rules in audit mode */
	__u64 agent_start_ns;       /* the installing agent: never killed (tgid + start time) */
	__u32 agent_tgid;
	__u32 generation;           /* bumped at every install; events carry it */
	__u32 kills_per_sec;        /* rate limit on kills, all rules together */
	__u32 _pad;
};

/* Tags of a live process (vigil_enf_procs[tgid]), set at exec from its executable's path. */
struct vigil_enf_proc {
	__u64 exe_mask;             /* rules whose executable scope matches */
	__u8 protected_;            /* on the allow-list: never killed or denied */
	__u8 _pad[7];
};

/* Something was enforced (or audited). Tail: path_len bytes of path (exec, open). */
struct vigil_enforce_event {
	struct vigil_event_header hdr;
	__u64 rules;                /* every rule that matched (bits) */
	__u32 rule;                 /* the rule acted on: the lowest matching id */
	__u32 generation;
	__u32 uid;
	__u16 port;                 /* host order: destination (connect/sendmsg) or bound port */
	__u16 path_len;
	__u8 hook;
	__u8 outcome;               /* enum vigil_enf_outcome */
	__u8 family;
	__u8 protocol;
	__u32 _pad;
	__u8 addr[16];              /* destination or bound address (IPv4 in the first 4 bytes) */
	__u8 comm[VIGIL_COMM_LEN];
};

enum vigil_cgroup_op {
	VIGIL_CG_MKDIR = 1,
	VIGIL_CG_RMDIR = 2,
};

/*
 * A cgroup v2 directory appeared or went away: how the agent learns cgroup id -> path (and so
 * container identity) before the first process runs in it. Tail: path_len bytes of the path
 * relative to the cgroup v2 root. hdr.cgroup_id is the creating task's cgroup.
 */
struct vigil_cgroup_event {
	struct vigil_event_header hdr;
	__u64 id;                  /* the new cgroup's id (its directory's inode) */
	__u32 level;               /* depth below the root (the root is 0) */
	__u16 path_len;
	__u8 op;                   /* enum vigil_cgroup_op */
	__u8 _pad;
};

/*
 * A cgroup's event budget (map vigil_budget, LRU by cgroup id): a token bucket kept as the
 * time it would be full again, one event costing 1e9 / rate (bpf/lib/emit.h).
 */
struct vigil_budget {
	__u64 tat_ns;              /* boot time at which the bucket would be full again (GCRA) */
	__u64 dropped;             /* events this cgroup lost to its budget */
};

/* Key of the path-prefix filter trie. prefixlen is in bits, as BPF_MAP_TYPE_LPM_TRIE wants. */
struct vigil_prefix_key {
	__u32 prefixlen;
	__u8 data[VIGIL_PREFIX_MAX];
};

/*
 * Latency histograms, aggregated in the kernel (map vigil_lat_hist, LRU by key) and read
 * periodically by user space; nothing crosses per sample. Buckets are log-linear in µs with the
 * index math of bpf/lib/hist.h (= vigil_net::hist::bucket_index).
 */
enum vigil_lat_metric {
	VIGIL_LAT_SYSCALL_FILE = 1,     /* syscall enter -> exit, file I/O class */
	VIGIL_LAT_SYSCALL_NET = 2,      /* syscall enter -> exit, network I/O class */
	VIGIL_LAT_SYSCALL_OTHER = 3,    /* syscall enter -> exit, every other measured syscall */
	VIGIL_LAT_RUNQ = 4,             /* runnable (woken or preempted) -> on CPU */
	VIGIL_LAT_BLOCK = 5,            /* block request issued to the driver -> completed */
	VIGIL_LAT_METRIC_MAX = 6,
};

enum vigil_lat_limits {
	VIGIL_LAT_BUCKETS = 157,        /* 4 exact, 4 per power of two 2^2..2^39, one overflow */
	VIGIL_LAT_SYSCALL_NR_MAX = 1024, /* syscall numbers classified in vigil_lat_class */
};

/* Latency-sensor losses (map vigil_lat_stats, per CPU): samples that were not counted. */
enum vigil_lat_stat {
	VIGIL_LAT_HIST_FULL = 0,        /* the histogram could not be created */
	VIGIL_LAT_NO_TASK_STORAGE = 1,  /* task storage unavailable (allocation, recursion guard) */
	VIGIL_LAT_RQ_FULL = 2,          /* a block request could not be tracked */
	VIGIL_LAT_STAT_MAX = 3,
};

struct vigil_lat_key {
	__u64 cgroup_id;
	__u32 metric;                   /* enum vigil_lat_metric */
	__u32 _pad;
};

/* Cumulative since the entry was created (atomic adds; an evicted entry starts again at 0). */
struct vigil_lat_value {
	__u64 count;
	__u64 sum_us;
	__u64 buckets[VIGIL_LAT_BUCKETS];
};

#endif /* VIGIL_ABI_H */
