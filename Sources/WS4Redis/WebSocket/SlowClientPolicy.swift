/// What happens to a client that does not read fast enough (its outbound buffer reached max_outbound_bytes).
public enum SlowClientPolicy: String, Sendable {
    /// Drop the connection: the client reconnects and gets the stored messages.
    case close
    /// Keep the connection; while it is full, hold only the newest message per channel and send those once it drains.
    case keepNewest = "keep-newest"
}
