// podnet's DNS fast path (src/dns/server/fastpath.ts): a thread that owns a listener's UDP socket, reads
// queries in batches (recvmmsg), answers cache hits from a table of encoded responses that JavaScript
// filled, and writes the answers in batches (sendmmsg). Everything else (misses, anything the strict
// parser below does not fully understand) goes to JavaScript in batches through a threadsafe function;
// JavaScript answers those through send() on the same socket and offers cacheable answers back with put().
// Node's per-datagram cost (~16-19 us of CPU here) is what this avoids, not DNS work.
//
// Exports:
//   openUdp(family 4|6, address, port) -> fd      a bound non-blocking UDP socket in this namespace
//   localPort(fd) -> port
//   start(fd, views, slots, onPackets(blob)) -> handle   takes ownership of fd (not when it throws)
//     blob: repeated [u16 packet length][u8 address length][sockaddr][packet], big-endian lengths
//   send(handle, bytes, sockaddr) -> boolean       sendto on the listener's socket (false after stop)
//   put(handle, key, response, validMs, view, kind, ttlOffsets: Uint32Array, ttls: Uint32Array, ageMs)
//     stores an answer (response as sent for the key's EDNS variant; at most 512 bytes) for validMs from
//     now; the TTLs at ttlOffsets are rewritten per answer as ttls minus whole seconds of age (the JS
//     cache's count-down, ageMs being the entry's age now)
//   del(handle, key) / clear(handle)
//   stats(handle, Float64Array) cumulative counters, VIEW_STATS per view (see fastpath.ts)
//   stop(handle)                                   stops and joins the thread, closes the fd
//
// The key: the question (name lower-cased, type, class), then 0x01 when the DO bit is set, then one byte
// 0x01/0x00 for EDNS present or not (the JS cache's key plus the EDNS byte). Queries are matched by the
// exact same rules as the JS parser; anything unusual (other opcodes, more records, trailing bytes, EDNS
// version > 0, pointers) is handed to JavaScript untouched.
//
// Build: scripts/build-native.sh (plain gcc, -lpthread).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>

#include "napi-errors.h"
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define PACKET_MAX 65536
#define RESPONSE_MAX 512
#define KEY_MAX (255 + 4 + 2)
#define PROBES 4
#define MAX_VIEWS 32
#define QTYPES 256
#define BUCKETS 16
// Per view: hits success, hits denial, rcodes[16], buckets[16], duration sum (s), count, requests[256].
#define VIEW_STATS (2 + 16 + BUCKETS + 2 + QTYPES)
#define JS_QUEUE 1024
#define MAX_TTLS 48  // records in a 512-byte answer: at most (512 - 12 - 5) / 11

static const double bucket_le[BUCKETS] = {0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
                                          0.064,   0.128,  0.256, 0.512, 1.024, 2.048, 4.096, 8.192};

typedef struct {
  uint64_t hash;
  uint64_t deadline_ns;  // 0 = empty
  uint64_t stored_ns;    // when the JS cache stored the answer: TTLs count down from there
  uint32_t ttl[MAX_TTLS];
  uint16_t ttl_offset[MAX_TTLS];
  uint8_t ttls;
  uint16_t key_len;
  uint16_t response_len;
  uint16_t question_len;  // bytes [12, 12 + question_len) of the response are the question
  uint8_t view;
  uint8_t kind;
  uint8_t key[KEY_MAX];
  uint8_t response[RESPONSE_MAX];
} slot_t;

typedef struct {
  uint64_t hits[2];
  uint64_t rcodes[16];
  uint64_t buckets[BUCKETS];
  double duration_sum;
  uint64_t count;
  uint64_t requests[QTYPES];
} view_stats_t;

typedef struct {
  int fd;
  int wake_fd;
  volatile int stopping;
  bool stopped;
  pthread_t thread;
  pthread_mutex_t lock;  // table and stats
  slot_t *slots;
  uint32_t mask;
  uint32_t views;
  view_stats_t stats[MAX_VIEWS];
  uint64_t js_dropped;
  napi_threadsafe_function tsfn;
  napi_env env;
  // The struct goes when both its JavaScript handle and the threadsafe function are finalized (both run
  // on the main thread, in either order).
  bool external_gone;
  bool tsfn_gone;
} fast_t;

typedef struct {
  size_t len;
  uint8_t data[];
} blob_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h | 1;
}

// Parses a query by the fast path's strict rules; on success fills key (and its length), the question's
// length and qtype. Returns false for anything else (JavaScript decides what to do with it).
static bool parse_query(const uint8_t *p, size_t n, uint8_t *key, size_t *key_len, size_t *question_len,
                        unsigned *qtype) {
  if (n < 12 + 1 + 4) return false;
  uint16_t flags = (uint16_t)(p[2] << 8 | p[3]);
  if (flags & 0x8000) return false;             // a response
  if (flags & 0x7800) return false;             // opcode
  if (p[4] != 0 || p[5] != 1) return false;     // QDCOUNT 1
  if (p[6] | p[7] | p[8] | p[9]) return false;  // ANCOUNT, NSCOUNT 0
  if (p[10] != 0 || p[11] > 1) return false;    // ARCOUNT 0 or 1
  size_t pos = 12;
  for (;;) {
    if (pos >= n) return false;
    uint8_t len = p[pos];
    if (len > 63) return false;
    if (pos + len + 1 - 12 > 255) return false;
    if (pos + 1 + len > n) return false;
    key[pos - 12] = len;
    for (size_t i = pos + 1; i <= pos + len; i++) {
      uint8_t c = p[i];
      key[i - 12] = (c >= 0x41 && c <= 0x5a) ? (uint8_t)(c | 0x20) : c;
    }
    pos += (size_t)len + 1;
    if (len == 0) break;
  }
  if (pos + 4 > n) return false;
  *qtype = (unsigned)(p[pos] << 8 | p[pos + 1]);
  if (*qtype >= QTYPES) return false;
  memcpy(key + (pos - 12), p + pos, 4);
  pos += 4;
  size_t k = pos - 12;
  *question_len = k;
  if (p[11] == 0) {
    if (pos != n) return false;
    key[k++] = 0;
  } else {
    // Exactly one OPT record: root name, type 41, class = size, ext rcode, version 0, flags, rdata.
    if (pos + 11 > n) return false;
    if (p[pos] != 0 || p[pos + 1] != 0 || p[pos + 2] != 41) return false;
    if (p[pos + 6] != 0) return false;  // version
    bool dnssec_ok = (p[pos + 7] & 0x80) != 0;
    size_t rdlength = (size_t)(p[pos + 9] << 8 | p[pos + 10]);
    if (pos + 11 + rdlength != n) return false;
    if (dnssec_ok) key[k++] = 1;
    key[k++] = 1;
  }
  *key_len = k;
  return true;
}

static slot_t *find(fast_t *f, const uint8_t *key, size_t key_len, uint64_t hash) {
  for (uint32_t i = 0; i < PROBES; i++) {
    slot_t *s = &f->slots[(hash + i) & f->mask];
    if (s->deadline_ns && s->hash == hash && s->key_len == key_len && memcmp(s->key, key, key_len) == 0)
      return s;
  }
  return NULL;
}

static void count_answer(fast_t *f, uint8_t view, uint8_t kind, uint8_t rcode, unsigned qtype,
                         double seconds) {
  view_stats_t *v = &f->stats[view % MAX_VIEWS];
  v->hits[kind & 1]++;
  v->rcodes[rcode & 0xf]++;
  v->requests[qtype]++;
  v->duration_sum += seconds;
  v->count++;
  for (int i = 0; i < BUCKETS; i++)
    if (seconds <= bucket_le[i]) {
      v->buckets[i]++;
      break;
    }
}

typedef struct {
  struct mmsghdr in[BATCH];
  struct iovec in_iov[BATCH];
  struct sockaddr_storage in_addr[BATCH];
  uint8_t *in_buf;  // BATCH * PACKET_MAX
  struct mmsghdr out[BATCH];
  struct iovec out_iov[BATCH];
  uint8_t out_buf[BATCH][RESPONSE_MAX];
  uint8_t hit_view[BATCH];
  uint8_t hit_kind[BATCH];
  unsigned hit_qtype[BATCH];
} batch_t;

static void hand_to_js(fast_t *f, batch_t *b, const int *misses, int count) {
  size_t total = 0;
  for (int i = 0; i < count; i++) total += 3 + b->in[misses[i]].msg_hdr.msg_namelen + b->in[misses[i]].msg_len;
  blob_t *blob = malloc(sizeof(blob_t) + total);
  if (!blob) {
    f->js_dropped += (uint64_t)count;
    return;
  }
  size_t at = 0;
  for (int i = 0; i < count; i++) {
    struct mmsghdr *m = &b->in[misses[i]];
    size_t alen = m->msg_hdr.msg_namelen;
    blob->data[at++] = (uint8_t)(m->msg_len >> 8);
    blob->data[at++] = (uint8_t)m->msg_len;
    blob->data[at++] = (uint8_t)alen;
    memcpy(blob->data + at, m->msg_hdr.msg_name, alen);
    at += alen;
    memcpy(blob->data + at, m->msg_hdr.msg_iov->iov_base, m->msg_len);
    at += m->msg_len;
  }
  blob->len = total;
  if (napi_call_threadsafe_function(f->tsfn, blob, napi_tsfn_nonblocking) != napi_ok) {
    free(blob);
    f->js_dropped += (uint64_t)count;
  }
}

static void *run(void *arg) {
  fast_t *f = arg;
  batch_t *b = calloc(1, sizeof(batch_t));
  uint8_t *in_buf = b ? malloc((size_t)BATCH * PACKET_MAX) : NULL;
  if (!b || !in_buf) {
    free(b);
    free(in_buf);
    return NULL;
  }
  b->in_buf = in_buf;
  struct pollfd fds[2] = {{.fd = f->fd, .events = POLLIN}, {.fd = f->wake_fd, .events = POLLIN}};
  while (!f->stopping) {
    for (int i = 0; i < BATCH; i++) {
      b->in_iov[i].iov_base = b->in_buf + (size_t)i * PACKET_MAX;
      b->in_iov[i].iov_len = PACKET_MAX;
      memset(&b->in[i].msg_hdr, 0, sizeof b->in[i].msg_hdr);
      b->in[i].msg_hdr.msg_iov = &b->in_iov[i];
      b->in[i].msg_hdr.msg_iovlen = 1;
      b->in[i].msg_hdr.msg_name = &b->in_addr[i];
      b->in[i].msg_hdr.msg_namelen = sizeof b->in_addr[i];
    }
    int got = recvmmsg(f->fd, b->in, BATCH, MSG_DONTWAIT, NULL);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
      } else if (errno == EBADF || errno == ENOTSOCK)
        break;
      // EINTR, ICMP errors reported for earlier sends (ECONNREFUSED), ENOMEM: read on.
      continue;
    }
    if (got == 0) continue;
    uint64_t received = now_ns();
    int misses[BATCH];
    int nmiss = 0, nhit = 0;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < got; i++) {
      struct mmsghdr *m = &b->in[i];
      const uint8_t *p = m->msg_hdr.msg_iov->iov_base;
      size_t n = m->msg_len;
      uint8_t key[KEY_MAX + 2];
      size_t key_len = 0, question_len = 0;
      unsigned qtype = 0;
      slot_t *s = NULL;
      if (!(m->msg_hdr.msg_flags & MSG_TRUNC) && parse_query(p, n, key, &key_len, &question_len, &qtype)) {
        s = find(f, key, key_len, hash_bytes(key, key_len));
        if (s && (s->deadline_ns <= received || s->question_len != question_len)) s = NULL;
      }
      if (!s) {
        misses[nmiss++] = i;
        continue;
      }
      uint8_t *o = b->out_buf[nhit];
      memcpy(o, s->response, s->response_len);
      o[0] = p[0];  // id
      o[1] = p[1];
      // RD (0x01 of byte 2) and CD (0x10 of byte 3) as the client sent them.
      o[2] = (uint8_t)((o[2] & ~0x01) | (p[2] & 0x01));
      o[3] = (uint8_t)((o[3] & ~0x10) | (p[3] & 0x10));
      memcpy(o + 12, p + 12, question_len);  // the client's spelling of the name
      // TTLs as the JS cache renders them: stored TTL minus the whole seconds since it was stored.
      uint64_t age = received > s->stored_ns ? (received - s->stored_ns) / 1000000000ull : 0;
      for (unsigned t = 0; t < s->ttls; t++) {
        uint32_t ttl = s->ttl[t] > age ? (uint32_t)(s->ttl[t] - age) : 0;
        uint8_t *at = o + s->ttl_offset[t];
        at[0] = (uint8_t)(ttl >> 24);
        at[1] = (uint8_t)(ttl >> 16);
        at[2] = (uint8_t)(ttl >> 8);
        at[3] = (uint8_t)ttl;
      }
      b->out_iov[nhit].iov_base = o;
      b->out_iov[nhit].iov_len = s->response_len;
      memset(&b->out[nhit].msg_hdr, 0, sizeof b->out[nhit].msg_hdr);
      b->out[nhit].msg_hdr.msg_iov = &b->out_iov[nhit];
      b->out[nhit].msg_hdr.msg_iovlen = 1;
      b->out[nhit].msg_hdr.msg_name = m->msg_hdr.msg_name;
      b->out[nhit].msg_hdr.msg_namelen = m->msg_hdr.msg_namelen;
      b->hit_view[nhit] = s->view;
      b->hit_kind[nhit] = s->kind;
      b->hit_qtype[nhit] = qtype;
      nhit++;
    }
    pthread_mutex_unlock(&f->lock);
    int sent = 0;
    while (sent < nhit) {
      int r = sendmmsg(f->fd, b->out + sent, (unsigned)(nhit - sent), MSG_DONTWAIT);
      if (r > 0) sent += r;
      else if (r < 0 && errno == EINTR) continue;
      else sent++;  // this datagram cannot go (full buffer, unreachable): UDP drops it, as the kernel would
    }
    if (nhit) {
      double seconds = (double)(now_ns() - received) / 1e9;
      pthread_mutex_lock(&f->lock);
      for (int i = 0; i < nhit; i++)
        count_answer(f, b->hit_view[i], b->hit_kind[i], b->out_buf[i][3] & 0xf, b->hit_qtype[i], seconds);
      pthread_mutex_unlock(&f->lock);
    }
    if (nmiss) hand_to_js(f, b, misses, nmiss);
  }
  free(b->in_buf);
  free(b);
  return NULL;
}

// ---- N-API ------------------------------------------------------------------------------------------------

static napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static napi_value js_open_udp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t family, port;
  char address[64];
  size_t alen;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &family) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof address, &alen) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535)
    return throw_type(env, "openUdp(family: 4 | 6, address: string, port: number)");
  struct sockaddr_storage addr;
  socklen_t len;
  memset(&addr, 0, sizeof addr);
  int af = family == 6 ? AF_INET6 : AF_INET;
  if (af == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &a->sin_addr) != 1) return throw_type(env, "openUdp: not an IPv4 address");
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, address, &a->sin6_addr) != 1)
      return throw_type(env, "openUdp: not an IPv6 address");
    len = sizeof *a;
  }
  int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (bind(fd, (struct sockaddr *)&addr, len) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  return number(env, fd);
}

static napi_value js_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return throw_type(env, "localPort(fd: number)");
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0) return throw_errno(env, errno, "getsockname");
  int port = addr.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&addr)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&addr)->sin_port);
  return number(env, port);
}

static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  blob_t *blob = data;
  if (env && callback && blob) {
    napi_value buffer, undefined;
    void *copy;
    if (napi_create_buffer_copy(env, blob->len, blob->data, &copy, &buffer) == napi_ok &&
        napi_get_undefined(env, &undefined) == napi_ok)
      napi_call_function(env, undefined, callback, 1, &buffer, NULL);
  }
  free(blob);
}

static void stop_fast(fast_t *f) {
  if (f->stopped) return;
  f->stopped = true;
  f->stopping = 1;
  uint64_t one = 1;
  if (write(f->wake_fd, &one, sizeof one) < 0) { /* the thread also sees `stopping` on its next wake-up */ }
  pthread_join(f->thread, NULL);
  pthread_mutex_lock(&f->lock);
  close(f->fd);
  f->fd = -1;
  close(f->wake_fd);
  f->wake_fd = -1;
  free(f->slots);
  f->slots = NULL;
  pthread_mutex_unlock(&f->lock);
  napi_release_threadsafe_function(f->tsfn, napi_tsfn_release);
}

static void cleanup_hook(void *arg) { stop_fast(arg); }

// Runs once the threadsafe function is gone (every queued batch delivered or freed): the handle's memory.
static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  fast_t *f = data;
  f->tsfn_gone = true;
  if (f->external_gone) {
    pthread_mutex_destroy(&f->lock);
    free(f);
  }
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  fast_t *f = data;
  if (!f->stopped) {
    napi_remove_env_cleanup_hook(env, cleanup_hook, f);
    stop_fast(f);
  }
  f->external_gone = true;
  if (f->tsfn_gone) {
    pthread_mutex_destroy(&f->lock);
    free(f);
  }
}

static fast_t *get_handle(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, views, slots;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &views) != napi_ok ||
      napi_get_value_int32(env, argv[2], &slots) != napi_ok || napi_typeof(env, argv[3], &type) != napi_ok ||
      type != napi_function || views < 1 || views > MAX_VIEWS || slots < 16 || slots > (1 << 20))
    return throw_type(env, "start(fd, views 1..32, slots 16..2^20, onPackets: function)");
  fast_t *f = calloc(1, sizeof(fast_t));
  if (!f) return throw_errno(env, ENOMEM, "start");
  uint32_t cap = 16;
  while (cap < (uint32_t)slots) cap <<= 1;
  f->slots = calloc(cap, sizeof(slot_t));
  f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!f->slots || f->wake_fd < 0) {
    int err = f->wake_fd < 0 ? errno : ENOMEM;
    if (f->wake_fd >= 0) close(f->wake_fd);
    free(f->slots);
    free(f);
    return throw_errno(env, err, "start");
  }
  f->mask = cap - 1;
  f->views = (uint32_t)views;
  f->fd = fd;
  f->env = env;
  pthread_mutex_init(&f->lock, NULL);
  napi_value name;
  napi_create_string_utf8(env, "podnet-dnsfast", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[3], NULL, name, JS_QUEUE, 1, f, tsfn_finalize, NULL, call_js,
                                      &f->tsfn) != napi_ok) {
    close(f->wake_fd);
    free(f->slots);
    pthread_mutex_destroy(&f->lock);
    free(f);
    napi_throw_error(env, NULL, "start: cannot create the threadsafe function");
    return NULL;
  }
  int err = pthread_create(&f->thread, NULL, run, f);
  if (err) {
    napi_release_threadsafe_function(f->tsfn, napi_tsfn_abort);
    close(f->wake_fd);
    free(f->slots);
    f->slots = NULL;
    f->stopped = true;
    f->external_gone = true;  // no handle: tsfn_finalize frees f
    return throw_errno(env, err, "pthread_create");
  }
  napi_add_env_cleanup_hook(env, cleanup_hook, f);
  napi_value external;
  if (napi_create_external(env, f, handle_finalize, NULL, &external) != napi_ok) return NULL;
  return external;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  fast_t *f;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      !(f = get_handle(env, argv[0])))
    return throw_type(env, "stop(handle)");
  if (!f->stopped) {
    napi_remove_env_cleanup_hook(env, cleanup_hook, f);
    stop_fast(f);
  }
  return NULL;
}

static bool get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, value, &is) != napi_ok || !is) return false;
  return napi_get_buffer_info(env, value, (void **)data, len) == napi_ok;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  fast_t *f;
  uint8_t *data, *addr;
  size_t len, alen;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !(f = get_handle(env, argv[0])) || !get_bytes(env, argv[1], &data, &len) ||
      !get_bytes(env, argv[2], &addr, &alen) || alen > sizeof(struct sockaddr_storage))
    return throw_type(env, "send(handle, bytes: Buffer, address: Buffer)");
  bool ok = false;
  if (!f->stopped && f->fd >= 0)
    ok = sendto(f->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)addr, (socklen_t)alen) >= 0;
  napi_get_boolean(env, ok, &result);
  return result;
}

static bool get_u32s(napi_env env, napi_value value, uint32_t **data, size_t *len) {
  napi_typedarray_type type;
  void *raw;
  if (napi_get_typedarray_info(env, value, &type, len, &raw, NULL, NULL) != napi_ok || type != napi_uint32_array)
    return false;
  *data = raw;
  return true;
}

static napi_value js_put(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  fast_t *f;
  uint8_t *key, *response;
  uint32_t *offsets, *ttls;
  size_t key_len, response_len, noffsets, nttls;
  double valid_ms, age_ms;
  int32_t view, kind;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 9 ||
      !(f = get_handle(env, argv[0])) || !get_bytes(env, argv[1], &key, &key_len) ||
      !get_bytes(env, argv[2], &response, &response_len) ||
      napi_get_value_double(env, argv[3], &valid_ms) != napi_ok ||
      napi_get_value_int32(env, argv[4], &view) != napi_ok || napi_get_value_int32(env, argv[5], &kind) != napi_ok ||
      !get_u32s(env, argv[6], &offsets, &noffsets) || !get_u32s(env, argv[7], &ttls, &nttls) ||
      napi_get_value_double(env, argv[8], &age_ms) != napi_ok)
    return throw_type(env, "put(handle, key, response, validMs, view, kind, ttlOffsets, ttls, ageMs)");
  if (noffsets != nttls || noffsets > MAX_TTLS || !(age_ms >= 0) || age_ms > 1e9) return NULL;
  // Entries JavaScript cannot have meant: ignore rather than store something the thread would misuse.
  if (key_len < 1 + 4 + 1 || key_len > KEY_MAX || response_len > RESPONSE_MAX || view < 0 ||
      (uint32_t)view >= f->views || !(valid_ms > 0))
    return NULL;
  // The question's length, from the name (the key's last one or two bytes are flags).
  size_t pos = 0;
  while (pos < key_len && key[pos] != 0) pos += (size_t)key[pos] + 1;
  size_t question_len = pos + 1 + 4;
  if (question_len > key_len || 12 + question_len > response_len) return NULL;
  for (size_t i = 0; i < noffsets; i++)
    if (offsets[i] < 12 + question_len || (size_t)offsets[i] + 4 > response_len) return NULL;
  uint64_t hash = hash_bytes(key, key_len);
  pthread_mutex_lock(&f->lock);
  if (!f->slots) {
    pthread_mutex_unlock(&f->lock);
    return NULL;
  }
  uint64_t now = now_ns();
  slot_t *target = NULL;
  for (uint32_t i = 0; i < PROBES && !target; i++) {
    slot_t *s = &f->slots[(hash + i) & f->mask];
    if (s->deadline_ns && s->hash == hash && s->key_len == key_len && memcmp(s->key, key, key_len) == 0)
      target = s;
  }
  for (uint32_t i = 0; i < PROBES && !target; i++) {
    slot_t *s = &f->slots[(hash + i) & f->mask];
    if (s->deadline_ns <= now) target = s;
  }
  if (!target) target = &f->slots[hash & f->mask];  // full neighbourhood: overwrite
  target->hash = hash;
  target->key_len = (uint16_t)key_len;
  memcpy(target->key, key, key_len);
  target->response_len = (uint16_t)response_len;
  memcpy(target->response, response, response_len);
  target->question_len = (uint16_t)question_len;
  target->view = (uint8_t)view;
  target->kind = (uint8_t)(kind & 1);
  if (valid_ms > 7 * 86400e3) valid_ms = 7 * 86400e3;
  target->deadline_ns = now + (uint64_t)(valid_ms * 1e6);
  uint64_t age_ns = (uint64_t)(age_ms * 1e6);
  target->stored_ns = now > age_ns ? now - age_ns : 0;
  target->ttls = (uint8_t)noffsets;
  for (size_t i = 0; i < noffsets; i++) {
    target->ttl_offset[i] = (uint16_t)offsets[i];
    target->ttl[i] = ttls[i];
  }
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

static napi_value js_del(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  fast_t *f;
  uint8_t *key;
  size_t key_len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !(f = get_handle(env, argv[0])) || !get_bytes(env, argv[1], &key, &key_len))
    return throw_type(env, "del(handle, key)");
  if (key_len > KEY_MAX) return NULL;
  pthread_mutex_lock(&f->lock);
  if (f->slots) {
    slot_t *s = find(f, key, key_len, hash_bytes(key, key_len));
    if (s) s->deadline_ns = 0;
  }
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

static napi_value js_clear(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  fast_t *f;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      !(f = get_handle(env, argv[0])))
    return throw_type(env, "clear(handle)");
  pthread_mutex_lock(&f->lock);
  if (f->slots) memset(f->slots, 0, ((size_t)f->mask + 1) * sizeof(slot_t));
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  fast_t *f;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !(f = get_handle(env, argv[0])) ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < (size_t)f->views * VIEW_STATS + 1)
    return throw_type(env, "stats(handle, Float64Array of views * VIEW_STATS + 1)");
  double *out = data;
  pthread_mutex_lock(&f->lock);
  for (uint32_t v = 0; v < f->views; v++) {
    view_stats_t *s = &f->stats[v];
    double *o = out + (size_t)v * VIEW_STATS;
    o[0] = (double)s->hits[0];
    o[1] = (double)s->hits[1];
    for (int i = 0; i < 16; i++) o[2 + i] = (double)s->rcodes[i];
    for (int i = 0; i < BUCKETS; i++) o[18 + i] = (double)s->buckets[i];
    o[18 + BUCKETS] = s->duration_sum;
    o[19 + BUCKETS] = (double)s->count;
    for (int i = 0; i < QTYPES; i++) o[20 + BUCKETS + i] = (double)s->requests[i];
  }
  out[(size_t)f->views * VIEW_STATS] = (double)f->js_dropped;
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openUdp", NULL, js_open_udp, NULL, NULL, NULL, napi_default, NULL},
      {"localPort", NULL, js_local_port, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"put", NULL, js_put, NULL, NULL, NULL, napi_default, NULL},
      {"del", NULL, js_del, NULL, NULL, NULL, napi_default, NULL},
      {"clear", NULL, js_clear, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value view_stats;
  napi_create_int32(env, VIEW_STATS, &view_stats);
  napi_set_named_property(env, exports, "VIEW_STATS", view_stats);
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
