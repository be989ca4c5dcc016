import Testing
@testable import Sealing
#if canImport(Glibc)
import Glibc
#endif

func secret(_ text: String) -> SecretBytes {
    let bytes = Array(text.utf8)
    var secret = try! SecretBytes(count: bytes.count)
    secret.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
    return secret
}

func text(_ secret: borrowing SecretBytes) -> String {
    secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
}

@Suite struct SecretBytesTests {
    @Test func copiesComparesAndSlices() throws {
        let a = secret("hunter2-secret")
        let b = secret("hunter2-secret")
        let c = secret("hunter2-secreT")
        #expect(a.constantTimeEquals(b) == true)
        #expect(a.constantTimeEquals(c) == false)
        #expect(a.constantTimeEquals(secret("hunter2")) == false)
        let head = try a.prefix(7)
        #expect(text(head) == "hunter2")
        #expect(head.count == 7)
        #expect(a.containsAny(of: [UInt8(ascii: "-")]) == true)
        #expect(a.containsAny(of: [0x0A, 0x0D, 0x00]) == false)
    }

    @Test func emptySecretsAreUsable() throws {
        let empty = try SecretBytes(count: 0)
        #expect(empty.count == 0)
        #expect(empty.constantTimeEquals(try SecretBytes(count: 0)) == true)
        #expect(empty.containsAny(of: [0]) == false)
    }

    @Test func randomSecretsDiffer() throws {
        let first = try SecretBytes.random(count: 32)
        let second = try SecretBytes.random(count: 32)
        #expect(first.constantTimeEquals(second) == false)
    }
}

/// Short secrets live in reused one-page slots (GuardedSlots) rather than a
/// fresh sodium_malloc each.
@Suite struct GuardedSlotTests {
    @Test func aReleasedSlotIsZeroedBeforeAnyoneGetsItAgain() throws {
        // Take every kept slot and more, fill each, release all, then take
        // them again: whichever slot comes back holds only zeros.
        do {
            var held: [SecretHolder] = []
            for index in 0..<(GuardedSlots.kept + 4) {
                var secret = try SecretBytes(count: GuardedSlots.capacity)
                secret.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: UInt8(index % 200 + 1)) }
                held.append(SecretHolder(secret))
            }
        }
        for _ in 0..<(GuardedSlots.kept + 4) {
            let secret = try SecretBytes(count: GuardedSlots.capacity)
            #expect(secret.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
            let slot = try #require(GuardedSlots.take())
            let raw = UnsafeRawBufferPointer(start: slot, count: GuardedSlots.capacity)
            #expect(raw.allSatisfy { $0 == 0 })
            GuardedSlots.give(slot)
        }
    }

    @Test(arguments: [0, 1, 64, GuardedSlots.capacity - 1, GuardedSlots.capacity, GuardedSlots.capacity + 1, 70_000])
    func everySizeHoldsItsBytes(count: Int) throws {
        var secret = try SecretBytes(count: count)
        #expect(secret.count == count)
        secret.withUnsafeMutableBytes { for index in $0.indices { $0[index] = UInt8(truncatingIfNeeded: index &* 7) } }
        let copy = try secret.prefix(count)
        let equal = copy.constantTimeEquals(secret)
        #expect(equal)
        let pattern = copy.withUnsafeBytes { bytes in bytes.indices.allSatisfy { bytes[$0] == UInt8(truncatingIfNeeded: $0 &* 7) } }
        #expect(pattern)
    }

    /// Many threads taking and releasing at once: no slot is handed to two
    /// owners (each owner's pattern survives its own checks).
    @Test func concurrentOwnersNeverShareASlot() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<500 {
                        let mark = UInt8(truncatingIfNeeded: worker * 31 + round)
                        var secret = try SecretBytes(count: 100 + worker)
                        secret.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: mark) }
                        let intact = secret.withUnsafeBytes { $0.allSatisfy { $0 == mark } }
                        if !intact { throw SlotShared() }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

private struct SlotShared: Error {}

/// Holds a secret in an array (SecretBytes cannot be copied into one).
private final class SecretHolder {
    let secret: SecretBytes
    init(_ secret: consuming SecretBytes) { self.secret = secret }
}

@Suite struct AEADTests {
    @Test func roundTrip() throws {
        let key = try SecretBytes.random(count: AEAD.keyLength)
        let box = try AEAD.seal(secret("payload"), key: key, associatedData: Array("ad".utf8))
        #expect(box.nonce.count == 24)
        #expect(box.ciphertext.count == "payload".utf8.count + 16)
        let opened = try AEAD.open(box, key: key, associatedData: Array("ad".utf8))
        #expect(text(opened) == "payload")
    }

    @Test func anyChangeFailsAuthentication() throws {
        let key = try SecretBytes.random(count: AEAD.keyLength)
        let ad = Array("vault|entry|name".utf8)
        let box = try AEAD.seal(secret("payload"), key: key, associatedData: ad)
        let otherKey = try SecretBytes.random(count: AEAD.keyLength)
        #expect(throws: SealingError.authenticationFailed) { _ = try AEAD.open(box, key: otherKey, associatedData: ad) }
        #expect(throws: SealingError.authenticationFailed) {
            _ = try AEAD.open(box, key: key, associatedData: Array("vault|entry|nAme".utf8))
        }
        for index in box.ciphertext.indices {
            var ciphertext = box.ciphertext
            ciphertext[index] ^= 0x01
            #expect(throws: SealingError.authenticationFailed) {
                _ = try AEAD.open(SealedBox(nonce: box.nonce, ciphertext: ciphertext), key: key, associatedData: ad)
            }
        }
        for index in box.nonce.indices {
            var nonce = box.nonce
            nonce[index] ^= 0x80
            #expect(throws: SealingError.authenticationFailed) {
                _ = try AEAD.open(SealedBox(nonce: nonce, ciphertext: box.ciphertext), key: key, associatedData: ad)
            }
        }
        #expect(throws: SealingError.authenticationFailed) {
            _ = try AEAD.open(SealedBox(nonce: box.nonce, ciphertext: Array(box.ciphertext.prefix(15))), key: key, associatedData: ad)
        }
        #expect(throws: SealingError.invalidLength(what: "nonce", expected: 24, actual: 12)) {
            _ = try AEAD.open(SealedBox(nonce: Array(box.nonce.prefix(12)), ciphertext: box.ciphertext), key: key, associatedData: ad)
        }
    }

    /// 10,000 seals of one value under one key: every nonce and every
    /// ciphertext differs.
    @Test func tenThousandSealsAreAllDistinct() throws {
        let key = try SecretBytes.random(count: AEAD.keyLength)
        let value = secret("the same value every time")
        var nonces = Set<[UInt8]>()
        var ciphertexts = Set<[UInt8]>()
        for _ in 0..<10_000 {
            let box = try AEAD.seal(value, key: key, associatedData: [])
            nonces.insert(box.nonce)
            ciphertexts.insert(box.ciphertext)
        }
        #expect(nonces.count == 10_000)
        #expect(ciphertexts.count == 10_000)
    }
}

@Suite struct KeyDerivationTests {
    let salt = [UInt8](repeating: 7, count: KeyDerivation.saltLength)

    @Test func deterministicPerSaltAndPassphrase() throws {
        let a = try KeyDerivation.deriveKey(passphrase: secret("pass"), salt: salt, parameters: .insecureTesting)
        let b = try KeyDerivation.deriveKey(passphrase: secret("pass"), salt: salt, parameters: .insecureTesting)
        let otherSalt = try KeyDerivation.deriveKey(
            passphrase: secret("pass"), salt: [UInt8](repeating: 8, count: KeyDerivation.saltLength), parameters: .insecureTesting)
        let otherPassphrase = try KeyDerivation.deriveKey(passphrase: secret("Pass"), salt: salt, parameters: .insecureTesting)
        let otherCost = try KeyDerivation.deriveKey(
            passphrase: secret("pass"), salt: salt, parameters: KDFParameters(opsLimit: 2, memLimit: 8 << 10))
        #expect(a.count == 32)
        #expect(a.constantTimeEquals(b) == true)
        #expect(a.constantTimeEquals(otherSalt) == false)
        #expect(a.constantTimeEquals(otherPassphrase) == false)
        #expect(a.constantTimeEquals(otherCost) == false)
    }

    /// Known answer: Argon2id v1.3, t=1, m=8 KiB, p=1 over "pass" with 16
    /// bytes of 0x07, computed by an independent implementation (Python's
    /// argon2-cffi, see `KnownAnswers`), so the stored slots stay readable.
    @Test func knownAnswer() throws {
        let key = try KeyDerivation.deriveKey(passphrase: secret("pass"), salt: salt, parameters: .insecureTesting)
        let hex = key.withUnsafeBytes { $0.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
        #expect(hex == KnownAnswers.argon2idPass)
    }

    @Test(arguments: [
        KDFParameters(opsLimit: 3, memLimit: 1 << 40),  // a terabyte
        KDFParameters(opsLimit: 0, memLimit: 8 << 10),
        KDFParameters(opsLimit: 33, memLimit: 8 << 10),
        KDFParameters(opsLimit: 1, memLimit: 4096),
        KDFParameters(opsLimit: UInt64.max, memLimit: UInt64.max),
    ])
    func outOfRangeParametersAreRefusedBeforeDeriving(parameters: KDFParameters) {
        #expect(throws: SealingError.kdfParametersOutOfRange(opsLimit: parameters.opsLimit, memLimit: parameters.memLimit)) {
            _ = try KeyDerivation.deriveKey(passphrase: secret("pass"), salt: salt, parameters: parameters)
        }
    }

    @Test func presetsAreInRange() throws {
        for preset in [KDFParameters.interactive, .moderate, .sensitive, .insecureTesting] {
            try preset.validate()
        }
    }

    @Test func wrongSaltLengthIsRefused() {
        #expect(throws: SealingError.invalidLength(what: "salt", expected: 16, actual: 15)) {
            _ = try KeyDerivation.deriveKey(passphrase: secret("pass"), salt: Array(salt.prefix(15)), parameters: .insecureTesting)
        }
    }
}

@Suite struct VaultKeyTests {
    @Test func wrapUnwrapAndSeal() throws {
        let key = try VaultKey.generate()
        let wrapping = try SecretBytes.random(count: 32)
        let wrapped = try key.wrap(with: wrapping, associatedData: [1, 2, 3])
        let unwrapped = try VaultKey.unwrap(wrapped, with: wrapping, associatedData: [1, 2, 3])
        let box = try key.seal(secret("entry value"), associatedData: [9])
        #expect(text(try unwrapped.open(box, associatedData: [9])) == "entry value")
        #expect(try key.fingerprint(secret("x")) == unwrapped.fingerprint(secret("x")))
        #expect(throws: SealingError.authenticationFailed) {
            _ = try VaultKey.unwrap(wrapped, with: wrapping, associatedData: [1, 2, 4])
        }
    }

    /// Entry values are sealed under a subkey, not the vault key itself.
    @Test func entriesAreNotSealedUnderTheRootKey() throws {
        let root = try SecretBytes.random(count: 32)
        let rootCopy = try root.prefix(32)
        let key = try VaultKey(root)
        let box = try key.seal(secret("v"), associatedData: [])
        #expect(throws: SealingError.authenticationFailed) { _ = try AEAD.open(box, key: rootCopy, associatedData: []) }
    }

    @Test func fingerprintsAreKeyed() throws {
        let a = try VaultKey.generate()
        let b = try VaultKey.generate()
        #expect(try a.fingerprint(secret("same")) == a.fingerprint(secret("same")))
        #expect(try a.fingerprint(secret("same")) != a.fingerprint(secret("other")))
        #expect(try a.fingerprint(secret("same")) != b.fingerprint(secret("same")))
        #expect(try a.fingerprint(secret("same")).count == 16)
    }
}

@Suite struct ProcessHardeningTests {
    @Test func coreDumpsAndPtraceAreOff() throws {
        try ProcessHardening.apply()
        #expect(!ProcessHardening.isDumpable)
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit)
        #expect(limit.rlim_cur == 0)
        #expect(limit.rlim_max == 0)
    }
}

enum KnownAnswers {
    /// python3 -c "from argon2.low_level import hash_secret_raw, Type;
    ///   print(hash_secret_raw(b'pass', bytes([7]*16), time_cost=1, memory_cost=8,
    ///   parallelism=1, hash_len=32, type=Type.ID, version=19).hex())"
    static let argon2idPass = "6d54e3b20825888730579d9f252b7b42e7efc09a1b595cf34721e0f361e02cfd"
}
