/* demo_page.c: the demo served at "/", on the JS client served at "/ws4redis.js" (static_assets.c).
   A chat on the broadcast facility "chat" (each page publishes through its websocket) and, for a
   browser with an identity token (page URL parameter ws4redis-token, or cookie ws4redis_token),
   the notifications its user gets on the facility "notifications". */
#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char page_head[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>ws4redis demo</title>\n"
    "<style>\n"
    "  body { font: 16px/1.4 system-ui, sans-serif; max-width: 42em; margin: 2em auto; padding: 0 1em; }\n"
    "  ul { list-style: none; margin: 0 0 1em; padding: .5em; overflow-y: auto; border: 1px solid #bbb;\n"
    "       border-radius: 4px; }\n"
    "  #log { height: 16em; }\n"
    "  #notify-log { height: 6em; }\n"
    "  li { padding: .15em 0; border-bottom: 1px solid #eee; white-space: pre-wrap; }\n"
    "  li.system { color: #888; font-style: italic; }\n"
    "  .status { color: #666; }\n"
    "  code { background: #f3f3f3; padding: 0 .2em; white-space: nowrap; }\n"
    "  #text { width: 70%; }\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>ws4redis chat</h1>\n"
    "<p id=\"status\" class=\"status\">connecting&hellip;</p>\n"
    "<ul id=\"log\"></ul>\n"
    "<form id=\"send\">\n"
    "  <input id=\"text\" autocomplete=\"off\" placeholder=\"Your message\" required autofocus>\n"
    "  <button id=\"send-button\" disabled>Send</button>\n"
    "</form>\n"
    "<p class=\"status\">Everyone on this page sees what you send. An app publishes here with\n"
    "  <code>PUBLISH broadcast:chat TEXT</code> in Redis or <code>POST /publish?facility=chat</code>.</p>\n"
    "<h2>Notifications</h2>\n"
    "<p id=\"notify-status\" class=\"status\"></p>\n"
    "<ul id=\"notify-log\" hidden></ul>\n"
    "<script src=\"/ws4redis.js\"></script>\n"
    "<script>\n"
    "\"use strict\";\n";

/* After the settings the host fills in. */
static const char page_tail[] =
    "const chatLog = document.getElementById(\"log\");\n"
    "const statusLine = document.getElementById(\"status\");\n"
    "const input = document.getElementById(\"text\");\n"
    "const sendButton = document.getElementById(\"send-button\");\n"
    "const notifyLog = document.getElementById(\"notify-log\");\n"
    "const notifyStatus = document.getElementById(\"notify-status\");\n"
    "\n"
    "function show(log, text, className) {\n"
    "  const item = document.createElement(\"li\");\n"
    "  item.textContent = text;\n"
    "  if (className) item.className = className;\n"
    "  log.appendChild(item);\n"
    "  log.scrollTop = log.scrollHeight;\n"
    "}\n"
    "\n"
    "function describe(message) {\n"
    "  return typeof message === \"string\" ? message : \"[binary, \" + message.size + \" bytes]\";\n"
    "}\n"
    "\n"
    "function why(event) {\n"
    "  return event.reason || \"code \" + event.code;\n"
    "}\n"
    "\n"
    "/* A token in the page's URL goes on the websocket URLs; one in a cookie travels by itself. */\n"
    "const tokenInUrl = new URLSearchParams(location.search).get(\"ws4redis-token\");\n"
    "const cookieName = \"ws4redis_token=\";\n"
    "const tokenCookie = document.cookie.split(\"; \").find((c) => c.startsWith(cookieName));\n"
    "const token = tokenInUrl || (tokenCookie && decodeURIComponent(tokenCookie.slice(cookieName.length)));\n"
    "\n"
    "function websocketUri(facility, flags) {\n"
    "  const scheme = location.protocol === \"https:\" ? \"wss://\" : \"ws://\";\n"
    "  const identity = tokenInUrl ? \"&ws4redis-token=\" + encodeURIComponent(tokenInUrl) : \"\";\n"
    "  return scheme + location.host + settings.urlPrefix + facility + \"?\" + flags + identity;\n"
    "}\n"
    "\n"
    "/* The user a token names: its payload is base64url(\"v1\\n\" + user + \"\\n\" + ...). */\n"
    "function tokenUser(token) {\n"
    "  try {\n"
    "    const payload = token.split(\".\")[0].replace(/-/g, \"+\").replace(/_/g, \"/\");\n"
    "    const fields = atob(payload).split(\"\\n\");\n"
    "    return fields[0] === \"v1\" ? fields[1] : \"\";\n"
    "  } catch (error) {\n"
    "    return \"\";\n"
    "  }\n"
    "}\n"
    "\n"
    "const heartbeat = { heartbeat_msg: settings.heartbeat, heartbeat_interval: settings.heartbeatInterval };\n"
    "let chatWasConnected = false;\n"
    "const chat = WS4Redis(Object.assign({\n"
    "  uri: websocketUri(\"chat\", \"subscribe-broadcast&publish-broadcast&echo\"),\n"
    "  connected: () => {\n"
    "    statusLine.textContent = \"connected\";\n"
    "    sendButton.disabled = false;\n"
    "    if (chatWasConnected) show(chatLog, \"reconnected\", \"system\");\n"
    "    chatWasConnected = true;\n"
    "  },\n"
    "  receive_message: (message) => show(chatLog, describe(message)),\n"
    "  disconnected: (event) => {\n"
    "    statusLine.textContent = \"disconnected (\" + why(event) + \"), reconnecting\\u2026\";\n"
    "    sendButton.disabled = true;\n"
    "  },\n"
    "}, heartbeat));\n"
    "\n"
    "document.getElementById(\"send\").addEventListener(\"submit\", (event) => {\n"
    "  event.preventDefault();\n"
    "  chat.send_message(input.value);\n"
    "  input.value = \"\";\n"
    "});\n"
    "\n"
    "const user = token ? tokenUser(token) : \"\";\n"
    "if (user) {\n"
    "  notifyStatus.textContent = \"Notifications for \" + user + \": connecting\\u2026\";\n"
    "  notifyLog.hidden = false;\n"
    "  WS4Redis(Object.assign({\n"
    "    uri: websocketUri(\"notifications\", \"subscribe-user\"),\n"
    "    connected: () => { notifyStatus.textContent = \"Notifications for \" + user; },\n"
    "    receive_message: (message) => show(notifyLog, describe(message)),\n"
    "    disconnected: (event) => {\n"
    "      notifyStatus.textContent = \"Notifications for \" + user + \": disconnected (\" + why(event) + \")\";\n"
    "    },\n"
    "  }, heartbeat));\n"
    "} else {\n"
    "  notifyStatus.innerHTML = \"With an identity, your own notifications appear here. Start the server with \"\n"
    "    + \"<code>--token-secret S</code>, open this page with <code>?ws4redis-token=T</code> where T is \"\n"
    "    + \"<code>ws4redis token --secret S --user NAME</code>, and publish with \"\n"
    "    + \"<code>ws4redis publish --facility notifications --user NAME TEXT</code>.\";\n"
    "}\n"
    "</script>\n"
    "</body>\n"
    "</html>\n";

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
    fputs(page_head, out);
    fputs("const settings = {\n  urlPrefix: ", out);
    write_js_string(out, settings->url_prefix);
    fputs(",\n  heartbeat: ", out);
    if (settings->heartbeat[0] != '\0')
        write_js_string(out, settings->heartbeat);
    else
        fputs("null", out);
    /* A whole number > 0, as the core validated it. */
    fprintf(out, ",\n  heartbeatInterval: %lu,\n};\n", strtoul(settings->heartbeat_interval, NULL, 10));
    fputs(page_tail, out);
    bool failed = ferror(out) != 0;
    /* fclose() fails when the final buffer could not be allocated. */
    if (fclose(out) != 0 || failed) {
        free(page);
        return NULL;
    }
    return page;
}
