// The server's API speaks the protocol's types (handshakes, identities, flags, errors): whoever
// imports the server sees them too.
@_exported import WS4RedisProtocol
