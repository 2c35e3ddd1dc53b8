/* demo_page.c: the demo served at "/", on the JS client served at "/ws4redis.js" (static_assets.c).
   A chat on the broadcast facility "chat" (each page publishes through its websocket) and, for a
   browser with an identity token (page URL parameter ws4redis-token, or cookie ws4redis_token),
   the notifications its user gets on the facility "notifications". */
#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The page as it is in host/demo_page.html, built into the binary as static_assets.c does with
   the JS client; the line "@SETTINGS@" in it is where the settings go. */
HOST_EMBED(demo_page, "host/demo_page.html");

static const char settings_marker[] = "@SETTINGS@\n";

/* Writes `text` as a JS string literal; \u escapes keep it inert inside the <script> element too. */
static void write_js_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        bool plain = *c >= 0x20 && strchr("\"'\\<>&", *c) == NULL;
        if (plain)
            fputc(*c, out);
        else
            fprintf(out, "\\u%04x", *c);
    }
    fputc('"', out);
}

char *demo_page_render(const struct demo_settings *settings) {
    char *page = NULL;
    size_t size;
    FILE *out = open_memstream(&page, &size);
    if (out == NULL)
        return NULL;
    size_t page_size = (size_t)(demo_page_end - demo_page_start);
    const char *marker = memmem(demo_page_start, page_size, settings_marker, sizeof settings_marker - 1);
    if (marker == NULL) { /* the Makefile refuses to build a host whose page lacks it */
        fclose(out);
        free(page);
        return NULL;
    }
    fwrite(demo_page_start, 1, (size_t)(marker - demo_page_start), out);
    fputs("const settings = {\n  urlPrefix: ", out);
    write_js_string(out, settings->url_prefix);
    fputs(",\n  heartbeat: ", out);
    if (settings->heartbeat[0] != '\0')
        write_js_string(out, settings->heartbeat);
    else
        fputs("null", out);
    /* A whole number > 0, as the core validated it. */
    fprintf(out, ",\n  heartbeatInterval: %lu,\n};\n", strtoul(settings->heartbeat_interval, NULL, 10));
    const char *tail = marker + sizeof settings_marker - 1;
    fwrite(tail, 1, (size_t)(demo_page_end - tail), out);
    bool failed = ferror(out) != 0;
    /* fclose() fails when the final buffer could not be allocated. */
    if (fclose(out) != 0 || failed) {
        free(page);
        return NULL;
    }
    return page;
}
