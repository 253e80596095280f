/* SPDX-License-Identifier: GPL-2.0-only */
/* Includes every program needs, and the load-time configuration shared by all hook families. */
#ifndef VIGIL_COMMON_H
#define VIGIL_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "vigil_abi.h"

/* A kernel pointer as a typed, read-only BTF pointer: plain loads instead of probe-read calls. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* Masks v in a way the compiler cannot drop, so the verifier sees the bound. */
#define BOUND(v, mask) asm volatile("%[x] &= " #mask : [x] "+r"(v))

/* Set by user space before load (rodata); see crates/vigil-bpf/src/process.rs. */
const volatile __u32 cfg_self_tgid = 0;       /* the agent: never reported */
const volatile __u32 cfg_args_max = VIGIL_ARGS_MAX;
const volatile __u32 cfg_wakeup_bytes = 256 * 1024;
const volatile __u8 cfg_emit_threads = 0;

/*
 * Set by user space at shutdown: programs return at once, so the final drain sees every record
 * produced (detaching ~60 tracepoints takes seconds, each waiting for an RCU grace period).
 */
__u32 vigil_paused = 0;

#endif
