// Errors thrown into JavaScript, shared by podnet's addons (netns.c, netlink.c, dnsfast.c).
#ifndef PODNET_NAPI_ERRORS_H
#define PODNET_NAPI_ERRORS_H

#define _GNU_SOURCE
#include <node_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// Throws a JavaScript Error "<message>: <strerror(err)>" with `code` set to the errno name (EADDRINUSE,
// ...), as Node's own errors carry it. Returns NULL for the caller to return.
__attribute__((format(printf, 3, 4), unused)) static napi_value throw_errno(napi_env env, int err,
                                                                              const char *format, ...) {
  char message[384];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(message, sizeof message, format, args);
  va_end(args);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof message) n = sizeof message - 1;
  snprintf(message + n, sizeof message - n, ": %s", strerror(err));
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code ? code : NULL, message);
  return NULL;
}

__attribute__((unused)) static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

#endif
