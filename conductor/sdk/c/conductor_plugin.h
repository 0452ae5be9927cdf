/*
 * conductor_plugin.h — build a Conductor WASM plugin in C or C++.
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c my_plugin.c -o my_plugin.wasm
 *   clang++ --target=wasm32-wasi -mexec-model=reactor -O2 -fno-exceptions -nostdlib++ -I sdk/c \
 *         my_plugin.cpp -o my_plugin.wasm
 *
 * (-nostdlib++: the header needs only the C library; to use the C++ standard library install
 * Debian's libc++-14-dev-wasm32 libc++abi-14-dev-wasm32 and drop it.)
 *
 * Define CONDUCTOR_METADATA (a JSON object string) and implement
 *   int plugin_execute(const char *request, size_t len);
 * in exactly one file after including this header with CONDUCTOR_PLUGIN_MAIN defined (in C++ it
 * has C linkage: the header declares it inside extern "C"). The header exports alloc, dealloc,
 * init and execute for you.
 * The host writes the request JSON (your params plus "context") into a buffer from alloc() and
 * calls execute(ptr, len); 0 means success. The buffer belongs to the host: because this header
 * exports dealloc(), the host keeps the buffer for later requests and hands it back through
 * dealloc() only when it needs a larger one or unloads the plugin. Never free() the request.
 */
#ifndef CONDUCTOR_PLUGIN_H
#define CONDUCTOR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONDUCTOR_EXPORT(name) __attribute__((export_name(#name)))
#define CONDUCTOR_IMPORT(name) __attribute__((import_module("conductor"), import_name(#name)))

/* Log levels for conductor_log. */
enum { CONDUCTOR_DEBUG = 0, CONDUCTOR_INFO = 1, CONDUCTOR_WARN = 2, CONDUCTOR_ERROR = 3 };

/* Host error codes (negative results of host functions), as conductor/plugins/host/codes.py
 * defines them (a test checks that they agree). */
enum {
    CONDUCTOR_OK = 0, CONDUCTOR_DENIED = -1, CONDUCTOR_INVALID = -2, CONDUCTOR_TIMEOUT = -3,
    CONDUCTOR_IO = -4, CONDUCTOR_TOO_BIG = -5, CONDUCTOR_NO_MEMORY = -6, CONDUCTOR_NOT_FOUND = -7,
    CONDUCTOR_FAULT = -8, CONDUCTOR_UNSUPPORTED = -9, CONDUCTOR_CLOSED = -10
};

/* conductor.log(level, ptr, len) -> 0 or an error code. */
CONDUCTOR_IMPORT(log) int32_t conductor_log_raw(int32_t level, const char *text, size_t len);

static inline int32_t conductor_log(int32_t level, const char *text) {
    return conductor_log_raw(level, text, strlen(text));
}

/*
 * Host functions. Arguments are UTF-8 JSON (a bare key for config_get). An int64 result >= 0 is
 * (ptr << 32) | len of an answer the host wrote into memory from your alloc(): read it with
 * cp_answer_text(), then free() it. A negative result is one of the CONDUCTOR_* error codes and
 * conductor_error_message() explains it. Network, Subprocess and SystemControl functions need
 * their capability; without it they return CONDUCTOR_DENIED.
 */
CONDUCTOR_IMPORT(config_get) int64_t conductor_config_get(const char *key, size_t len);
CONDUCTOR_IMPORT(error_message) int64_t conductor_error_message(void);
CONDUCTOR_IMPORT(http_request) int64_t conductor_http_request(const char *json, size_t len);
CONDUCTOR_IMPORT(ws_connect) int64_t conductor_ws_connect(const char *json, size_t len);
CONDUCTOR_IMPORT(ws_send) int32_t conductor_ws_send(int32_t handle, const char *data, size_t len, int32_t flags);
CONDUCTOR_IMPORT(ws_recv) int64_t conductor_ws_recv(int32_t handle, int32_t timeout_ms);
CONDUCTOR_IMPORT(ws_close) int32_t conductor_ws_close(int32_t handle);
CONDUCTOR_IMPORT(exec) int64_t conductor_exec(const char *json, size_t len);
CONDUCTOR_IMPORT(system) int64_t conductor_system(const char *json, size_t len);

/* The answer of a host function as a NUL-terminated string (NULL for an error or no answer).
 * The host allocated len + 0 bytes, so this copies into a fresh buffer; free() the result. */
static inline char *cp_answer_text(int64_t result, size_t *len_out) {
    if (result <= 0) {
        if (len_out) *len_out = 0;
        return NULL;
    }
    char *data = (char *)(uintptr_t)(result >> 32);
    size_t len = (size_t)(result & 0xffffffff);
    char *text = (char *)malloc(len + 1);
    if (text) {
        memcpy(text, data, len);
        text[len] = '\0';
    }
    free(data);
    if (len_out) *len_out = len;
    return text;
}

/*
 * Tiny JSON helpers for flat lookups in the request. They find the first "key": at any depth,
 * which is enough for params and the context object; they do not validate the document.
 */
static inline const char *cp_json_find(const char *json, size_t len, const char *key) {
    size_t key_len = strlen(key);
    for (size_t i = 0; i + key_len + 2 < len; i++) {
        if (json[i] == '"' && strncmp(json + i + 1, key, key_len) == 0 && json[i + 1 + key_len] == '"') {
            size_t j = i + key_len + 2;
            while (j < len && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' || json[j] == '\r')) j++;
            if (j < len && json[j] == ':') {
                j++;
                while (j < len && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' || json[j] == '\r')) j++;
                return j < len ? json + j : NULL;
            }
        }
    }
    return NULL;
}

/* Copy the string value of `key` into out (NUL-terminated, escapes \" \\ \n \t \/ decoded).
 * Returns its length, or -1 when absent or not a string or too long for out. */
static inline int cp_json_get_string(const char *json, size_t len, const char *key, char *out, size_t out_size) {
    const char *value = cp_json_find(json, len, key);
    const char *end = json + len;
    size_t n = 0;
    if (!value || *value != '"' || out_size == 0) return -1;
    for (const char *p = value + 1; p < end; p++) {
        char c = *p;
        if (c == '"') { out[n] = '\0'; return (int)n; }
        if (c == '\\') {
            if (++p >= end) return -1;
            switch (*p) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case '"': case '\\': case '/': c = *p; break;
                default: return -1; /* \uXXXX is not decoded by this helper */
            }
        }
        if (n + 1 >= out_size) return -1;
        out[n++] = c;
    }
    return -1;
}

/* Read the integer value of `key`; returns 0 on success, -1 when absent, null or not a number. */
static inline int cp_json_get_int(const char *json, size_t len, const char *key, long long *out) {
    const char *value = cp_json_find(json, len, key);
    const char *end = json + len;
    long long sign = 1, result = 0;
    int digits = 0;
    if (!value) return -1;
    if (value < end && *value == '-') { sign = -1; value++; }
    while (value < end && *value >= '0' && *value <= '9' && digits < 18) {
        result = result * 10 + (*value - '0');
        value++;
        digits++;
    }
    if (!digits) return -1;
    *out = sign * result;
    return 0;
}

int plugin_execute(const char *request, size_t len);

#ifdef CONDUCTOR_PLUGIN_MAIN
#ifndef CONDUCTOR_METADATA
#error "define CONDUCTOR_METADATA as a JSON object string before including conductor_plugin.h"
#endif

static const char conductor_metadata_json[] = CONDUCTOR_METADATA;

CONDUCTOR_EXPORT(alloc) void *conductor_alloc(int32_t size) { return malloc(size > 0 ? (size_t)size : 1); }
CONDUCTOR_EXPORT(dealloc) void conductor_dealloc(void *ptr, int32_t size) { (void)size; free(ptr); }

CONDUCTOR_EXPORT(init) int64_t conductor_init(void) {
    return ((int64_t)(uintptr_t)conductor_metadata_json << 32) | (int64_t)(sizeof(conductor_metadata_json) - 1);
}

CONDUCTOR_EXPORT(execute) int32_t conductor_execute(const char *request, int32_t len) {
    return plugin_execute(request, (size_t)len);
}
#endif /* CONDUCTOR_PLUGIN_MAIN */

#ifdef __cplusplus
}
#endif

#endif /* CONDUCTOR_PLUGIN_H */
