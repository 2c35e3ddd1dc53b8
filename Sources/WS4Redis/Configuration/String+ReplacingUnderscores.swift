extension String {
    func replacingUnderscores(with replacement: Character, from original: Character = "_") -> String {
        String(map { $0 == original ? replacement : $0 })
    }
}
