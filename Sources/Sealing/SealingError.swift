/// Every failure the sealing layer reports. No case carries secret material.
public enum SealingError: Error, Equatable, CustomStringConvertible {
    /// libsodium could not initialise (no entropy source).
    case libraryUnavailable
    /// Guarded memory could not be allocated.
    case outOfMemory
    /// A ciphertext, its nonce, its associated data or the key is not the one it was sealed with.
    case authenticationFailed
    /// Stored Argon2id parameters lie outside what keyseal accepts.
    case kdfParametersOutOfRange(opsLimit: UInt64, memLimit: UInt64)
    /// Argon2id failed to run (in practice: it could not allocate its memory).
    case keyDerivationFailed
    /// A key, nonce or salt has the wrong length.
    case invalidLength(what: String, expected: Int, actual: Int)
    /// The kernel refused to turn off core dumps or ptrace.
    case hardeningFailed(call: String, errno: Int32)
    /// Whoever holds the key (the unlock agent) could not be asked: it went
    /// away or answered wrongly. Never an authentication failure.
    case sealerUnavailable(String)

    public var description: String {
        switch self {
        case .libraryUnavailable: "libsodium could not be initialised"
        case .outOfMemory: "could not allocate guarded memory"
        case .authenticationFailed: "authentication failed"
        case let .kdfParametersOutOfRange(ops, mem):
            "key derivation parameters out of range (ops \(ops), memory \(mem) bytes)"
        case .keyDerivationFailed: "key derivation failed (not enough memory?)"
        case let .invalidLength(what, expected, actual):
            "\(what) has \(actual) bytes, expected \(expected)"
        case let .hardeningFailed(call, errno): "\(call) failed (errno \(errno))"
        case let .sealerUnavailable(reason): "the unlock agent could not be used: \(reason)"
        }
    }
}
