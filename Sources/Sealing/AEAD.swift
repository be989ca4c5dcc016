internal import CSodium

/// A nonce and the ciphertext (with its 16-byte tag) it sealed. Both are
/// public: they are what the vault file stores.
public struct SealedBox: Equatable, Sendable {
    public let nonce: [UInt8]
    public let ciphertext: [UInt8]

    public init(nonce: [UInt8], ciphertext: [UInt8]) {
        self.nonce = nonce
        self.ciphertext = ciphertext
    }
}

/// XChaCha20-Poly1305-IETF: its 192-bit nonce is safe to draw at random for
/// every seal, so no counter has to survive between processes.
public enum AEAD {
    public static let keyLength = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    public static let nonceLength = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    public static let tagLength = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)

    public static func seal(
        _ plaintext: borrowing SecretBytes,
        key: borrowing SecretBytes,
        associatedData: [UInt8]
    ) throws(SealingError) -> SealedBox {
        try checkKey(key)
        let nonce = try Random.bytes(nonceLength)
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        var written: UInt64 = 0
        let status = ciphertext.withUnsafeMutableBufferPointer { out in
            plaintext.withUnsafeBytes { message in
                key.withUnsafeBytes { keyBytes in
                    crypto_aead_xchacha20poly1305_ietf_encrypt(
                        out.baseAddress!, &written,
                        message.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                        associatedData, UInt64(associatedData.count),
                        nil, nonce, keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard status == 0, written == UInt64(ciphertext.count) else { throw .authenticationFailed }
        return SealedBox(nonce: nonce, ciphertext: ciphertext)
    }

    /// Opens straight into guarded memory; on any mismatch nothing is returned.
    public static func open(
        _ box: SealedBox,
        key: borrowing SecretBytes,
        associatedData: [UInt8]
    ) throws(SealingError) -> SecretBytes {
        try checkKey(key)
        guard box.nonce.count == nonceLength else {
            throw .invalidLength(what: "nonce", expected: nonceLength, actual: box.nonce.count)
        }
        guard box.ciphertext.count >= tagLength else { throw .authenticationFailed }
        var plaintext = try SecretBytes(count: box.ciphertext.count - tagLength)
        var written: UInt64 = 0
        let status = plaintext.withUnsafeMutableBytes { out in
            key.withUnsafeBytes { keyBytes in
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), &written,
                    nil,
                    box.ciphertext, UInt64(box.ciphertext.count),
                    associatedData, UInt64(associatedData.count),
                    box.nonce, keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard status == 0, written == UInt64(plaintext.count) else { throw .authenticationFailed }
        return plaintext
    }

    private static func checkKey(_ key: borrowing SecretBytes) throws(SealingError) {
        guard key.count == keyLength else {
            throw .invalidLength(what: "key", expected: keyLength, actual: key.count)
        }
    }
}
