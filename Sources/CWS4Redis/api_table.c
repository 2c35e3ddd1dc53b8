// The one table a dlopen user fetches with ws4r_get_api(). Kept in C so that its layout is, by
// construction, the header's; the functions it points to are the Swift @_cdecl exports.
#include "ws4redis.h"

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
};

const ws4r_api *ws4r_get_api(unsigned abi_version) {
    return abi_version == WS4R_ABI_VERSION ? &api_v1 : NULL;
}
