extension Array {
    /// Removes an element in O(1) by moving the last one into its place, telling the mover its new index.
    mutating func swapRemove(at index: Int, moved: (Element, Int) -> Void) {
        let last = removeLast()
        guard index < count else { return }
        self[index] = last
        moved(last, index)
    }
}
