/* static_assets.c: files the host serves as they are, built into the binary so that an installed
   host needs no data files. */
#include "host.h"

#include <string.h>

HOST_EMBED(js_client, "clients/js/ws4redis.js");

bool static_asset_find(const char *path, struct static_asset *asset) {
    if (strcmp(path, "/ws4redis.js") != 0)
        return false;
    *asset = (struct static_asset){
        .content_type = "application/javascript; charset=utf-8",
        .bytes = js_client_start,
        .size = (size_t)(js_client_end - js_client_start),
    };
    return true;
}
