/* tls.c: wss:// and https:// served by ws4redis-host itself: the certificate and key files
   (--tls-cert, --tls-key) and the MHD settings that turn them into an HTTPS daemon. */
#include "host.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PEM files are a few KiB; a larger file is the wrong file. */
#define MAX_PEM_BYTES (1 << 20)

/* The whole file as a NUL-terminated string, or NULL with the reason printed. */
static char *read_pem(const char *what, const char *path) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "ws4redis-host: cannot open the TLS %s %s: %s\n", what, path, strerror(errno));
        return NULL;
    }
    char *text = malloc(MAX_PEM_BYTES + 1);
    size_t length = text != NULL ? fread(text, 1, MAX_PEM_BYTES + 1, file) : 0;
    bool failed = text == NULL || ferror(file);
    fclose(file);
    if (failed || length == 0 || length > MAX_PEM_BYTES) {
        fprintf(stderr, "ws4redis-host: cannot read the TLS %s %s: %s\n", what, path,
                text == NULL ? "out of memory" : failed ? "read error" : length == 0 ? "empty file" : "larger than 1 MiB");
        free(text);
        return NULL;
    }
    text[length] = '\0';
    return text;
}

int tls_load(struct tls_files *tls, const char *certificate_path, const char *key_path) {
    *tls = (struct tls_files){ 0 };
    if (certificate_path == NULL)
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fputs("ws4redis-host: this libmicrohttpd is built without TLS support\n", stderr);
        return -1;
    }
    tls->certificate = read_pem("certificate", certificate_path);
    tls->key = tls->certificate != NULL ? read_pem("key", key_path) : NULL;
    if (tls->key == NULL) {
        tls_free(tls);
        return -1;
    }
    return 0;
}

void tls_free(struct tls_files *tls) {
    if (tls->key != NULL) /* the private key does not linger in freed memory */
        explicit_bzero(tls->key, strlen(tls->key));
    free(tls->key);
    free(tls->certificate);
    *tls = (struct tls_files){ 0 };
}

bool tls_enabled(const struct tls_files *tls) {
    return tls->certificate != NULL;
}

unsigned tls_daemon_options(const struct tls_files *tls, struct MHD_OptionItem *options) {
    if (!tls_enabled(tls)) {
        options[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
        return 0;
    }
    /* MHD keeps the pointers: the PEM text stays alive until the daemon stopped (main.c). */
    options[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, tls->certificate };
    options[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key };
    options[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    return MHD_USE_TLS;
}
