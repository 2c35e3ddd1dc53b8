extension RESPReply {
    var isError: Bool {
        if case .error = self { return true }
        return false
    }
}
