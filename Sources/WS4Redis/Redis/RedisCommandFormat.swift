import CHiredis

/// hiredis's Argv formatter for binary-safe arguments (Swift cannot call its variadic formatters).
enum RedisCommandFormat {
    /// The RESP encoding of one command, from binary-safe copies of its arguments.
    static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        let copies = arguments.map { argument in
            let copy = UnsafeMutableBufferPointer<CChar>.allocate(capacity: max(argument.count, 1))
            _ = copy.initialize(from: argument.map { CChar(bitPattern: $0) })
            return copy
        }
        defer { copies.forEach { $0.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0.baseAddress) }
        let lengths = arguments.map(\.count)
        var target: UnsafeMutablePointer<CChar>?
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &argv, lengths)
        defer { redisFreeCommand(target) }
        guard length > 0, let target else { return [] }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }

    /// The length of `encode(arguments)`, without encoding: `*N\r\n`, then `$len\r\n` bytes `\r\n` each.
    static func encodedSize(_ arguments: [[UInt8]]) -> Int {
        arguments.reduce(3 + decimalDigits(arguments.count)) { $0 + 5 + decimalDigits($1.count) + $1.count }
    }

    private static func decimalDigits(_ value: Int) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return digits
    }
}

extension Array where Element == [UInt8] {
    init(redisArguments strings: [String]) {
        self = strings.map { [UInt8]($0.utf8) }
    }
}
