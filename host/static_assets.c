/* static_assets.c: files the host serves as they are, built into the binary so that an installed
   host needs no data files. The assembler's .incbin copies each file into .rodata at build time
   (C has no #embed before C23); its path is relative to the repository root, which the build puts
   on the assembler's include path (-Wa,-I). */
#include "host.h"

#include <string.h>

__asm__(".pushsection .rodata\n"
        "js_client_start:\n"
        ".incbin \"clients/js/ws4redis.js\"\n"
        "js_client_end:\n"
        ".popsection\n");

/* Hidden: the labels above are local to this object, so references must not go through the GOT. */
extern const char js_client_start[] __attribute__((visibility("hidden")));
extern const char js_client_end[] __attribute__((visibility("hidden")));

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
