extension String {
    func trimmingCharacters(of quote: Character) -> String {
        count >= 2 && first == quote && last == quote ? String(dropFirst().dropLast()) : self
    }
}
