extension HandshakeValidator {
    package init(_ configuration: ServerConfiguration) {
        self.init(
            urlPrefix: configuration.urlPrefix, echoPath: configuration.echoPath, allowedFlags: configuration.allowedFlags,
            allowedOrigins: configuration.allowedOrigins, compression: configuration.compression, maxHeaderSize: configuration.maxHeaderSize,
            maxFacilityLength: configuration.maxFacilityLength, missingIdentity: configuration.missingIdentity
        )
    }
}
