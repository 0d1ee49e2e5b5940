// podnet's rtnetlink addon: the CNI plugin programs links, addresses, routes and neighbours itself instead
// of starting `ip` twice per ADD (~2.5 ms of CPU each just to start here). The messages are built in
// TypeScript (src/linux/netlink.ts); this file only opens the socket inside a namespace and talks.
//
// Exports:
//   openSocket(netnsFd) -> fd    a NETLINK_ROUTE socket created inside the network namespace netnsFd
//                                refers to (-1: the calling thread's own); extended ACKs on, ACKs capped
//                                (errors carry the request's header, not the whole request), 10 s receive
//                                timeout. Close it with fs.closeSync.
//   request(fd, messages, stopOnError) -> Promise<Buffer>
//                                on a libuv worker thread, sends the netlink messages of the Buffer one at a
//                                time (each with its own nlmsg_seq and NLM_F_ACK) and reads until that
//                                message's ACK or error arrives; resolves with everything the kernel
//                                answered, in order. With stopOnError it sends nothing after a message that
//                                failed, as `ip -batch` stops there.
//   strerror(errno) -> string    the C library's text ("File exists"), as `ip` prints it.
//
// Build: scripts/build-native.sh (plain gcc, no node-gyp).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <node_api.h>

#include "napi-errors.h"
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

static int make_socket(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  int one = 1;
  // Extended ACKs carry the kernel's own explanation ("Nexthop has invalid gateway"), which `ip` prints.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  // The kernel answers rtnetlink requests synchronously; a timeout only guards against a lost answer
  // blocking the whole process.
  struct timeval timeout = {.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// openSocket(netnsFd) -> fd. Always returns to the namespace the thread was in, as netns.c does.
static napi_value js_open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t netns_fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &netns_fd) != napi_ok)
    return throw_type(env, "openSocket(netnsFd: number)");
  int fd;
  if (netns_fd < 0) {
    fd = make_socket();
    if (fd < 0) return throw_errno(env, errno, "netlink socket");
  } else {
    int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original < 0) return throw_errno(env, errno, "open /proc/thread-self/ns/net");
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      int err = errno;
      close(original);
      return throw_errno(env, err, "setns into the network namespace");
    }
    fd = make_socket();
    int err = errno;
    // Staying in the other namespace would move everything this process does next into it.
    if (setns(original, CLONE_NEWNET) != 0)
      napi_fatal_error("podnet netlink addon", NAPI_AUTO_LENGTH,
                       "could not return to the original network namespace", NAPI_AUTO_LENGTH);
    close(original);
    if (fd < 0) return throw_errno(env, err, "netlink socket in the network namespace");
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

struct output {
  char *data;
  size_t len, cap;
};

static bool output_append(struct output *o, const void *data, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 4096;
    while (cap < o->len + n) cap *= 2;
    char *d = realloc(o->data, cap);
    if (!d) return false;
    o->data = d;
    o->cap = cap;
  }
  memcpy(o->data + o->len, data, n);
  o->len += n;
  return true;
}

// Reads answers until the ACK or error of `seq` arrives (NLMSG_DONE for a dump); appends all of them to
// `out`. Returns the message's error (0 or a positive errno), or -1 with errno set when reading failed.
static int await_ack(int fd, uint32_t seq, struct output *out, char *buffer, size_t size) {
  for (;;) {
    ssize_t n = recv(fd, buffer, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (!output_append(out, buffer, (size_t)n)) {
      errno = ENOMEM;
      return -1;
    }
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;
      // A dump (NLM_F_DUMP) is not ACKed: NLMSG_DONE ends it, carrying the dump's error.
      if (h->nlmsg_type == NLMSG_DONE) {
        int error = 0;
        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof error)) memcpy(&error, NLMSG_DATA(h), sizeof error);
        return -error;
      }
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
        errno = EBADMSG;
        return -1;
      }
      const struct nlmsgerr *e = NLMSG_DATA(h);
      return -e->error;
    }
  }
}

// One request, run on a libuv worker thread: the kernel may sleep in a request (waiting for the RTNL lock,
// for an RCU grace period when a link goes away), and the caller's thread (the node agent's event loop,
// serving many ADDs at once) must not wait with it.
struct request {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  char *messages;
  size_t size;
  bool stop_on_error;
  struct output answers;
  int err;           // errno of a failed send/receive, 0 when the exchange completed
  const char *what;  // which step failed
};

static void request_execute(napi_env env, void *data) {
  (void)env;
  struct request *r = data;
  // One datagram holds whole messages: 64 KiB is more than any answer to these requests.
  size_t receive_size = 65536;
  char *receive = malloc(receive_size);
  if (!receive) {
    r->err = ENOMEM;
    r->what = "netlink request";
    return;
  }
  size_t offset = 0;
  while (offset < r->size) {
    struct nlmsghdr *h = (struct nlmsghdr *)(r->messages + offset);
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t sent;
    do sent = sendto(r->fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) {
      r->err = errno;
      r->what = "netlink send";
      break;
    }
    int error = await_ack(r->fd, h->nlmsg_seq, &r->answers, receive, receive_size);
    if (error < 0) {
      r->err = errno;
      r->what = errno == EAGAIN ? "netlink: no answer from the kernel within 10 s" : "netlink receive";
      break;
    }
    offset += NLMSG_ALIGN(h->nlmsg_len);
    if (error > 0 && r->stop_on_error) break;
  }
  free(receive);
}

static void request_complete(napi_env env, napi_status status, void *data) {
  struct request *r = data;
  napi_value value;
  if (status != napi_ok || r->err) {
    int err = r->err ? r->err : ECANCELED;
    char message[256];
    snprintf(message, sizeof message, "%s: %s", r->what ? r->what : "netlink request", strerror(err));
    napi_value code_value, message_value;
    const char *code = strerrorname_np(err);
    napi_create_string_utf8(env, code ? code : "EIO", NAPI_AUTO_LENGTH, &code_value);
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
    napi_create_error(env, code_value, message_value, &value);
    napi_reject_deferred(env, r->deferred, value);
  } else {
    napi_create_buffer_copy(env, r->answers.len, r->answers.data ? r->answers.data : "", NULL, &value);
    napi_resolve_deferred(env, r->deferred, value);
  }
  napi_delete_async_work(env, r->work);
  free(r->answers.data);
  free(r->messages);
  free(r);
}

// request(fd, messages: Buffer, stopOnError: boolean) -> Promise<Buffer> of the kernel's answers.
static napi_value js_request(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  void *data;
  size_t size;
  bool stop_on_error;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok ||
      napi_get_value_bool(env, argv[2], &stop_on_error) != napi_ok)
    return throw_type(env, "request(fd: number, messages: Buffer, stopOnError: boolean)");
  // Checked here, on the caller's thread, so that a malformed buffer is a TypeError at once.
  for (size_t offset = 0; offset < size;) {
    struct nlmsghdr *h = (struct nlmsghdr *)((char *)data + offset);
    if (offset + sizeof(struct nlmsghdr) > size || h->nlmsg_len < sizeof(struct nlmsghdr) ||
        offset + h->nlmsg_len > size)
      return throw_type(env, "request: a message's nlmsg_len does not fit the buffer");
    if (!(h->nlmsg_flags & NLM_F_ACK))
      return throw_type(env, "request: every message must carry NLM_F_ACK (its end is its ACK)");
    offset += NLMSG_ALIGN(h->nlmsg_len);
  }
  struct request *r = calloc(1, sizeof *r);
  if (r) r->messages = malloc(size ? size : 1);
  if (!r || !r->messages) {
    if (r) free(r);
    return throw_errno(env, ENOMEM, "netlink request");
  }
  memcpy(r->messages, data, size);
  r->fd = fd;
  r->size = size;
  r->stop_on_error = stop_on_error;
  napi_value promise, name;
  napi_create_promise(env, &r->deferred, &promise);
  napi_create_string_utf8(env, "podnet:netlink", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, request_execute, request_complete, r, &r->work);
  napi_queue_async_work(env, r->work);
  return promise;
}

static napi_value js_strerror(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t err;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &err) != napi_ok)
    return throw_type(env, "strerror(errno: number)");
  napi_value result;
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"openSocket", NULL, js_open_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"request", NULL, js_request, NULL, NULL, NULL, napi_enumerable, NULL},
      {"strerror", NULL, js_strerror, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

#ifndef NODE_GYP_MODULE_NAME
#define NODE_GYP_MODULE_NAME netlink
#endif
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
