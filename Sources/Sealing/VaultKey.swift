internal import CSodium

/// What storage needs from whoever holds the vault key: seal, open and
/// fingerprint. The key itself never leaves the holder, so a later unlock
/// agent can answer these requests without handing the key out.
public protocol EntrySealer: AnyObject {
    func seal(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> SealedBox
    func open(_ box: SealedBox, associatedData: [UInt8]) throws(SealingError) -> SecretBytes
    /// A keyed BLAKE2b digest that identifies a secret without revealing it.
    func fingerprint(_ plaintext: borrowing SecretBytes) throws(SealingError) -> [UInt8]
    /// Opens a box and checks the value against its stored fingerprint; a
    /// mismatch fails as `.authenticationFailed`, like a box that does not
    /// open. One step, so an agent can answer it in one round trip.
    func openVerified(_ box: SealedBox, associatedData: [UInt8], fingerprint: [UInt8]) throws(SealingError) -> SecretBytes
    /// Seals a value and gives its fingerprint: one step, so an agent can
    /// take both requests at once (an import makes one per entry).
    func sealWithFingerprint(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> (box: SealedBox, fingerprint: [UInt8])
    /// For each item, whether its box opens and the value matches its
    /// fingerprint; the values themselves are dropped (wiped) at once. Many
    /// at once, so an agent can take them in a few round trips (an import
    /// checks every entry it wrote).
    func verifyAll(_ items: [SealedCheck]) -> [Bool]
}

/// A box to open and the fingerprint its value must have (`verifyAll`).
public struct SealedCheck: Sendable {
    public let box: SealedBox
    public let associatedData: [UInt8]
    public let fingerprint: [UInt8]

    public init(box: SealedBox, associatedData: [UInt8], fingerprint: [UInt8]) {
        self.box = box
        self.associatedData = associatedData
        self.fingerprint = fingerprint
    }
}

extension EntrySealer {
    public func sealWithFingerprint(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> (box: SealedBox, fingerprint: [UInt8]) {
        (try seal(plaintext, associatedData: associatedData), try fingerprint(plaintext))
    }

    public func verifyAll(_ items: [SealedCheck]) -> [Bool] {
        items.map { item in
            do {
                _ = try openVerified(item.box, associatedData: item.associatedData, fingerprint: item.fingerprint)
                return true
            } catch {
                return false
            }
        }
    }

    public func openVerified(_ box: SealedBox, associatedData: [UInt8], fingerprint expected: [UInt8]) throws(SealingError) -> SecretBytes {
        let secret = try open(box, associatedData: associatedData)
        guard try Fingerprint.matches(self.fingerprint(secret), expected) else { throw .authenticationFailed }
        return secret
    }
}

/// Comparing fingerprints.
public enum Fingerprint {
    /// In constant time (`sodium_memcmp`); only the lengths are compared in
    /// variable time.
    public static func matches(_ actual: [UInt8], _ expected: [UInt8]) -> Bool {
        guard actual.count == expected.count else { return false }
        if actual.isEmpty { return true }
        return actual.withUnsafeBytes { a in
            expected.withUnsafeBytes { b in sodium_memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
        }
    }
}

/// The 32-byte vault key, with the subkeys derived from it (`crypto_kdf`,
/// context "keyseal1"): one for entry values, one for fingerprints, so no key
/// is used for two purposes.
public final class VaultKey: EntrySealer {
    public static let length = AEAD.keyLength
    public static let fingerprintLength = 16
    static let context: [CChar] = Array("keyseal1".utf8CString.dropLast())
    static let entrySubkeyID: UInt64 = 1
    static let fingerprintSubkeyID: UInt64 = 2

    private let root: SecretBytes
    private let entryKey: SecretBytes
    private let fingerprintKey: SecretBytes

    public init(_ root: consuming SecretBytes) throws(SealingError) {
        guard root.count == Self.length else {
            throw .invalidLength(what: "vault key", expected: Self.length, actual: root.count)
        }
        entryKey = try Self.subkey(Self.entrySubkeyID, of: root)
        fingerprintKey = try Self.subkey(Self.fingerprintSubkeyID, of: root)
        self.root = root
    }

    /// A fresh random vault key, for a new vault.
    public static func generate() throws(SealingError) -> VaultKey {
        try VaultKey(SecretBytes.random(count: length))
    }

    /// Unwraps a vault key stored in a key slot.
    public static func unwrap(
        _ box: SealedBox, with wrappingKey: borrowing SecretBytes, associatedData: [UInt8]
    ) throws(SealingError) -> VaultKey {
        try VaultKey(AEAD.open(box, key: wrappingKey, associatedData: associatedData))
    }

    /// Lends the raw vault key, only to hand it to the unlock agent over a
    /// pipe: everything else seals and opens through this object.
    public func withRootKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try root.withUnsafeBytes { bytes in try body(bytes) }
    }

    /// Wraps the vault key for a key slot.
    public func wrap(with wrappingKey: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> SealedBox {
        try AEAD.seal(root, key: wrappingKey, associatedData: associatedData)
    }

    public func seal(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> SealedBox {
        try AEAD.seal(plaintext, key: entryKey, associatedData: associatedData)
    }

    public func open(_ box: SealedBox, associatedData: [UInt8]) throws(SealingError) -> SecretBytes {
        try AEAD.open(box, key: entryKey, associatedData: associatedData)
    }

    public func fingerprint(_ plaintext: borrowing SecretBytes) throws(SealingError) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Self.fingerprintLength)
        let status = digest.withUnsafeMutableBufferPointer { out in
            plaintext.withUnsafeBytes { message in
                fingerprintKey.withUnsafeBytes { key in
                    crypto_generichash(
                        out.baseAddress!, out.count,
                        message.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                        key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count)
                }
            }
        }
        guard status == 0 else { throw .outOfMemory }
        return digest
    }

    private static func subkey(_ id: UInt64, of root: borrowing SecretBytes) throws(SealingError) -> SecretBytes {
        var key = try SecretBytes(count: AEAD.keyLength)
        let status = key.withUnsafeMutableBytes { out in
            root.withUnsafeBytes { master in
                crypto_kdf_derive_from_key(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count, id, context,
                    master.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard status == 0 else { throw .invalidLength(what: "subkey", expected: AEAD.keyLength, actual: 0) }
        return key
    }
}
