// The parts of the C ABI that are plain constants (versions, status names) and the function table
// a dlopen user fetches with ws4r_get_api(). Kept in C so that their layout and strings are, by
// construction, the header's; the table points to the Swift @_cdecl exports.
#include "ws4redis.h"

static const char *const status_names[] = {
    [WS4R_OK] = "ok",
    [WS4R_EINVAL] = "invalid argument",
    [WS4R_ECONFIG] = "invalid configuration",
    [WS4R_ENOMEM] = "out of memory",
    [WS4R_ESTATE] = "wrong state for this call",
    [WS4R_EBIND] = "cannot bind the listen address",
    [WS4R_EREDIS] = "Redis error",
    [WS4R_EHANDSHAKE] = "websocket handshake refused",
    [WS4R_EIO] = "I/O error",
    [WS4R_EVERSION] = "incompatible ABI version",
    [WS4R_ELIMIT] = "limit reached",
};

const char *ws4r_strerror(int code) {
    if (code < 0 || (size_t)code >= sizeof(status_names) / sizeof(status_names[0]) || status_names[code] == NULL)
        return "unknown status code";
    return status_names[code];
}

unsigned ws4r_version_number(void) { return WS4R_VERSION_NUMBER; }

const char *ws4r_version_string(void) { return WS4R_VERSION_STRING; }

static const ws4r_api api_v1 = {
    .struct_size = sizeof(ws4r_api),
    .abi_version = WS4R_ABI_VERSION,
    .strerror = ws4r_strerror,
    .version_number = ws4r_version_number,
    .version_string = ws4r_version_string,
    .config_init = ws4r_config_init,
    .stats_init = ws4r_stats_init,
    .request_init = ws4r_request_init,
    .audience_init = ws4r_audience_init,
    .server_create = ws4r_server_create,
    .server_start = ws4r_server_start,
    .server_stop = ws4r_server_stop,
    .server_destroy = ws4r_server_destroy,
    .server_errmsg = ws4r_server_errmsg,
    .server_stats = ws4r_server_stats,
    .server_check_handshake = ws4r_server_check_handshake,
    .handshake_status = ws4r_handshake_status,
    .handshake_reason = ws4r_handshake_reason,
    .handshake_body = ws4r_handshake_body,
    .handshake_header_count = ws4r_handshake_header_count,
    .handshake_header = ws4r_handshake_header,
    .handshake_free = ws4r_handshake_free,
    .server_adopt = ws4r_server_adopt,
    .publisher_create = ws4r_publisher_create,
    .publisher_publish = ws4r_publisher_publish,
    .publisher_errmsg = ws4r_publisher_errmsg,
    .publisher_destroy = ws4r_publisher_destroy,
    .settings_help = ws4r_settings_help,
    .server_create_with_args = ws4r_server_create_with_args,
    .server_set_authorizer = ws4r_server_set_authorizer,
    .auth_result_set_user = ws4r_auth_result_set_user,
    .auth_result_add_group = ws4r_auth_result_add_group,
    .auth_result_set_session = ws4r_auth_result_set_session,
    .auth_result_set_allowed_flags = ws4r_auth_result_set_allowed_flags,
    .auth_result_deny = ws4r_auth_result_deny,
    .token_mint = ws4r_token_mint,
    .server_check_handshake_async = ws4r_server_check_handshake_async,
    .publisher_fetch = ws4r_publisher_fetch,
    .server_metrics = ws4r_server_metrics,
    .server_setting = ws4r_server_setting,
    .server_health = ws4r_server_health,
    .lift_descriptor_limit = ws4r_lift_descriptor_limit,
    .server_watch_arrival = ws4r_server_watch_arrival,
    .arrival_head_read = ws4r_arrival_head_read,
    .arrival_awaiting_head = ws4r_arrival_awaiting_head,
    .arrival_handed_over = ws4r_arrival_handed_over,
    .arrival_destroy = ws4r_arrival_destroy,
};

const ws4r_api *ws4r_get_api(unsigned abi_version) {
    return abi_version == WS4R_ABI_VERSION ? &api_v1 : NULL;
}
