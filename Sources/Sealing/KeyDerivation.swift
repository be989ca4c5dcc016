internal import CSodium

/// Argon2id (libsodium's `crypto_pwhash`, ALG_ARGON2ID13) cost parameters.
/// They are stored beside the salt in each passphrase slot, so they are
/// attacker-controlled input when a vault is opened: `validate()` runs before
/// anything is allocated, so a file claiming a terabyte is refused at once.
public struct KDFParameters: Equatable, Hashable, Sendable {
    public var opsLimit: UInt64
    public var memLimit: UInt64

    public init(opsLimit: UInt64, memLimit: UInt64) {
        self.opsLimit = opsLimit
        self.memLimit = memLimit
    }

    // libsodium's own presets for Argon2id (crypto_pwhash_argon2id_*_INTERACTIVE etc.).
    public static let interactive = KDFParameters(opsLimit: 2, memLimit: 64 << 20)
    public static let moderate = KDFParameters(opsLimit: 3, memLimit: 256 << 20)
    public static let sensitive = KDFParameters(opsLimit: 4, memLimit: 1 << 30)
    /// libsodium's minimum: for test vaults only. The CLI offers it only when a
    /// test asks for it explicitly.
    public static let insecureTesting = KDFParameters(opsLimit: 1, memLimit: 8 << 10)

    /// Argon2id needs at least one pass and 8 KiB. The upper bounds are far
    /// above `sensitive` yet keep a forged slot from pinning the machine.
    public static let opsLimitRange: ClosedRange<UInt64> = 1...32
    public static let memLimitRange: ClosedRange<UInt64> = (8 << 10)...(4 << 30)

    public func validate() throws(SealingError) {
        guard Self.opsLimitRange.contains(opsLimit), Self.memLimitRange.contains(memLimit) else {
            throw .kdfParametersOutOfRange(opsLimit: opsLimit, memLimit: memLimit)
        }
    }
}

public enum KeyDerivation {
    public static let saltLength = Int(crypto_pwhash_argon2id_SALTBYTES)

    /// Derives a 32-byte wrapping key from a passphrase. Parameters are
    /// checked first; the result lives in guarded memory.
    public static func deriveKey(
        passphrase: borrowing SecretBytes,
        salt: [UInt8],
        parameters: KDFParameters
    ) throws(SealingError) -> SecretBytes {
        try parameters.validate()
        guard salt.count == saltLength else {
            throw .invalidLength(what: "salt", expected: saltLength, actual: salt.count)
        }
        var key = try SecretBytes(count: AEAD.keyLength)
        let status = key.withUnsafeMutableBytes { out in
            passphrase.withUnsafeBytes { password in
                // crypto_pwhash takes the password as `const char *`; the bytes
                // are used as they are, with no terminator.
                crypto_pwhash(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(out.count),
                    password.baseAddress!.assumingMemoryBound(to: CChar.self), UInt64(password.count),
                    salt, parameters.opsLimit, Int(parameters.memLimit),
                    crypto_pwhash_ALG_ARGON2ID13)
            }
        }
        guard status == 0 else { throw .keyDerivationFailed }
        return key
    }
}
