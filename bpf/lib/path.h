/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Absolute paths from (vfsmount, dentry) pairs by walking d_parent and crossing mounts.
 *
 * bpf_d_path is not allowed from tracepoints, so the walk is done by hand, bounded to
 * VIGIL_PATH_DEPTH steps (one per component or mount crossing). Paths are relative to the root
 * of the task's mount namespace (inside a container: the container's root; a chroot does not
 * change it). A pseudo-filesystem object (memfd, pipe) is reported as "/" + its name. A path that
 * does not fit is cut at the front and flagged by the caller.
 */
#ifndef VIGIL_PATH_H
#define VIGIL_PATH_H

#include "common.h"

#define PATH_MASK (VIGIL_PATH_MAX - 1)
#define NAME_MASK 255

struct path_scratch {
	__u8 buf[VIGIL_PATH_MAX * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} vigil_path_scratch SEC(".maps");

struct path_walk {
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *dentry;
	__u32 pos;   /* the path is built backwards in buf[pos..VIGIL_PATH_MAX) */
	bool done;   /* reached the root */
	bool truncated;
};

/* One bpf_loop step: prepend one component, or cross one mount. Returns 1 to stop. */
static long path__step(__u32 i, struct path_walk *w)
{
	__u32 zero = 0, len;
	struct path_scratch *s = bpf_map_lookup_elem(&vigil_path_scratch, &zero);
	/*
	 * The walk's pointers, typed again for the verifier (the loop context holds plain
	 * pointers): each field is then one load, not a probe-read call, ~3 calls saved per step.
	 */
	struct vfsmount *vfsmnt = bpf_rdonly_cast(w->vfsmnt, bpf_core_type_id_kernel(struct vfsmount));
	struct dentry *dentry = bpf_rdonly_cast(w->dentry, bpf_core_type_id_kernel(struct dentry));
	struct mount *mnt = bpf_rdonly_cast(w->mnt, bpf_core_type_id_kernel(struct mount));
	struct dentry *parent = dentry->d_parent;
	const unsigned char *name;

	if (!s)
		return 1;
	if (dentry == vfsmnt->mnt_root) {
		struct mount *mnt_parent = mnt->mnt_parent;

		if (mnt_parent == w->mnt) {
			w->done = true; /* the root of the namespace (or of a detached tree) */
			return 1;
		}
		w->dentry = mnt->mnt_mountpoint;
		w->mnt = mnt_parent;
		w->vfsmnt = (void *)mnt_parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	len = dentry->d_name.len & NAME_MASK;
	name = dentry->d_name.name;
	if (len + 1 >= w->pos) {
		w->truncated = true;
		return 1;
	}
	w->pos -= len;
	bpf_probe_read_kernel(&s->buf[w->pos & PATH_MASK], len, name);
	w->pos -= 1;
	s->buf[w->pos & PATH_MASK] = '/';
	if (parent == w->dentry) {
		/* A pseudo-filesystem object (memfd:NAME, pipe:[N]): its name is the whole path. */
		w->done = true;
		return 1;
	}
	w->dentry = parent;
	return 0;
}

/*
 * Writes the path of (vfsmnt, dentry) into out (room for VIGIL_PATH_MAX bytes), without a NUL.
 * Returns its length; sets *truncated when components had to be left out.
 */
static __always_inline __u32 path__resolve(struct vfsmount *vfsmnt, struct dentry *dentry,
					   __u8 *out, bool *truncated)
{
	__u32 zero = 0, len;
	struct path_scratch *s = bpf_map_lookup_elem(&vigil_path_scratch, &zero);
	struct path_walk w = {
		.vfsmnt = vfsmnt,
		.mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt),
		.dentry = dentry,
		.pos = VIGIL_PATH_MAX,
	};

	*truncated = false;
	if (!s || !vfsmnt || !dentry)
		return 0;
	bpf_loop(VIGIL_PATH_DEPTH, path__step, &w, 0);
	*truncated = w.truncated || !w.done;
	if (w.pos >= VIGIL_PATH_MAX) {
		out[0] = '/';
		return 1;
	}
	len = VIGIL_PATH_MAX - w.pos;
	bpf_probe_read_kernel(out, len & PATH_MASK, &s->buf[w.pos & PATH_MASK]);
	return len & PATH_MASK;
}

#endif
