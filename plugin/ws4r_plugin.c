/* ws4r_plugin.c: see ws4r_plugin.h. */
#include "ws4r_plugin.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>

/* printf into the caller's optional error buffer. */
__attribute__((format(printf, 3, 4)))
static void set_error(char *err, size_t errlen, const char *format, ...) {
    if (err == NULL || errlen == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(err, errlen, format, args);
    va_end(args);
}

/* Why `api` cannot be used with this header, or NULL when it can. */
static const char *incompatibility(const ws4r_api *api) {
    if (api == NULL)
        return "the library does not implement this ABI version";
    if (api->abi_version != WS4R_ABI_VERSION)
        return "the table has another ABI version";
    /* Functions are only appended: a smaller table lacks some that this header declares. */
    if (api->struct_size < sizeof(ws4r_api))
        return "the table is older (smaller) than this header's";
    if (api->version_number() >> 16 != WS4R_VERSION_MAJOR)
        return "the library has another major version";
    return NULL;
}

/* ws4r_plugin_check() naming the library `name` in the error. */
static int check_table(const char *name, const ws4r_api *api, char *err, size_t errlen) {
    const char *reason = incompatibility(api);
    if (reason == NULL)
        return WS4R_OK;
    set_error(err, errlen, "%s is incompatible with ws4redis.h %s (ABI %d): %s", name, WS4R_VERSION_STRING,
              WS4R_ABI_VERSION, reason);
    return WS4R_EVERSION;
}

int ws4r_plugin_check(const ws4r_api *api, char *err, size_t errlen) {
    return check_table("libws4redis", api, err, errlen);
}

/* dlsym() for the one function symbol. ISO C has no conversion from void * to a function pointer,
   so go through a union; POSIX guarantees that the representations match. */
static ws4r_get_api_fn find_get_api(void *library) {
    union { void *object; ws4r_get_api_fn function; } symbol = { .object = dlsym(library, "ws4r_get_api") };
    return symbol.function;
}

int ws4r_plugin_load(const char *path, const ws4r_api **api, void **handle, char *err, size_t errlen) {
    if (api != NULL)
        *api = NULL;
    if (handle != NULL)
        *handle = NULL;
    if (path == NULL || api == NULL || handle == NULL) {
        set_error(err, errlen, "ws4r_plugin_load: path, api and handle must not be NULL");
        return WS4R_EINVAL;
    }
    /* RTLD_NOW: a missing dependency fails here, not at some later call inside a server.
       RTLD_LOCAL: the library's symbols stay out of the host's global namespace. */
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        set_error(err, errlen, "cannot load %s: %s", path, dlerror());
        return WS4R_EIO;
    }
    ws4r_get_api_fn get_api = find_get_api(library);
    if (get_api == NULL) {
        set_error(err, errlen, "%s is not libws4redis: it has no symbol ws4r_get_api", path);
        dlclose(library);
        return WS4R_EVERSION;
    }
    const ws4r_api *table = get_api(WS4R_ABI_VERSION);
    int status = check_table(path, table, err, errlen);
    if (status != WS4R_OK) {
        dlclose(library);
        return status;
    }
    *api = table;
    *handle = library;
    return WS4R_OK;
}

void ws4r_plugin_unload(void *handle) {
    if (handle != NULL)
        dlclose(handle);
}
