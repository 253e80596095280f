/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Log-linear latency buckets: the index math of crates/vigil-net/src/hist.rs (`bucket_index`),
 * so that kernel counts merge 1:1 into `vigil_net::hist::LogHist`.
 *
 * Values 0..=3 have a bucket each; every power of two 2^k (k >= 2) is split into four equal
 * sub-buckets: index = 4 + (k - 2) * 4 + ((v >> (k - 2)) & 3), capped at VIGIL_LAT_BUCKETS - 1
 * (values >= 2^40). Plain C on fixed-width ints, no BPF helpers: crates/vigil-bpf/tests/latency.rs
 * also compiles it on the host and compares it with the Rust function value by value.
 */
#ifndef VIGIL_HIST_H
#define VIGIL_HIST_H

#include "vigil_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* floor(log2(v)) for v > 0, branch-free: BPF has no count-leading-zeros instruction. */
static __always_inline __u32 hist__log2(__u64 v)
{
	__u32 r, s;

	r = (v > 0xffffffffULL) << 5;
	v >>= r;
	s = (v > 0xffff) << 4;
	v >>= s;
	r |= s;
	s = (v > 0xff) << 3;
	v >>= s;
	r |= s;
	s = (v > 0xf) << 2;
	v >>= s;
	r |= s;
	s = (v > 0x3) << 1;
	v >>= s;
	r |= s;
	return r | (__u32)(v >> 1);
}

/* The bucket of v (µs); always < VIGIL_LAT_BUCKETS. */
static __always_inline __u32 hist__bucket(__u64 v)
{
	__u32 k, i;

	if (v < 4)
		return (__u32)v;
	k = hist__log2(v);
	i = 4 + (k - 2) * 4 + (__u32)((v >> (k - 2)) & 3);
	return i < VIGIL_LAT_BUCKETS ? i : VIGIL_LAT_BUCKETS - 1;
}

#endif
