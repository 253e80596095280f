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
		/* base is "/" or has no trailing slash */
		if (len < VIGIL_PREFIX_MAX && base_len > 1)
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

/* Bytes of v equal to c get their high bit set; others are 0 (exact, no false positives). */
static __always_inline __u64 filter__eq_bytes(__u64 v, __u8 c)
{
	__u64 t = v ^ (0x0101010101010101ULL * c);

	return ~(((t & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | t | 0x7f7f7f7f7f7f7f7fULL);
}

/*
 * One word of the "might need normalising" test: byte pairs "//" and "/." (an empty, "." or ".."
 * segment, or a hidden file). x holds 8 path bytes, next the byte after them.
 */
static __always_inline __u64 filter__dot_or_slash_pairs(__u64 x, __u64 next)
{
	__u64 y = (x >> 8) | (next << 56); /* byte k of y is byte k + 1 of x */

	return filter__eq_bytes(x, '/') & (filter__eq_bytes(y, '.') | filter__eq_bytes(y, '/'));
}

#endif
