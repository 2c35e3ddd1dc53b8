import CHiredis

/// hiredis's Argv calls for binary-safe arguments (Swift cannot call its variadic formatters).
enum RedisCommandFormat {
    /// Calls `body` with argc, argv and argument lengths for binary-safe copies of `arguments`.
    static func withArgv<Result>(
        _ arguments: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result {
        let copies = arguments.map { argument in
            let copy = UnsafeMutableBufferPointer<CChar>.allocate(capacity: max(argument.count, 1))
            _ = copy.initialize(from: argument.map { CChar(bitPattern: $0) })
            return copy
        }
        defer { copies.forEach { $0.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0.baseAddress) }
        let lengths = arguments.map(\.count)
        return body(Int32(arguments.count), &argv, lengths)
    }

    /// The RESP encoding of one command.
    static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        withArgv(arguments) { argc, argv, lengths in
            var target: UnsafeMutablePointer<CChar>?
            let length = redisFormatCommandArgv(&target, argc, argv, lengths)
            defer { redisFreeCommand(target) }
            guard length > 0, let target else { return [] }
            return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
        }
    }
}

extension Array where Element == [UInt8] {
    init(redisArguments strings: [String]) {
        self = strings.map { [UInt8]($0.utf8) }
    }
}
