extension ConnectionSettings {
    package init(_ configuration: ServerConfiguration) {
        maxFrameSize = configuration.maxFrameSize
        maxMessageSize = configuration.maxMessageSize
        maxOutboundBytes = configuration.maxOutboundBytes
        slowClientPolicy = configuration.slowClientPolicy
        heartbeat = configuration.heartbeat.map { Array($0.utf8) }
        clientMessagesPerSecond = configuration.clientMessageRate
        clientBytesPerSecond = configuration.clientByteRate
        clientMessageRate = ClientRateLimit.Rate(perSecond: configuration.clientMessageRate, burst: configuration.clientMessageBurst)
        // A message of the largest allowed size must be able to pass.
        clientByteRate = ClientRateLimit.Rate(perSecond: configuration.clientByteRate, burst: max(configuration.clientByteBurst, configuration.maxMessageSize))
    }
}
