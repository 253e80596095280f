/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The path-prefix filter: an LPM trie of watched and ignored prefixes that user space fills
 * from config (and later from rules). Decides in the kernel which file events cross over.
 */
#ifndef VIGIL_FILTER_H
#define VIGIL_FILTER_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct vigil_prefix_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} vigil_path_filter SEC(".maps");

/* The key plus slack, so that variable-offset copies stay provably in bounds. */
struct filter_scratch {
	struct vigil_prefix_key key;
	__u8 slack[VIGIL_PREFIX_MAX * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct filter_scratch);
} vigil_filter_scratch SEC(".maps");

#define PREFIX_MASK (VIGIL_PREFIX_MAX - 1)

/*
 * The filter's verdict for the path base + "/" + path (base empty for an absolute path):
 * VIGIL_FILTER_WATCH, VIGIL_FILTER_IGNORE, or 0 when no prefix matches.
 */
static __always_inline __u32 filter__lookup(const __u8 *base, __u32 base_len, const __u8 *path,
					    __u32 path_len)
{
	__u32 zero = 0, len = 0, *action;
	struct filter_scratch *s = bpf_map_lookup_elem(&vigil_filter_scratch, &zero);

	if (!s)
		return 0;
	if (base_len) {
		len = base_len > VIGIL_PREFIX_MAX ? VIGIL_PREFIX_MAX : base_len;
		BOUND(len, 511);
		bpf_probe_read_kernel(s->key.data, len, base);
		if (len < VIGIL_PREFIX_MAX)
			s->key.data[len++ & PREFIX_MASK] = '/';
	}
	if (len < VIGIL_PREFIX_MAX && path_len) {
		__u32 room = VIGIL_PREFIX_MAX - len;
		__u32 n = path_len > room ? room : path_len;

		__u32 at = len;

		BOUND(at, 255);
		BOUND(n, 511);
		bpf_probe_read_kernel(&s->key.data[at], n, path);
		len += n;
	}
	s->key.prefixlen = (len > VIGIL_PREFIX_MAX ? VIGIL_PREFIX_MAX : len) * 8;
	action = bpf_map_lookup_elem(&vigil_path_filter, &s->key);
	return action ? *action : 0;
}

#endif
