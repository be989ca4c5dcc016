internal import CSodium

/// libsodium must be initialised once before any other call; `sodium_init` is
/// idempotent and thread-safe, and a `static let` runs it exactly once.
enum Sodium {
    static let ready: Bool = sodium_init() >= 0

    static func ensureReady() throws(SealingError) {
        guard ready else { throw .libraryUnavailable }
    }
}
