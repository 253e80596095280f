/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * File sensor: open/creat, unlink, rename, mkdir/rmdir, chmod, chown, link, symlink, truncate.
 *
 * Hooks: syscalls:sys_exit_* tracepoints, one per syscall, so unrelated syscalls pay nothing.
 * Arguments come from the saved user registers and strings are read at exit (see sys.h).
 * In-kernel filter: a read-only open is reported only below a watched prefix; any other
 * operation is reported unless it is below an ignored prefix. Filtered events are counted.
 */
#include "common.h"
#include "emit.h"
#include "path.h"
#include "sys.h"
#include "filter.h"

char LICENSE[] SEC("license") = "GPL";

/* CALL() sets defaults, then each program overrides some of them. */
#pragma clang diagnostic ignored "-Winitializer-overrides"

#define STR_MAX VIGIL_PATH_MAX
#define STR_MASK (VIGIL_PATH_MAX - 1)
#define TAIL_MASK (VIGIL_PATH_MAX * 4 - 1)

struct file_scratch {
	struct vigil_file_event ev;
	__u8 tail[VIGIL_PATH_MAX * 5];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_scratch);
} vigil_file_scratch SEC(".maps");


/* What one syscall asks of the common emitter. */
struct file_call {
	__u32 syscall;
	__u32 op;
	int dirfd;
	const char *path;  /* user pointer, or NULL for fd-based calls */
	int dirfd2;
	const char *path2; /* rename/link/symlink second path, else NULL */
	int fd;            /* fd-based calls: the fd, else -1 */
	__u32 flags;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__s64 length;
	bool path_is_literal; /* symlink target: a string, never resolved */
};

/* Reads a user path into tail[off]; returns its length without the NUL. */
static __always_inline __u32 file__read_user(struct file_scratch *s, __u32 off, const char *uptr)
{
	long n = bpf_probe_read_user_str(&s->tail[off & TAIL_MASK], STR_MAX, uptr);

	if (n <= 0) {
		s->ev.event_flags |= VIGIL_F_READ_FAILED;
		return 0;
	}
	if (n >= STR_MAX)
		s->ev.event_flags |= VIGIL_F_PATH_TRUNCATED;
	return (__u32)(n - 1) & STR_MASK;
}

/* The directory a relative path is resolved against: cwd or dirfd. Written at tail[off]. */
static __always_inline __u32 file__base(struct file_scratch *s, __u32 off, int dirfd)
{
	struct vfsmount *mnt;
	struct dentry *dentry;
	bool trunc = false;
	__u32 n;

	if (dirfd == AT_FDCWD_VAL) {
		struct task_struct *t = bpf_get_current_task_btf();

		mnt = BPF_CORE_READ(t, fs, pwd.mnt);
		dentry = BPF_CORE_READ(t, fs, pwd.dentry);
	} else {
		struct file *f = fd__file(dirfd);

		if (!f)
			return 0;
		mnt = BPF_CORE_READ(f, f_path.mnt);
		dentry = BPF_CORE_READ(f, f_path.dentry);
	}
	n = path__resolve(mnt, dentry, &s->tail[off & TAIL_MASK], &trunc);
	if (trunc)
		s->ev.event_flags |= VIGIL_F_PATH_TRUNCATED;
	return n & STR_MASK;
}

/* Reads one (dirfd, path) pair at tail[off]: path, then its base if relative. */
static __always_inline __u32 file__pair(struct file_scratch *s, __u32 off, int dirfd, const char *uptr,
					bool literal, __u16 *path_len, __u16 *base_len)
{
	__u32 p = file__read_user(s, off, uptr), b = 0;

	*path_len = p;
	if (!literal && p && s->tail[off & TAIL_MASK] != '/')
		b = file__base(s, (off + p) & TAIL_MASK, dirfd);
	*base_len = b;
	return p + b;
}

static __always_inline bool file__is_modification(struct file_call *c)
{
	if (c->op != VIGIL_FOP_OPEN)
		return true;
	/* O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE */
	return c->flags & (01 | 02 | 0100 | 01000 | 02000 | 020000000);
}

#define VERDICT_UNJUDGED 0xff
#define SCAN_CHUNK 64

struct norm_scan {
	__u32 at;   /* tail offset of the next chunk */
	__u32 end;
	__u64 hit;
};

/* bpf_loop step: tests SCAN_CHUNK bytes of the path for "//" and "/." pairs. */
static long file__scan_step(__u32 i, struct norm_scan *n)
{
	__u32 zero = 0;
	struct file_scratch *s = bpf_map_lookup_elem(&vigil_file_scratch, &zero);

	if (!s)
		return 1;
	for (int k = 0; k < SCAN_CHUNK / 8; k++) {
		__u32 off = n->at + k * 8;
		__u64 x, next;

		if (off >= n->end)
			return 1;
		x = *(__u64 *)&s->tail[off & TAIL_MASK];
		next = s->tail[(off + 8) & TAIL_MASK];
		n->hit |= filter__dot_or_slash_pairs(x, next);
	}
	n->at += SCAN_CHUNK;
	return n->hit ? 1 : 0;
}

/*
 * True when the path at tail[off] might have an empty, "." or ".." segment, or is relative and
 * starts with ".". The prefix filter compares bytes, so such a path ("/tmp/../etc/shadow") could
 * dodge it: it is sent unjudged and user space decides on the normalised path. Hidden files
 * ("/.bashrc") match too and take the same safe route. The whole path is scanned.
 */
static __always_inline bool file__needs_normalising(struct file_scratch *s, __u32 off, __u32 len)
{
	struct norm_scan n = { .at = off, .end = off + len, .hit = s->tail[off & TAIL_MASK] == '.' };

	if (!n.hit && len)
		bpf_loop((len + SCAN_CHUNK - 1) / SCAN_CHUNK, file__scan_step, &n, 0);
	return n.hit != 0;
}

/* The filter's verdict for the path at tail[off] (with its base), or VERDICT_UNJUDGED. */
static __always_inline __u32 file__verdict(struct file_scratch *s, __u32 off, __u16 path_len,
					   __u16 base_len)
{
	__u32 p = off & TAIL_MASK;
	__u32 b = (off + path_len) & TAIL_MASK;

	if (file__needs_normalising(s, p, path_len))
		return VERDICT_UNJUDGED;
	if (base_len)
		return filter__lookup(&s->tail[b], base_len, &s->tail[p], path_len);
	return filter__lookup(NULL, 0, &s->tail[p], path_len);
}

/*
 * The fast path for the commonest call, a read-only open of an absolute path: the path is read
 * straight into the filter key (no copy into the record) and judged there. Returns true when
 * the open is filtered; false sends it down the full path (watched, relative, longer than the
 * key, or needing normalisation), which decides the same way.
 */
enum fast_verdict {
	FAST_UNKNOWN = 0,  /* take the full path */
	FAST_FILTERED = 1,
	FAST_WATCHED = 2,  /* report; the path is in the filter key, *len bytes */
};

static __always_inline int file__fast_path(const char *upath, __u32 *len)
{
	__u32 zero = 0, *action;
	struct filter_scratch *k = bpf_map_lookup_elem(&vigil_filter_scratch, &zero);
	__u64 hit = 0;
	long n;

	if (!k)
		return FAST_UNKNOWN;
	n = bpf_probe_read_user_str(k->key.data, VIGIL_PREFIX_MAX, upath);
	if (n <= 1 || n >= VIGIL_PREFIX_MAX || k->key.data[0] != '/')
		return FAST_UNKNOWN;
	for (__u32 i = 0; i < VIGIL_PREFIX_MAX / 8; i++) {
		__u32 off = i * 8;

		if (off >= (__u32)n)
			break;
		hit |= filter__dot_or_slash_pairs(*(__u64 *)&k->key.data[off & (VIGIL_PREFIX_MAX - 1)],
						  k->key.data[(off + 8) & (VIGIL_PREFIX_MAX * 2 - 1)]);
	}
	if (hit)
		return FAST_UNKNOWN;
	k->key.prefixlen = (n - 1) * 8;
	*len = n - 1;
	action = bpf_map_lookup_elem(&vigil_path_filter, &k->key);
	return action && *action == VIGIL_FILTER_WATCH ? FAST_WATCHED : FAST_FILTERED;
}

static __always_inline int file__emit(long ret, struct file_call *c)
{
	__u32 zero = 0, off = 0, size, v1, v2 = 0, fast_len = 0;
	int fast = FAST_UNKNOWN;
	struct vigil_file_event *ev;
	struct file_scratch *s;
	bool report;

	if (sys__skip()) {
		stats__inc(VIGIL_EV_FILE, VIGIL_STAT_FILTERED);
		return 0;
	}
	if (c->op == VIGIL_FOP_OPEN && c->path && !file__is_modification(c))
		fast = file__fast_path(c->path, &fast_len);
	if (fast == FAST_FILTERED) {
		stats__inc(VIGIL_EV_FILE, VIGIL_STAT_FILTERED);
		return 0;
	}
	s = bpf_map_lookup_elem(&vigil_file_scratch, &zero);
	if (!s)
		return 0;
	ev = &s->ev;
	ev->event_flags = 0;
	ev->path2_len = 0;
	ev->base2_len = 0;

	if (fast == FAST_WATCHED) {
		/* Judged already: take the path from the filter key instead of reading it again. */
		struct filter_scratch *k = bpf_map_lookup_elem(&vigil_filter_scratch, &zero);

		if (!k)
			return 0;
		BOUND(fast_len, 255);
		bpf_probe_read_kernel(s->tail, fast_len, k->key.data);
		ev->path_len = fast_len;
		ev->base_len = 0;
		off = fast_len;
	} else if (c->path) {
		off = file__pair(s, 0, c->dirfd, c->path, c->path_is_literal, &ev->path_len, &ev->base_len);
	} else {
		struct file *f = fd__file(c->fd);
		bool trunc = false;

		ev->base_len = 0;
		ev->path_len = 0;
		if (f) {
			ev->path_len = path__resolve(BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry),
						     s->tail, &trunc) & STR_MASK;
			if (trunc)
				ev->event_flags |= VIGIL_F_PATH_TRUNCATED;
		}
		off = ev->path_len;
	}
	if (fast == FAST_WATCHED)
		v1 = VIGIL_FILTER_WATCH;
	else
		v1 = c->path_is_literal ? 0 : file__verdict(s, 0, ev->path_len, ev->base_len);
	if (c->path2) {
		__u32 start = off & (VIGIL_PATH_MAX * 2 - 1);

		off = start + file__pair(s, start, c->dirfd2, c->path2, false, &ev->path2_len, &ev->base2_len);
		v2 = file__verdict(s, start, ev->path2_len, ev->base2_len);
	}

	if (v1 == VERDICT_UNJUDGED || v2 == VERDICT_UNJUDGED) {
		ev->event_flags |= VIGIL_F_UNFILTERED;
		report = true;
	} else if (file__is_modification(c))
		report = v1 != VIGIL_FILTER_IGNORE || (c->path2 && v2 != VIGIL_FILTER_IGNORE);
	else
		report = v1 == VIGIL_FILTER_WATCH;
	if (c->path_is_literal) /* symlink: only the link path decides */
		report = v2 != VIGIL_FILTER_IGNORE;
	if (!report) {
		stats__inc(VIGIL_EV_FILE, VIGIL_STAT_FILTERED);
		return 0;
	}
	if (ev->event_flags & VIGIL_F_READ_FAILED)
		stats__inc(VIGIL_EV_FILE, VIGIL_STAT_READ_ERROR);

	ev->result = ret;
	ev->length = c->length;
	ev->syscall = c->syscall;
	ev->op = c->op;
	ev->flags = c->flags;
	ev->mode = c->mode;
	ev->dirfd = c->dirfd;
	ev->dirfd2 = c->dirfd2;
	ev->fd = c->fd;
	ev->uid = c->uid;
	ev->gid = c->gid;
	size = sizeof(*ev) + ev->path_len + ev->base_len + ev->path2_len + ev->base2_len;
	if (size > sizeof(*s))
		size = sizeof(*s);
	emit__header(&ev->hdr, VIGIL_EV_FILE, size);
	if (emit__admit(ev->hdr.cgroup_id, VIGIL_EV_FILE))
		emit__output(s, size, VIGIL_EV_FILE);
	return 0;
}

#define EXIT_PROG(name) \
	SEC("tracepoint/syscalls/sys_exit_" #name) \
	int vigil_file_##name(struct trace_event_raw_sys_exit *ctx)

#define CALL(...) struct file_call c = { .dirfd = AT_FDCWD_VAL, .dirfd2 = AT_FDCWD_VAL, .fd = -1, \
					 .uid = (__u32)-1, .gid = (__u32)-1, __VA_ARGS__ }; \
	return file__emit(ctx->ret, &c)

EXIT_PROG(open)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_OPEN, .op = VIGIL_FOP_OPEN, .path = (void *)SYS_ARG1(r),
	     .flags = SYS_ARG2(r), .mode = SYS_ARG3(r));
}

EXIT_PROG(openat)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_OPENAT, .op = VIGIL_FOP_OPEN, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .flags = SYS_ARG3(r), .mode = SYS_ARG4(r));
}

EXIT_PROG(openat2)
{
	struct pt_regs *r = sys__regs();
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)SYS_ARG3(r));
	CALL(.syscall = VIGIL_SYS_OPENAT2, .op = VIGIL_FOP_OPEN, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .flags = how.flags, .mode = how.mode);
}

EXIT_PROG(creat)
{
	struct pt_regs *r = sys__regs();
	/* creat is open(O_CREAT | O_WRONLY | O_TRUNC) */
	CALL(.syscall = VIGIL_SYS_CREAT, .op = VIGIL_FOP_OPEN, .path = (void *)SYS_ARG1(r),
	     .flags = 0100 | 01 | 01000, .mode = SYS_ARG2(r));
}

EXIT_PROG(unlink)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_UNLINK, .op = VIGIL_FOP_UNLINK, .path = (void *)SYS_ARG1(r));
}

EXIT_PROG(unlinkat)
{
	struct pt_regs *r = sys__regs();
	__u32 flags = SYS_ARG3(r);
	/* AT_REMOVEDIR makes unlinkat an rmdir */
	CALL(.syscall = VIGIL_SYS_UNLINKAT, .op = (flags & 0x200) ? VIGIL_FOP_RMDIR : VIGIL_FOP_UNLINK,
	     .dirfd = SYS_ARG1(r), .path = (void *)SYS_ARG2(r), .flags = flags);
}

EXIT_PROG(rename)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_RENAME, .op = VIGIL_FOP_RENAME, .path = (void *)SYS_ARG1(r),
	     .path2 = (void *)SYS_ARG2(r));
}

EXIT_PROG(renameat)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_RENAMEAT, .op = VIGIL_FOP_RENAME, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .dirfd2 = SYS_ARG3(r), .path2 = (void *)SYS_ARG4(r));
}

EXIT_PROG(renameat2)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_RENAMEAT2, .op = VIGIL_FOP_RENAME, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .dirfd2 = SYS_ARG3(r), .path2 = (void *)SYS_ARG4(r),
	     .flags = SYS_ARG5(r));
}

EXIT_PROG(mkdir)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_MKDIR, .op = VIGIL_FOP_MKDIR, .path = (void *)SYS_ARG1(r),
	     .mode = SYS_ARG2(r));
}

EXIT_PROG(mkdirat)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_MKDIRAT, .op = VIGIL_FOP_MKDIR, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .mode = SYS_ARG3(r));
}

EXIT_PROG(rmdir)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_RMDIR, .op = VIGIL_FOP_RMDIR, .path = (void *)SYS_ARG1(r));
}

EXIT_PROG(chmod)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_CHMOD, .op = VIGIL_FOP_CHMOD, .path = (void *)SYS_ARG1(r),
	     .mode = SYS_ARG2(r));
}

EXIT_PROG(fchmod)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_FCHMOD, .op = VIGIL_FOP_CHMOD, .fd = SYS_ARG1(r), .mode = SYS_ARG2(r));
}

EXIT_PROG(fchmodat)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_FCHMODAT, .op = VIGIL_FOP_CHMOD, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .mode = SYS_ARG3(r));
}

EXIT_PROG(fchmodat2)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_FCHMODAT2, .op = VIGIL_FOP_CHMOD, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .mode = SYS_ARG3(r), .flags = SYS_ARG4(r));
}

EXIT_PROG(chown)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_CHOWN, .op = VIGIL_FOP_CHOWN, .path = (void *)SYS_ARG1(r),
	     .uid = SYS_ARG2(r), .gid = SYS_ARG3(r));
}

EXIT_PROG(lchown)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_LCHOWN, .op = VIGIL_FOP_CHOWN, .path = (void *)SYS_ARG1(r),
	     .uid = SYS_ARG2(r), .gid = SYS_ARG3(r));
}

EXIT_PROG(fchown)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_FCHOWN, .op = VIGIL_FOP_CHOWN, .fd = SYS_ARG1(r), .uid = SYS_ARG2(r),
	     .gid = SYS_ARG3(r));
}

EXIT_PROG(fchownat)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_FCHOWNAT, .op = VIGIL_FOP_CHOWN, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .uid = SYS_ARG3(r), .gid = SYS_ARG4(r), .flags = SYS_ARG5(r));
}

EXIT_PROG(link)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_LINK, .op = VIGIL_FOP_LINK, .path = (void *)SYS_ARG1(r),
	     .path2 = (void *)SYS_ARG2(r));
}

EXIT_PROG(linkat)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_LINKAT, .op = VIGIL_FOP_LINK, .dirfd = SYS_ARG1(r),
	     .path = (void *)SYS_ARG2(r), .dirfd2 = SYS_ARG3(r), .path2 = (void *)SYS_ARG4(r),
	     .flags = SYS_ARG5(r));
}

EXIT_PROG(symlink)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_SYMLINK, .op = VIGIL_FOP_SYMLINK, .path = (void *)SYS_ARG1(r),
	     .path_is_literal = true, .path2 = (void *)SYS_ARG2(r));
}

EXIT_PROG(symlinkat)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_SYMLINKAT, .op = VIGIL_FOP_SYMLINK, .path = (void *)SYS_ARG1(r),
	     .path_is_literal = true, .dirfd2 = SYS_ARG2(r), .path2 = (void *)SYS_ARG3(r));
}

EXIT_PROG(truncate)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_TRUNCATE, .op = VIGIL_FOP_TRUNCATE, .path = (void *)SYS_ARG1(r),
	     .length = SYS_ARG2(r));
}

EXIT_PROG(ftruncate)
{
	struct pt_regs *r = sys__regs();
	CALL(.syscall = VIGIL_SYS_FTRUNCATE, .op = VIGIL_FOP_TRUNCATE, .fd = SYS_ARG1(r),
	     .length = SYS_ARG2(r));
}
