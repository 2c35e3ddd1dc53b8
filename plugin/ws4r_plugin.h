/*
 * ws4r_plugin.h: load libws4redis at run time with dlopen() and get its whole function table
 * through one symbol lookup (ws4r_get_api), checked against the ws4redis.h this file is built with.
 *
 * Usage:
 *     const ws4r_api *api; void *handle; char err[256];
 *     if (ws4r_plugin_load("/usr/local/lib/libws4redis.so", &api, &handle, err, sizeof err) != WS4R_OK)
 *         fail(err);
 *     ... every call goes through api->... ...
 *     ws4r_plugin_unload(handle);
 *
 * Compile ws4r_plugin.c into the host program and link it with -ldl (glibc < 2.34). The host does
 * not link -lws4redis then. No global state: several libraries (e.g. different versions at
 * different paths) may be loaded side by side, each through its own handle.
 */
#ifndef WS4R_PLUGIN_H
#define WS4R_PLUGIN_H

#include <stddef.h>

#include "ws4redis.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Loads the library at `path` (dlopen RTLD_NOW | RTLD_LOCAL), fetches ws4r_get_api(WS4R_ABI_VERSION)
 * and refuses a table that does not match this header: NULL (the library does not implement
 * WS4R_ABI_VERSION), another abi_version, a struct_size smaller than sizeof(ws4r_api), or a
 * run-time major version other than WS4R_VERSION_MAJOR.
 *
 * On success *api receives the table (static in the library: valid until ws4r_plugin_unload) and
 * *handle the library handle; the caller owns the handle and passes it to ws4r_plugin_unload().
 * On failure *api and *handle are set to NULL, nothing stays loaded, and `err` (if not NULL and
 * `errlen` > 0) receives a NUL-terminated explanation, truncated to `errlen`.
 *
 * Returns WS4R_OK, WS4R_EINVAL (path, api or handle NULL), WS4R_EIO (dlopen failed) or
 * WS4R_EVERSION (no ws4r_get_api symbol, or an incompatible table).
 * Threads: any thread, as far as the platform's dlopen() is thread-safe (glibc's is).
 */
int ws4r_plugin_load(const char *path, const ws4r_api **api, void **handle, char *err, size_t errlen);

/**
 * Checks a table got some other way (e.g. ws4r_get_api(WS4R_ABI_VERSION) of the linked library)
 * with the same rules as ws4r_plugin_load(), so that linked and loaded hosts refuse the same
 * libraries. Returns WS4R_OK, or WS4R_EVERSION with an explanation in `err` (as above). Any thread.
 */
int ws4r_plugin_check(const ws4r_api *api, char *err, size_t errlen);

/**
 * Unloads a library loaded by ws4r_plugin_load(). Accepts NULL. Call it only after every handle
 * created through the table was destroyed (servers stopped, publishers destroyed) and no release
 * callback can still run; the table must not be used afterwards. The Swift runtime may keep the
 * code mapped anyway: unloading is a release of the reference, not a guarantee of unmapping.
 */
void ws4r_plugin_unload(void *handle);

#ifdef __cplusplus
}
#endif

#endif /* WS4R_PLUGIN_H */
