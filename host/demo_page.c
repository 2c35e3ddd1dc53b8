/* demo_page.c: the demo served at "/": a chat on the broadcast channel of the facility "chat".
   Vanilla JS: it subscribes with a websocket and publishes through POST /publish?facility=chat. */
#include "host.h"

#include <stdlib.h>
#include <string.h>

/* The page up to and after the JS string literal that receives the URL prefix. */
static const char page_head[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>ws4redis chat</title>\n"
    "<style>\n"
    "  body { font: 16px/1.4 system-ui, sans-serif; max-width: 42em; margin: 2em auto; padding: 0 1em; }\n"
    "  #log { list-style: none; margin: 0 0 1em; padding: .5em; height: 20em; overflow-y: auto;\n"
    "         border: 1px solid #bbb; border-radius: 4px; }\n"
    "  #log li { padding: .15em 0; border-bottom: 1px solid #eee; white-space: pre-wrap; }\n"
    "  #status { color: #666; }\n"
    "  #text { width: 70%; }\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>ws4redis chat</h1>\n"
    "<p id=\"status\">connecting&hellip;</p>\n"
    "<ul id=\"log\"></ul>\n"
    "<form id=\"send\">\n"
    "  <input id=\"text\" autocomplete=\"off\" placeholder=\"Your message\" required autofocus>\n"
    "  <button>Send</button>\n"
    "</form>\n"
    "<script>\n"
    "\"use strict\";\n"
    "const urlPrefix = \"";
static const char page_tail[] =
    "\";\n"
    "const log = document.getElementById(\"log\");\n"
    "const status = document.getElementById(\"status\");\n"
    "const input = document.getElementById(\"text\");\n"
    "\n"
    "function show(text) {\n"
    "  const item = document.createElement(\"li\");\n"
    "  item.textContent = text;\n"
    "  log.appendChild(item);\n"
    "  log.scrollTop = log.scrollHeight;\n"
    "}\n"
    "\n"
    "function connect() {\n"
    "  const scheme = location.protocol === \"https:\" ? \"wss://\" : \"ws://\";\n"
    "  const socket = new WebSocket(scheme + location.host + urlPrefix + \"chat?subscribe-broadcast\");\n"
    "  socket.binaryType = \"arraybuffer\";\n"
    "  socket.onopen = () => { status.textContent = \"connected\"; };\n"
    "  socket.onmessage = (event) => {\n"
    "    show(typeof event.data === \"string\" ? event.data : \"[binary, \" + event.data.byteLength + \" bytes]\");\n"
    "  };\n"
    "  socket.onclose = () => {\n"
    "    status.textContent = \"disconnected, reconnecting in 3 s\";\n"
    "    setTimeout(connect, 3000);\n"
    "  };\n"
    "}\n"
    "\n"
    "document.getElementById(\"send\").addEventListener(\"submit\", async (event) => {\n"
    "  event.preventDefault();\n"
    "  try {\n"
    "    const response = await fetch(\"/publish?facility=chat\", { method: \"POST\", body: input.value });\n"
    "    if (!response.ok) throw new Error(await response.text());\n"
    "    input.value = \"\";\n"
    "  } catch (error) {\n"
    "    status.textContent = \"publish failed: \" + error.message;\n"
    "  }\n"
    "});\n"
    "\n"
    "connect();\n"
    "</script>\n"
    "</body>\n"
    "</html>\n";

/* Whether `c` must be escaped inside a JS string literal within a <script> element. */
static int needs_escape(unsigned char c) {
    return c < 0x20 || c == '"' || c == '\'' || c == '\\' || c == '<' || c == '>' || c == '&';
}

/* Appends `text` as the body of a JS string literal; \u escapes keep it inert in HTML too.
   Returns the end of what it wrote. */
static char *append_js_string(char *out, const char *text) {
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        if (!needs_escape(*c)) {
            *out++ = (char)*c;
            continue;
        }
        memcpy(out, "\\u00", 4);
        out[4] = hex[*c >> 4];
        out[5] = hex[*c & 0xf];
        out += 6;
    }
    return out;
}

char *demo_page_render(const char *url_prefix) {
    /* An escaped byte takes at most 6 bytes. */
    size_t size = sizeof page_head - 1 + 6 * strlen(url_prefix) + sizeof page_tail;
    char *page = malloc(size);
    if (page == NULL)
        return NULL;
    char *end = page;
    memcpy(end, page_head, sizeof page_head - 1);
    end = append_js_string(end + sizeof page_head - 1, url_prefix);
    memcpy(end, page_tail, sizeof page_tail);
    return page;
}
