internal import CSodium

/// libsodium's secretstream (XChaCha20-Poly1305 with a chained state): a
/// file sealed as a sequence of messages. Reordering, dropping, repeating
/// or altering a message fails, and so does cutting the stream short: only
/// the last message carries the final tag. The state, which holds the key,
/// lives in guarded memory.
public struct SealedStream: ~Copyable {
    public static let keyLength = Int(crypto_secretstream_xchacha20poly1305_KEYBYTES)
    public static let headerLength = Int(crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    public static let overhead = Int(crypto_secretstream_xchacha20poly1305_ABYTES)

    private var state: SecretBytes
    /// The stream's header: written before the first message, read first.
    public let header: [UInt8]

    private init(state: consuming SecretBytes, header: [UInt8]) {
        self.state = state
        self.header = header
    }

    /// Starts a stream to write; the header goes first in the file.
    public static func push(key: borrowing SecretBytes) throws(SealingError) -> SealedStream {
        try check(key)
        var state = try SecretBytes(count: crypto_secretstream_xchacha20poly1305_statebytes())
        var header = [UInt8](repeating: 0, count: headerLength)
        let status = state.withUnsafeMutableBytes { stateBytes in
            key.withUnsafeBytes { keyBytes in
                crypto_secretstream_xchacha20poly1305_init_push(
                    stateBytes.baseAddress!.assumingMemoryBound(to: crypto_secretstream_xchacha20poly1305_state.self),
                    &header, keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard status == 0 else { throw .authenticationFailed }
        return SealedStream(state: state, header: header)
    }

    /// Starts reading a stream from its header. A wrong key is not noticed
    /// here but at the first message.
    public static func pull(key: borrowing SecretBytes, header: [UInt8]) throws(SealingError) -> SealedStream {
        try check(key)
        guard header.count == headerLength else {
            throw .invalidLength(what: "stream header", expected: headerLength, actual: header.count)
        }
        var state = try SecretBytes(count: crypto_secretstream_xchacha20poly1305_statebytes())
        let status = state.withUnsafeMutableBytes { stateBytes in
            key.withUnsafeBytes { keyBytes in
                crypto_secretstream_xchacha20poly1305_init_pull(
                    stateBytes.baseAddress!.assumingMemoryBound(to: crypto_secretstream_xchacha20poly1305_state.self),
                    header, keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard status == 0 else { throw .authenticationFailed }
        return SealedStream(state: state, header: header)
    }

    /// Seals the next message (`final` for the last one).
    public mutating func seal(_ message: UnsafeRawBufferPointer, associatedData: [UInt8] = [], final: Bool) throws(SealingError) -> [UInt8] {
        var sealed = [UInt8](repeating: 0, count: message.count + Self.overhead)
        let tag = UInt8(final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        let status = state.withUnsafeMutableBytes { stateBytes in
            sealed.withUnsafeMutableBytes { out in
                crypto_secretstream_xchacha20poly1305_push(
                    stateBytes.baseAddress!.assumingMemoryBound(to: crypto_secretstream_xchacha20poly1305_state.self),
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), nil,
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                    associatedData, UInt64(associatedData.count), tag)
            }
        }
        guard status == 0 else { throw .authenticationFailed }
        return sealed
    }

    /// Opens the next message into guarded memory; `isFinal` says whether
    /// it was the last. Any change to it, or to an earlier one, fails.
    public mutating func open(_ sealed: [UInt8], associatedData: [UInt8] = [], isFinal: inout Bool) throws(SealingError) -> SecretBytes {
        guard sealed.count >= Self.overhead else { throw .authenticationFailed }
        var message = try SecretBytes(count: sealed.count - Self.overhead)
        var tag: UInt8 = 0
        let status = state.withUnsafeMutableBytes { stateBytes in
            message.withUnsafeMutableBytes { out in
                crypto_secretstream_xchacha20poly1305_pull(
                    stateBytes.baseAddress!.assumingMemoryBound(to: crypto_secretstream_xchacha20poly1305_state.self),
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, &tag,
                    sealed, UInt64(sealed.count), associatedData, UInt64(associatedData.count))
            }
        }
        guard status == 0 else { throw .authenticationFailed }
        isFinal = tag == UInt8(crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        return message
    }

    private static func check(_ key: borrowing SecretBytes) throws(SealingError) {
        guard key.count == keyLength else { throw .invalidLength(what: "stream key", expected: keyLength, actual: key.count) }
        try Sodium.ensureReady()
    }
}
