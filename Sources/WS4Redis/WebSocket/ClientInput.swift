import NIOCore
import WS4RedisProtocol

/// What reading a client's frames needs from one read to the next: the frame parser, the start of a
/// frame header that a read ended inside, and the message being assembled: 200 bytes. A handler holds
/// it while its client is inside a frame or a message, or once the client sent a data message (a
/// publishing client then pays no allocation per message). Otherwise it lets it go after each read:
/// most websockets' clients never send data, only a pong per ping interval, and every idle socket
/// is then 192 bytes smaller (heaptrack, 10k idle websockets: the handler 424 -> 232 bytes).
final class ClientInput {
    var parser: FrameParser
    /// At most 13 bytes, copied so that the channel's receive buffer can be reused.
    var headerStart: ByteBuffer?
    var assembler: MessageAssembler
    var sentData = false

    init(settings: ConnectionSettings, inflater: (any MessageInflating.Type)?) {
        parser = FrameParser(maxFrameSize: settings.maxFrameSize)
        assembler = MessageAssembler(maxMessageSize: settings.maxMessageSize, inflater: inflater)
    }

    /// Nothing is carried over to the next read: a fresh input would read it the same.
    var isDisposable: Bool { !sentData && headerStart == nil && parser.isAtRest && assembler.isAtRest }
}
