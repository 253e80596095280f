/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Network sensor: TCP connections (connect, accept, failures, close with the kernel's own
 * counters), UDP flows and packet drops aggregated in maps, and the first bytes of DNS and
 * HTTP/1.x messages for user space to parse.
 *
 * Hooks (no kprobes): tp_btf sock/inet_sock_set_state, tcp/tcp_destroy_sock,
 * tcp/tcp_send_reset, tcp/tcp_receive_reset, skb/kfree_skb; syscalls:sys_exit_accept{,4};
 * cgroup_skb ingress/egress on the cgroup v2 root.
 *
 * Attribution: state changes often run in softirq, where `current` is whoever was interrupted.
 * The owner (process, cgroup) is therefore recorded in socket-local storage when the socket
 * acts in process context (connect, listen), cloned into accepted children (BPF_F_CLONE), and
 * every record is stamped from it, never from `current`.
 */
#include "common.h"
#include "emit.h"
#include "sys.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define E2BIG 7
#define LOOPBACK_IFINDEX 1

/* Load-time settings (user space, before load). */
const volatile __u32 cfg_capture_bytes = 0;   /* 0: no DNS/HTTP capture */
const volatile bool cfg_http = false;           /* look for HTTP/1.x in TCP payloads */

/*
 * The connection as it was when it reached CLOSE: a zero-linger close (tcp_disconnect) wipes the
 * socket's counters and ports right after, so they are kept here for the destroy record.
 */
struct conn_snapshot {
	__u64 bytes_sent;
	__u64 bytes_received;
	__u32 segs_out;
	__u32 segs_in;
	__u32 srtt_us;
	__u32 retransmits;
	__u16 local_port;
	__u16 remote_port;
	__u32 sk_err;
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

/* What a socket's owner did, kept with the socket for its whole life. */
struct sock_owner {
	__u64 cgroup_id;
	__u64 syn_ns;          /* SYN sent (active open) */
	__u64 est_ns;          /* reached ESTABLISHED */
	__u64 close_ns;        /* reached CLOSE */
	__u32 tgid;            /* 0: not known (the socket predates the agent) */
	__u32 pid;
	__u16 rst_sent;
	__u16 rst_recv;
	__u8 role;             /* enum vigil_conn_role, 0 before connect/listen */
	__u8 first_fin;        /* VIGIL_CLOSE_LOCAL or VIGIL_CLOSE_PEER */
	__u8 established;
	__u8 is_self;          /* the agent's own socket (and its accepted children): never reported */
	__u8 fin_sent;         /* this side sent a FIN (FIN_WAIT1 or LAST_ACK) */
	__u16 local_port;      /* at ESTABLISHED: a socket going to TIME_WAIT hands it over early */
	__u8 snapped;          /* snap holds the connection at CLOSE */
	__u8 comm[VIGIL_COMM_LEN];
	struct conn_snapshot snap;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sock_owner);
} vigil_sock_owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_flow_key);
	__type(value, struct vigil_flow_value);
} vigil_udp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vigil_drop_key);
	__type(value, __u64);
} vigil_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_NET_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_net_stats SEC(".maps");

static __always_inline void net_stat__inc(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&vigil_net_stats, &stat);

	if (v)
		*v += 1;
}

/*
 * sk typed for plain loads, whatever the caller got it from (a tracepoint's argument, a file's
 * private data): one load per field instead of a probe-read call per hop.
 */
static __always_inline struct sock *sk__typed(const struct sock *sk)
{
	return bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock));
}

static __always_inline __u32 sk__netns(const struct sock *sk)
{
	return sk__typed(sk)->__sk_common.skc_net.net->ns.inum;
}

static __always_inline __u64 sk__cgroup_id(const struct sock *sk)
{
	return sk__typed(sk)->sk_cgrp_data.cgroup->kn->id;
}

static __always_inline bool sk__is_tcp_inet(const struct sock *sk)
{
	struct sock *s = sk__typed(sk);
	__u16 family = s->__sk_common.skc_family;

	return (family == AF_INET || family == AF_INET6) && s->sk_protocol == IPPROTO_TCP;
}

static __always_inline void owner__from_current(struct sock_owner *o, __u8 role)
{
	__u64 id = bpf_get_current_pid_tgid();

	o->tgid = id >> 32;
	o->pid = (__u32)id;
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->role = role;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

static __always_inline bool self__current(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid;
}

/* Addresses and ports of a socket, as the socket sees them (local, remote). */
static __always_inline void conn__addrs(struct vigil_conn_event *e, const struct sock *sock)
{
	struct sock_common *c = &sk__typed(sock)->__sk_common;

	e->family = c->skc_family;
	e->local_port = c->skc_num;
	e->remote_port = bpf_ntohs(c->skc_dport);
	e->netns = c->skc_net.net->ns.inum;
	__builtin_memset(e->local_addr, 0, sizeof(e->local_addr));
	__builtin_memset(e->remote_addr, 0, sizeof(e->remote_addr));
	if (e->family == AF_INET) {
		*(__u32 *)e->local_addr = c->skc_rcv_saddr;
		*(__u32 *)e->remote_addr = c->skc_daddr;
	} else {
		bpf_probe_read_kernel(e->local_addr, 16, &c->skc_v6_rcv_saddr);
		bpf_probe_read_kernel(e->remote_addr, 16, &c->skc_v6_daddr);
	}
}

/* A zeroed connection record stamped with the owner (not `current`), or NULL (counted). */
static __always_inline struct vigil_conn_event *
conn__reserve(const struct sock *sk, const struct sock_owner *o, __u8 phase)
{
	struct vigil_conn_event *e = emit__reserve(sizeof(*e), VIGIL_EV_CONN);

	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	emit__header(&e->hdr, VIGIL_EV_CONN, sizeof(*e));
	e->hdr.pid = o->pid;
	e->hdr.tgid = o->tgid;
	e->hdr.cgroup_id = o->cgroup_id ? o->cgroup_id : sk__cgroup_id(sk);
	__builtin_memcpy(e->comm, o->comm, sizeof(e->comm));
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->phase = phase;
	e->role = o->role;
	conn__addrs(e, sk);
	return e;
}

/*
 * Payload bytes each way. The kernel's counters follow sequence numbers, so they include the
 * SYN an active opener sent (acked by the SYN-ACK), a FIN of ours once acked (it is the last
 * sequence number: snd_una == write_seq) and a FIN received (tcp_fin sets SOCK_DONE).
 */
static __always_inline void conn__snapshot(struct sock_owner *o, struct sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	struct conn_snapshot *c = &o->snap;
	struct vigil_conn_event tmp;
	__u64 sent, received, extra;

	if (!tp)
		return;
	sent = tp->bytes_acked;
	received = tp->bytes_received;
	extra = (o->role == VIGIL_ROLE_CLIENT) + (o->fin_sent && tp->snd_una == tp->write_seq);
	c->bytes_sent = sent > extra ? sent - extra : 0;
	extra = (sk->__sk_common.skc_flags >> SOCK_DONE) & 1;
	c->bytes_received = received > extra ? received - extra : 0;
	c->segs_out = tp->segs_out;
	c->segs_in = tp->segs_in;
	c->srtt_us = tp->srtt_us >> 3;
	c->retransmits = tp->total_retrans;
	c->sk_err = sk->sk_err;
	conn__addrs(&tmp, sk);
	c->local_port = tmp.local_port ? tmp.local_port : o->local_port;
	c->remote_port = tmp.remote_port;
	__builtin_memcpy(c->local_addr, tmp.local_addr, 16);
	__builtin_memcpy(c->remote_addr, tmp.remote_addr, 16);
	o->snapped = 1;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vigil_tcp_state, struct sock *sk, int oldstate, int newstate)
{
	struct vigil_conn_event *e;
	struct sock_owner *o;
	__u64 now;

	if (vigil_paused || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	now = bpf_ktime_get_boot_ns();

	/* Process context: connect() and listen() name the owner. */
	if (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN) {
		o = bpf_sk_storage_get(&vigil_sock_owner, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
		if (!o)
			return 0;
		__builtin_memset(o, 0, sizeof(*o));
		/* Marked rather than skipped, so that the agent's accepted children inherit it. */
		o->is_self = self__current();
		owner__from_current(o, newstate == TCP_SYN_SENT ? VIGIL_ROLE_CLIENT : VIGIL_ROLE_SERVER);
		o->syn_ns = now;
		return 0;
	}

	if (newstate == TCP_ESTABLISHED) {
		/*
		 * An accepted child carries its listener's storage (cloned). A child of a listener
		 * older than the agent gets storage here, with an unknown owner: its accept()
		 * names it.
		 */
		o = bpf_sk_storage_get(&vigil_sock_owner, sk, NULL,
				       oldstate == TCP_SYN_RECV ? BPF_SK_STORAGE_GET_F_CREATE : 0);
		if (!o || o->is_self)
			return 0;
		o->est_ns = now;
		o->established = 1;
		o->local_port = sk->__sk_common.skc_num;
		if (oldstate == TCP_SYN_RECV) {
			o->role = VIGIL_ROLE_SERVER;
			/* Generates the cookie now, so accept() can read it from the socket. */
			bpf_get_socket_cookie(sk);
			return 0;
		}
		if (oldstate != TCP_SYN_SENT)
			return 0;
		e = conn__reserve(sk, o, VIGIL_CONN_CONNECT);
		if (!e)
			return 0;
		e->connect_latency_ns = now - o->syn_ns;
		emit__submit(e, VIGIL_EV_CONN);
		return 0;
	}

	o = bpf_sk_storage_get(&vigil_sock_owner, sk, NULL, 0);
	if (!o || o->is_self)
		return 0;
	if (oldstate == TCP_ESTABLISHED && !o->first_fin) {
		if (newstate == TCP_FIN_WAIT1)
			o->first_fin = VIGIL_CLOSE_LOCAL;
		else if (newstate == TCP_CLOSE_WAIT)
			o->first_fin = VIGIL_CLOSE_PEER;
	}
	if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
		o->fin_sent = 1;
	if (newstate != TCP_CLOSE)
		return 0;
	o->close_ns = now;
	if (o->established)
		conn__snapshot(o, sk);
	if (oldstate != TCP_SYN_SENT || o->role != VIGIL_ROLE_CLIENT)
		return 0;
	/* The active open failed: sk_err is set before the state changes (or 0: aborted). */
	e = conn__reserve(sk, o, VIGIL_CONN_CONNECT_FAILED);
	if (!e)
		return 0;
	e->connect_latency_ns = now - o->syn_ns;
	e->sk_err = sk->sk_err;
	emit__submit(e, VIGIL_EV_CONN);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(vigil_tcp_rst_out, const struct sock *sk)
{
	struct sock_owner *o;

	if (!sk)
		return 0;
	o = bpf_sk_storage_get(&vigil_sock_owner, (void *)sk, NULL, 0);
	if (o)
		o->rst_sent++;
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(vigil_tcp_rst_in, struct sock *sk)
{
	struct sock_owner *o = bpf_sk_storage_get(&vigil_sock_owner, sk, NULL, 0);

	if (o)
		o->rst_recv++;
	return 0;
}

/*
 * The socket is being destroyed: every counter is final and any reset has been sent (a
 * zero-linger close moves to CLOSE before it sends its RST, so CLOSE itself is too early).
 */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(vigil_tcp_destroy, struct sock *sk)
{
	struct vigil_conn_event *e;
	struct conn_snapshot *c;
	struct sock_owner *o;
	__u64 end;

	if (vigil_paused)
		return 0;
	o = bpf_sk_storage_get(&vigil_sock_owner, sk, NULL, 0);
	if (!o || !o->established || o->is_self)
		return 0;
	if (!o->snapped)
		conn__snapshot(o, sk);
	c = &o->snap;
	e = conn__reserve(sk, o, VIGIL_CONN_CLOSE);
	if (!e)
		return 0;
	e->local_port = c->local_port;
	e->remote_port = c->remote_port;
	__builtin_memcpy(e->local_addr, c->local_addr, 16);
	__builtin_memcpy(e->remote_addr, c->remote_addr, 16);
	end = o->close_ns ? o->close_ns : e->hdr.time_ns;
	e->duration_ns = end - o->est_ns;
	if (o->role == VIGIL_ROLE_CLIENT && o->syn_ns)
		e->connect_latency_ns = o->est_ns - o->syn_ns;
	e->bytes_sent = c->bytes_sent;
	e->bytes_received = c->bytes_received;
	e->segs_out = c->segs_out;
	e->segs_in = c->segs_in;
	e->srtt_us = c->srtt_us;
	e->retransmits = c->retransmits;
	e->resets_sent = o->rst_sent;
	e->resets_received = o->rst_recv;
	if (o->rst_recv)
		e->close_reason = VIGIL_CLOSE_RESET_RECEIVED;
	else if (o->rst_sent)
		e->close_reason = VIGIL_CLOSE_RESET_SENT;
	else if (o->first_fin)
		e->close_reason = o->first_fin;
	else if (c->sk_err)
		e->close_reason = VIGIL_CLOSE_ERROR;
	else
		e->close_reason = VIGIL_CLOSE_LOCAL;
	emit__submit(e, VIGIL_EV_CONN);
	return 0;
}

/* accept()/accept4() returned a socket: the caller is the connection's process. */
static __always_inline int accept__exit(long ret)
{
	struct vigil_conn_event *e;
	struct sock_owner o = {};
	struct socket *sock;
	struct file *f;
	struct sock *sk;

	if (ret < 0 || sys__skip())
		return 0;
	f = fd__file(ret);
	if (!f)
		return 0;
	f = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
	sock = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	sk = sock->sk;
	if (!sk || !sk__is_tcp_inet(sk))
		return 0;
	owner__from_current(&o, VIGIL_ROLE_SERVER);
	e = emit__reserve(sizeof(*e), VIGIL_EV_CONN);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	emit__header(&e->hdr, VIGIL_EV_CONN, sizeof(*e));
	__builtin_memcpy(e->comm, o.comm, sizeof(e->comm));
	/* Generated at ESTABLISHED (vigil_tcp_state), so user space can join the close record. */
	e->cookie = sk__typed(sk)->__sk_common.skc_cookie.counter;
	e->phase = VIGIL_CONN_ACCEPT;
	e->role = VIGIL_ROLE_SERVER;
	conn__addrs(e, sk);
	emit__submit(e, VIGIL_EV_CONN);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int vigil_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accept__exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int vigil_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accept__exit(ctx->ret);
}

/* The parsed headers of one packet, oriented from the local socket's point of view. */
struct pkt {
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u32 payload_off;
	__u32 payload_len;
	__u16 local_port;
	__u16 remote_port;
	__u8 family;
	__u8 protocol;
};

static __always_inline bool pkt__parse(struct __sk_buff *skb, __u8 dir, struct pkt *p)
{
	__u8 *src, *dst;
	__u16 ports[2];
	__u32 l4;

	__builtin_memset(p, 0, sizeof(*p));
	src = dir == VIGIL_DIR_EGRESS ? p->local_addr : p->remote_addr;
	dst = dir == VIGIL_DIR_EGRESS ? p->remote_addr : p->local_addr;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return false;
		p->family = AF_INET;
		p->protocol = ip.protocol;
		__builtin_memcpy(src, &ip.saddr, 4);
		__builtin_memcpy(dst, &ip.daddr, 4);
		l4 = ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return false;
		p->family = AF_INET6;
		p->protocol = ip6.nexthdr;   /* extension headers: not parsed, not reported */
		__builtin_memcpy(src, &ip6.saddr, 16);
		__builtin_memcpy(dst, &ip6.daddr, 16);
		l4 = sizeof(ip6);
	} else {
		return false;
	}
	if (p->protocol != IPPROTO_TCP && p->protocol != IPPROTO_UDP)
		return false;
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)))
		return false;
	p->local_port = bpf_ntohs(dir == VIGIL_DIR_EGRESS ? ports[0] : ports[1]);
	p->remote_port = bpf_ntohs(dir == VIGIL_DIR_EGRESS ? ports[1] : ports[0]);
	if (p->protocol == IPPROTO_UDP) {
		p->payload_off = l4 + 8;
	} else {
		__u8 doff;

		if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1))
			return false;
		p->payload_off = l4 + (doff >> 4) * 4;
	}
	p->payload_len = skb->len > p->payload_off ? skb->len - p->payload_off : 0;
	return true;
}

static __always_inline void flow__count(struct __sk_buff *skb, __u8 dir, const struct pkt *p,
					__u32 netns, const struct sock_owner *o)
{
	struct vigil_flow_key key = {};
	struct vigil_flow_value *v, init = {};
	__u64 now = bpf_ktime_get_boot_ns();

	key.cgroup_id = bpf_skb_cgroup_id(skb);
	key.netns = netns;
	key.local_port = p->local_port;
	key.remote_port = p->remote_port;
	key.family = p->family;
	__builtin_memcpy(key.local_addr, p->local_addr, 16);
	__builtin_memcpy(key.remote_addr, p->remote_addr, 16);
	v = bpf_map_lookup_elem(&vigil_udp_flows, &key);
	if (!v) {
		init.first_ns = now;
		if (bpf_map_update_elem(&vigil_udp_flows, &key, &init, BPF_NOEXIST) == -E2BIG) {
			net_stat__inc(VIGIL_NET_FLOW_MAP_FULL);
			return;
		}
		v = bpf_map_lookup_elem(&vigil_udp_flows, &key);
		if (!v)
			return;
	}
	if (dir == VIGIL_DIR_EGRESS) {
		__sync_fetch_and_add(&v->packets_sent, 1);
		__sync_fetch_and_add(&v->bytes_sent, p->payload_len);
	} else {
		__sync_fetch_and_add(&v->packets_received, 1);
		__sync_fetch_and_add(&v->bytes_received, p->payload_len);
	}
	v->last_ns = now;
	v->cookie = bpf_get_socket_cookie(skb);
	if (o && o->tgid) {
		v->tgid = o->tgid;
		v->pid = o->pid;
		__builtin_memcpy(v->comm, o->comm, sizeof(v->comm));
	}
}

/* First payload bytes that may be HTTP/1.x: a method or a status line. */
static __always_inline bool looks_like_http(__u32 w)
{
#define W(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)
	switch (w) {
	case W('G', 'E', 'T', ' '):
	case W('H', 'E', 'A', 'D'):
	case W('P', 'O', 'S', 'T'):
	case W('P', 'U', 'T', ' '):
	case W('D', 'E', 'L', 'E'):
	case W('P', 'A', 'T', 'C'):
	case W('O', 'P', 'T', 'I'):
	case W('C', 'O', 'N', 'N'):
	case W('T', 'R', 'A', 'C'):
	case W('H', 'T', 'T', 'P'):
		return true;
	}
	return false;
#undef W
}

/* Bytes of an HTTP response kept: its status line ("HTTP/1.1 200") is all user space reads. */
#define STATUS_BYTES 32

struct capture_big {
	struct vigil_capture_event ev;
	__u8 payload[VIGIL_CAPTURE_MAX];
};

struct capture_small {
	struct vigil_capture_event ev;
	__u8 payload[STATUS_BYTES];
};

static __always_inline void capture__fill(struct vigil_capture_event *ev, struct __sk_buff *skb,
					  __u8 dir, const struct pkt *p, __u32 netns,
					  const struct sock_owner *o, __u32 len)
{
	emit__header(&ev->hdr, VIGIL_EV_CAPTURE, sizeof(*ev) + len);
	ev->hdr.pid = o ? o->pid : 0;
	ev->hdr.tgid = o ? o->tgid : 0;
	ev->hdr.cgroup_id = bpf_skb_cgroup_id(skb);
	ev->cookie = bpf_get_socket_cookie(skb);
	ev->netns = netns;
	ev->payload_len = p->payload_len;
	ev->local_port = p->local_port;
	ev->remote_port = p->remote_port;
	ev->captured_len = len;
	ev->family = p->family;
	ev->protocol = p->protocol;
	ev->direction = dir;
	__builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
	__builtin_memcpy(ev->local_addr, p->local_addr, 16);
	__builtin_memcpy(ev->remote_addr, p->remote_addr, 16);
}

/*
 * Copies the first bytes of the payload into a record of `type` (a fixed size, as ring-buffer
 * reservations must be), at most `max` (a power of two) and cfg_capture_bytes.
 */
#define CAPTURE(type, max)                                                                  \
	do {                                                                                 \
		type *c;                                                                     \
		__u32 len = p->payload_len < cfg_capture_bytes ? p->payload_len : cfg_capture_bytes; \
		if (len == 0)                                                                \
			return;                                                              \
		if (len > (max))                                                             \
			len = (max);                                                         \
		if (!emit__admit(bpf_skb_cgroup_id(skb), VIGIL_EV_CAPTURE))                  \
			return;                                                              \
		c = emit__reserve(sizeof(*c), VIGIL_EV_CAPTURE);                             \
		if (!c)                                                                      \
			return;                                                              \
		/* 1..max in a form the verifier can follow. */                              \
		len = ((len - 1) & ((max) - 1)) + 1;                                         \
		if (bpf_skb_load_bytes(skb, p->payload_off, c->payload, len)) {              \
			bpf_ringbuf_discard(c, 0);                                           \
			stats__inc(VIGIL_EV_CAPTURE, VIGIL_STAT_READ_ERROR);                 \
			return;                                                              \
		}                                                                            \
		capture__fill(&c->ev, skb, dir, p, netns, o, len);                           \
		emit__submit(c, VIGIL_EV_CAPTURE);                                           \
	} while (0)

static __always_inline void capture(struct __sk_buff *skb, __u8 dir, const struct pkt *p,
				    __u32 netns, const struct sock_owner *o)
{
	CAPTURE(struct capture_big, VIGIL_CAPTURE_MAX);
}

static __always_inline void capture_status(struct __sk_buff *skb, __u8 dir, const struct pkt *p,
					   __u32 netns, const struct sock_owner *o)
{
	CAPTURE(struct capture_small, STATUS_BYTES);
}

static __always_inline void skb__observe(struct __sk_buff *skb, __u8 dir)
{
	struct sock_owner *o = NULL;
	struct bpf_sock *bsk;
	struct sock *sk;
	struct pkt p;
	__u32 netns;
	__u32 head = 0;

	if (vigil_paused)
		return;
	bsk = skb->sk;
	if (!bsk)
		return;
	bsk = bpf_sk_fullsock(bsk);
	if (!bsk || (bsk->protocol != IPPROTO_UDP && bsk->protocol != IPPROTO_TCP))
		return;
	/*
	 * TCP connections are accounted from the socket at close: the packets matter only to the
	 * payload capture. Without HTTP that is DNS over TCP alone, so every other TCP packet
	 * leaves here, before any parsing (a busy server's packets are most of what runs this).
	 */
	if (bsk->protocol == IPPROTO_TCP &&
	    (!cfg_capture_bytes ||
	     (!cfg_http && bsk->src_port != 53 && bpf_ntohs(bsk->dst_port) != 53)))
		return;
	if (!pkt__parse(skb, dir, &p) || p.protocol != bsk->protocol)
		return;
	sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	netns = sk->__sk_common.skc_net.net->ns.inum;

	if (p.protocol == IPPROTO_UDP) {
		/* UDP sends run in the sender's context: it names the owner. */
		if (dir == VIGIL_DIR_EGRESS) {
			if (self__current())
				return;
			o = bpf_sk_storage_get(&vigil_sock_owner, bsk, NULL,
					       BPF_SK_STORAGE_GET_F_CREATE);
			if (o && o->tgid != bpf_get_current_pid_tgid() >> 32)
				owner__from_current(o, 0);
		} else {
			o = bpf_sk_storage_get(&vigil_sock_owner, bsk, NULL, 0);
			if (o && o->is_self)
				return;
		}
		flow__count(skb, dir, &p, netns, o);
	} else {
		o = bpf_sk_storage_get(&vigil_sock_owner, bsk, NULL, 0);
		/* Sockets the agent does not follow (its own, or older than it) are not captured. */
		if (!o || o->is_self)
			return;
	}
	if (!cfg_capture_bytes || p.payload_len == 0)
		return;
	if (p.local_port == 53 || p.remote_port == 53) {
		capture(skb, dir, &p, netns, o);
		return;
	}
	if (!cfg_http || p.protocol != IPPROTO_TCP || p.payload_len < 4)
		return;
	/*
	 * Over loopback the server is this host's too, and its socket sees the same request and
	 * response: the client's copies would only be merged away in user space.
	 */
	if (skb->ifindex == LOOPBACK_IFINDEX && o && o->role == VIGIL_ROLE_CLIENT)
		return;
	if (bpf_skb_load_bytes(skb, p.payload_off, &head, 4))
		return;
	if (head == ('H' | 'T' << 8 | 'T' << 16 | (__u32)'P' << 24))
		capture_status(skb, dir, &p, netns, o);
	else if (looks_like_http(head))
		capture(skb, dir, &p, netns, o);
}

SEC("cgroup_skb/egress")
int vigil_skb_egress(struct __sk_buff *skb)
{
	skb__observe(skb, VIGIL_DIR_EGRESS);
	return 1;
}

SEC("cgroup_skb/ingress")
int vigil_skb_ingress(struct __sk_buff *skb)
{
	skb__observe(skb, VIGIL_DIR_INGRESS);
	return 1;
}

/* Packet drops with the kernel's reason; "not specified" frees are not drops. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(vigil_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	struct vigil_drop_key key = {};
	struct net_device *dev;
	struct sock *sk;
	__u64 *count, one = 1;
	__u16 l3;

	if (vigil_paused || reason <= SKB_DROP_REASON_NOT_SPECIFIED)
		return 0;
	key.reason = reason;
	dev = skb->dev;
	sk = skb->sk ? skb->sk : rx_sk;
	if (dev) {
		key.ifindex = dev->ifindex;
		key.netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	}
	if (sk) {
		key.cgroup_id = sk__cgroup_id(sk);
		if (!key.netns)
			key.netns = sk__netns(sk);
	}
	l3 = bpf_ntohs(skb->protocol);
	if (l3 == ETH_P_IP) {
		struct iphdr *ip = (void *)(skb->head + skb->network_header);

		key.protocol = BPF_CORE_READ(ip, protocol);
	} else if (l3 == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(skb->head + skb->network_header);

		key.protocol = BPF_CORE_READ(ip6, nexthdr);
	}
	count = bpf_map_lookup_elem(&vigil_drops, &key);
	if (!count) {
		long err = bpf_map_update_elem(&vigil_drops, &key, &one, BPF_NOEXIST);

		if (!err)
			return 0;
		if (err == -E2BIG) {
			net_stat__inc(VIGIL_NET_DROP_MAP_FULL);
			return 0;
		}
		/* Another CPU created it first. */
		count = bpf_map_lookup_elem(&vigil_drops, &key);
		if (!count)
			return 0;
	}
	__sync_fetch_and_add(count, 1);
	return 0;
}
