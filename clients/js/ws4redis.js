/*
 * ws4redis.js: the browser client of ws4redis, with the API of django-websocket-redis's jQuery
 * client and no dependencies.
 *
 *   var ws4redis = WS4Redis({
 *     uri: "wss://example.com/ws/chat?subscribe-broadcast&publish-broadcast&echo",
 *     connecting: function () {},             // before each connection attempt
 *     connected: function () {},              // the websocket is open
 *     receive_message: function (message) {}, // a string, or a Blob for a binary message
 *     disconnected: function (event) {},      // closed: event.code, event.reason ("missed heartbeats"
 *                                             // when the client gave a silent connection up)
 *     heartbeat_msg: "--heartbeat--"          // the server's heartbeat setting (WS4REDIS_HEARTBEAT)
 *   });
 *   ws4redis.send_message("hello");
 *   ws4redis.close();                         // for good: no reconnect after this
 *
 * A lost connection is reopened after a random delay (full jitter) whose ceiling doubles with each
 * failed attempt, from reconnect_delay up to max_reconnect_delay. With heartbeat_msg set, the client
 * sends it every heartbeat_interval ms (the server drops it) and expects to hear from the server as
 * often: after more than max_missed_heartbeats intervals of silence it gives the connection up and
 * reconnects. Heartbeats never reach receive_message.
 */
(function () {
  "use strict";

  var DEFAULTS = {
    uri: null,
    connecting: null,
    connected: null,
    receive_message: null,
    disconnected: null,
    heartbeat_msg: null,
    heartbeat_interval: 5000,  // the original's; at least the server's heartbeat_interval
    max_missed_heartbeats: 3,
    reconnect_delay: 1000,
    max_reconnect_delay: 30000
  };

  function WS4Redis(options) {
    var opts = Object.assign({}, DEFAULTS, options);
    if (!opts.uri)
      throw new Error("WS4Redis: no websocket URI in options");
    var ws = null;
    var failedAttempts = 0;
    var reconnectTimer = null;
    var heartbeatTimer = null;
    var missedHeartbeats = 0;
    var closedForGood = false;

    function notify(name, argument) {
      if (typeof opts[name] === "function")
        opts[name](argument);
    }

    function connect() {
      reconnectTimer = null;
      notify("connecting");
      ws = new WebSocket(opts.uri);
      ws.onopen = onOpen;
      ws.onmessage = onMessage;
      ws.onclose = onClose;
    }

    function onOpen() {
      failedAttempts = 0;
      if (opts.heartbeat_msg) {
        missedHeartbeats = 0;
        heartbeatTimer = setInterval(checkHeartbeat, opts.heartbeat_interval);
      }
      notify("connected");
    }

    function onMessage(event) {
      // Any message proves the connection alive; the server sends heartbeats only when idle.
      missedHeartbeats = 0;
      if (!(opts.heartbeat_msg && event.data === opts.heartbeat_msg))
        notify("receive_message", event.data);
    }

    function onClose(event) {
      forget(ws);
      notify("disconnected", event);
      if (!closedForGood)
        scheduleReconnect();
    }

    function checkHeartbeat() {
      if (++missedHeartbeats <= opts.max_missed_heartbeats) {
        ws.send(opts.heartbeat_msg);
        return;
      }
      // A dead peer never answers the close frame, and the browser would wait for it a long time:
      // leave this socket behind at once.
      var dead = ws;
      forget(dead);
      dead.close();
      onClose({ type: "close", code: 1006, reason: "missed heartbeats", wasClean: false });
    }

    function forget(socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      clearInterval(heartbeatTimer);
      heartbeatTimer = null;
    }

    function scheduleReconnect() {
      var ceiling = Math.min(opts.max_reconnect_delay, opts.reconnect_delay * Math.pow(2, failedAttempts));
      failedAttempts++;
      reconnectTimer = setTimeout(connect, Math.random() * ceiling);
    }

    connect();

    return {
      /* Sends a message (string, Blob, ArrayBuffer); throws unless connected. */
      send_message: function (message) {
        if (ws.readyState !== WebSocket.OPEN)
          throw new Error("WS4Redis: not connected");
        ws.send(message);
      },
      /* The readyState of the current websocket: WebSocket.CONNECTING, OPEN, CLOSING or CLOSED. */
      get_state: function () {
        return ws.readyState;
      },
      /* Closes the connection for good; `disconnected` is called once it is closed. */
      close: function () {
        closedForGood = true;
        clearTimeout(reconnectTimer);
        if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)
          ws.close(1000);
      }
    };
  }

  if (typeof window !== "undefined")
    window.WS4Redis = WS4Redis;
  if (typeof module !== "undefined" && module.exports)
    module.exports = WS4Redis;
})();
