// podnet's network-namespace addon: Node has no setns(2), and one process must hold sockets inside many
// network namespaces (the lab agent: a responder per pod port, the CNI server per node) and open client
// sockets inside a pod's namespace (probes). A socket belongs to the namespace it was created in, for its
// whole life, whichever thread later uses it: so we enter the namespace, create (bind, listen) the socket,
// and return at once. Node then adopts the file descriptor (net.Server.listen({fd}), dgram bind({fd}),
// new net.Socket({fd})).
//
// Exports:
//   setns(fd)                                  setns(fd, CLONE_NEWNET) on the calling (main) thread
//   openSocket(netnsFd, family, type, port, address, listen) -> fd
//     family 4 | 6 | 0 (AF_UNIX); type "tcp" | "udp" | "unix"; port -1 = do not bind (ignored for unix);
//     address: bind address ("" = any); for unix the abstract name without the leading "@".
//   spawnSync(argv[], envp[], stdin: string, timeoutMs) -> { status, signal (number), timedOut, stdout, stderr }
//     posix_spawnp (vfork-style: its cost does not grow with this process's size, unlike Node's fork,
//     ~5 ms a call at 100 MB here), in the calling thread's network namespace; stdin written, stdout
//     and stderr read to the end with poll; killed (SIGKILL) after timeoutMs.
//
// Build: scripts/build-native.sh (plain gcc, no node-gyp).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <node_api.h>

#include "napi-errors.h"
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_TEXT 256

// setns(fd): moves the calling thread (Node's main thread) into the network namespace fd refers to.
static napi_value js_setns(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok)
    return throw_type(env, "setns(fd: number)");
  if (setns(fd, CLONE_NEWNET) != 0) return throw_errno(env, errno, "setns(%d, CLONE_NEWNET)", fd);
  return NULL;
}

// Fills `addr` for an IPv4 or IPv6 bind; returns false when `address` is not an address of `family`.
static bool inet_address(int family, const char *address, int port, struct sockaddr_storage *addr,
                         socklen_t *len) {
  memset(addr, 0, sizeof *addr);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    *len = sizeof *a;
    return address[0] == '\0' || inet_pton(AF_INET, address, &a->sin_addr) == 1;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  a->sin6_addr = in6addr_any;
  *len = sizeof *a;
  return address[0] == '\0' || inet_pton(AF_INET6, address, &a->sin6_addr) == 1;
}

// Creates the socket in the current namespace (the caller has entered the target one). On failure
// returns -1 with `step` naming what failed and errno set.
static int make_socket(int family, const char *type, int port, const char *address, bool listening,
                       char *step, size_t step_size) {
  bool unix_socket = strcmp(type, "unix") == 0;
  bool udp = strcmp(type, "udp") == 0;
  int domain = unix_socket ? AF_UNIX : family == 6 ? AF_INET6 : AF_INET;
  int sock_type = udp ? SOCK_DGRAM : SOCK_STREAM;
  const char *shown = address[0] ? address : family == 6 ? "::" : "0.0.0.0";

  snprintf(step, step_size, "socket");
  int fd = socket(domain, sock_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  // A listener must be able to take its port again while old connections sit in TIME_WAIT.
  if (!unix_socket && !udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    snprintf(step, step_size, "setsockopt SO_REUSEADDR");
    goto fail;
  }
  if (unix_socket) {
    // Abstract address, full length (sun_path padded with NULs): what Node's own listen("\0name") and
    // connect("\0name") use, and what socat's unix-tightsocklen=0 reaches.
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t n = strlen(address);
    if (n == 0 || n > sizeof addr.sun_path - 1) {
      snprintf(step, step_size, "bind @%s in netns (name must be 1-%zu bytes)", address,
               sizeof addr.sun_path - 1);
      errno = EINVAL;
      goto fail;
    }
    memcpy(addr.sun_path + 1, address, n);
    snprintf(step, step_size, "bind @%s in netns", address);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) goto fail;
  } else if (port >= 0) {
    struct sockaddr_storage addr;
    socklen_t len;
    if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
      snprintf(step, step_size, "setsockopt IPV6_V6ONLY");
      goto fail;
    }
    if (family == 6)
      snprintf(step, step_size, "bind [%s]:%d in netns", shown, port);
    else
      snprintf(step, step_size, "bind %s:%d in netns", shown, port);
    if (!inet_address(domain, address, port, &addr, &len)) {
      errno = EINVAL;
      goto fail;
    }
    if (bind(fd, (struct sockaddr *)&addr, len) != 0) goto fail;
  }
  // Listening here, not later in Node: two SO_REUSEADDR sockets may both bind a port as long as neither
  // listens, so only bind + listen together reports a port that is already taken.
  if (listening && !udp) {
    snprintf(step, step_size, "listen in netns");
    if (listen(fd, 4096) != 0) goto fail;
  }
  return fd;
fail : {
  int err = errno;
  close(fd);
  errno = err;
  return -1;
}
}

// openSocket(netnsFd, family, type, port, address, listen) -> fd. Always returns to the namespace the
// thread was in, also when a step fails.
static napi_value js_open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int32_t netns_fd, family, port;
  char type[8], address[MAX_TEXT];
  size_t type_len, address_len;
  bool listening;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      napi_get_value_int32(env, argv[0], &netns_fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &family) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], type, sizeof type, &type_len) != napi_ok ||
      napi_get_value_int32(env, argv[3], &port) != napi_ok ||
      napi_get_value_string_utf8(env, argv[4], address, sizeof address, &address_len) != napi_ok ||
      napi_get_value_bool(env, argv[5], &listening) != napi_ok)
    return throw_type(env, "openSocket(netnsFd: number, family: 4 | 6 | 0, type: \"tcp\" | \"udp\" | "
                           "\"unix\", port: number, address: string, listen: boolean)");
  bool unix_socket = strcmp(type, "unix") == 0;
  if (!unix_socket && strcmp(type, "tcp") != 0 && strcmp(type, "udp") != 0)
    return throw_type(env, "openSocket: type must be \"tcp\", \"udp\" or \"unix\"");
  if (unix_socket ? family != 0 : family != 4 && family != 6)
    return throw_type(env, "openSocket: family must be 4 or 6 (0 with type \"unix\")");
  if (port > 65535) return throw_type(env, "openSocket: port must be -1..65535");
  if (address_len >= sizeof address - 1) return throw_type(env, "openSocket: address too long");

  int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) return throw_errno(env, errno, "open /proc/thread-self/ns/net");
  if (setns(netns_fd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(original);
    return throw_errno(env, err, "setns into netns (fd %d)", netns_fd);
  }
  char step[MAX_TEXT + 64];
  int fd = make_socket(family, type, port, address, listening, step, sizeof step);
  int err = errno;
  // Staying in the pod's namespace would silently move everything this process does next (listeners,
  // `ip` children, /proc/sys writes) into it: not recoverable, so stop the process.
  if (setns(original, CLONE_NEWNET) != 0)
    napi_fatal_error("podnet netns addon", NAPI_AUTO_LENGTH,
                     "could not return to the original network namespace", NAPI_AUTO_LENGTH);
  close(original);
  if (fd < 0) return throw_errno(env, err, "%s", step);
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

// Reads a JS array of strings into a NULL-terminated, malloc'ed vector (free with free_vector).
static char **string_vector(napi_env env, napi_value array) {
  uint32_t n = 0;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **v = calloc(n + 1, sizeof(char *));
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    size_t len = 0;
    napi_get_element(env, array, i, &item);
    if (napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok) {
      for (uint32_t j = 0; j < i; j++) free(v[j]);
      free(v);
      return NULL;
    }
    v[i] = malloc(len + 1);
    napi_get_value_string_utf8(env, item, v[i], len + 1, &len);
  }
  return v;
}

static void free_vector(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

struct buffer {
  char *data;
  size_t len, cap;
};

static int buffer_append(struct buffer *b, const char *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
  return 0;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static napi_value js_spawn_sync(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 4) return throw_type(env, "spawnSync(argv, envp, stdin, timeoutMs)");
  char **argv = string_vector(env, args[0]);
  char **envp = string_vector(env, args[1]);
  size_t in_len = 0;
  napi_get_value_string_utf8(env, args[2], NULL, 0, &in_len);
  char *input = malloc(in_len + 1);
  napi_get_value_string_utf8(env, args[2], input, in_len + 1, &in_len);
  int64_t timeout_ms = 30000;
  napi_get_value_int64(env, args[3], &timeout_ms);
  if (!argv || !envp || !argv[0] || !input) {
    free_vector(argv);
    free_vector(envp);
    free(input);
    return throw_type(env, "spawnSync: argv must be a non-empty list of strings, envp a list of strings");
  }

  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
    int e = errno;
    for (int i = 0; i < 2; i++) {
      if (in_pipe[i] >= 0) close(in_pipe[i]);
      if (out_pipe[i] >= 0) close(out_pipe[i]);
      if (err_pipe[i] >= 0) close(err_pipe[i]);
    }
    free_vector(argv);
    free_vector(envp);
    free(input);
    return throw_errno(env, e, "spawnSync: pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with default signal handling and no blocked signals (Node blocks/handles some).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    napi_value r = throw_errno(env, rc, "spawn %s", argv[0]);
    free_vector(argv);
    free_vector(envp);
    free(input);
    return r;
  }
  fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  struct buffer out = {0}, err = {0};
  size_t written = 0;
  if (in_len == 0) {
    close(in_pipe[1]);
    in_pipe[1] = -1;
  }
  long deadline = now_ms() + timeout_ms;
  bool killed = false;
  int open_fds = 2;
  while (open_fds > 0 || in_pipe[1] >= 0) {
    struct pollfd fds[3];
    int n = 0;
    if (out_pipe[0] >= 0) fds[n++] = (struct pollfd){out_pipe[0], POLLIN, 0};
    if (err_pipe[0] >= 0) fds[n++] = (struct pollfd){err_pipe[0], POLLIN, 0};
    if (in_pipe[1] >= 0) fds[n++] = (struct pollfd){in_pipe[1], POLLOUT, 0};
    long left = deadline - now_ms();
    if (left <= 0 && !killed) {
      kill(pid, SIGKILL);
      killed = true;
    }
    int ready = poll(fds, n, killed ? 100 : (int)left);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    for (int i = 0; i < n; i++) {
      if (!fds[i].revents) continue;
      int fd = fds[i].fd;
      if (fd == in_pipe[1]) {
        ssize_t w = write(fd, input + written, in_len - written);
        if (w > 0) written += (size_t)w;
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = in_len;  // EPIPE: the child stopped reading
        if (written >= in_len) {
          close(in_pipe[1]);
          in_pipe[1] = -1;
        }
        continue;
      }
      char chunk[65536];
      ssize_t r = read(fd, chunk, sizeof chunk);
      if (r > 0) {
        buffer_append(fd == out_pipe[0] ? &out : &err, chunk, (size_t)r);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fd);
        if (fd == out_pipe[0]) out_pipe[0] = -1;
        else err_pipe[0] = -1;
        open_fds--;
      }
    }
  }
  if (in_pipe[1] >= 0) close(in_pipe[1]);
  if (out_pipe[0] >= 0) close(out_pipe[0]);
  if (err_pipe[0] >= 0) close(err_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  free_vector(argv);
  free_vector(envp);
  free(input);

  napi_value result, value;
  napi_create_object(env, &result);
  if (WIFEXITED(status)) napi_create_int32(env, WEXITSTATUS(status), &value);
  else napi_get_null(env, &value);
  napi_set_named_property(env, result, "status", value);
  if (WIFSIGNALED(status)) napi_create_int32(env, WTERMSIG(status), &value);
  else napi_get_null(env, &value);
  napi_set_named_property(env, result, "signal", value);
  napi_get_boolean(env, killed, &value);
  napi_set_named_property(env, result, "timedOut", value);
  napi_create_string_utf8(env, out.data ? out.data : "", out.len, &value);
  napi_set_named_property(env, result, "stdout", value);
  napi_create_string_utf8(env, err.data ? err.data : "", err.len, &value);
  napi_set_named_property(env, result, "stderr", value);
  free(out.data);
  free(err.data);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openSocket", NULL, js_open_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnSync", NULL, js_spawn_sync, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

// node-gyp would define the module name; plain gcc does not.
#ifndef NODE_GYP_MODULE_NAME
#define NODE_GYP_MODULE_NAME netns
#endif
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
