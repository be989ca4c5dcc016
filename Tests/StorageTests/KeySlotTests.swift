import Foundation
import Testing
import Sealing
@testable import Storage

@Suite struct KeySlots {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    @Test func aKeyFileSlotUnlocksWithoutAKDF() throws {
        let vault = try makeVault(in: directory, entries: [("pat", "value")])
        let keyFile = try SecretBytes.random(count: Vault.keyFileLength)
        let slot = try vault.addKeyFileSlot(keyFile: keyFile)
        #expect(slot.method == .keyFile)
        #expect(try vault.vault.keySlots().map(\.method) == [.passphrase, .keyFile])
        let reopened = try Vault.open(at: directory.file("vault.db")).unlock(keyFile: keyFile)
        #expect(try secretText(reopened, "pat") == "value")
        // A wrong key file fails exactly like a wrong passphrase.
        let wrong = try SecretBytes.random(count: Vault.keyFileLength)
        #expect(throws: StorageError.unlockFailed) { try Vault.open(at: directory.file("vault.db")).unlock(keyFile: wrong) }
        #expect(throws: StorageError.unlockFailed) { try Vault.open(at: directory.file("vault.db")).unlock(keyFile: try SecretBytes(count: 5)) }
        // The passphrase still works.
        #expect(try secretText(try Vault.open(at: directory.file("vault.db")).unlock(passphrase: secret("correct horse")), "pat") == "value")
    }

    @Test func theLastSlotCannotBeRemoved() throws {
        let vault = try makeVault(in: directory)
        let keyFile = try SecretBytes.random(count: Vault.keyFileLength)
        let added = try vault.addKeyFileSlot(keyFile: keyFile)
        try vault.removeKeySlot(1)
        #expect(try vault.vault.keySlots().map(\.id) == [added.id])
        #expect(throws: StorageError.lastKeySlot) { try vault.removeKeySlot(added.id) }
        #expect(throws: StorageError.keySlotNotFound(id: 99)) { try vault.removeKeySlot(99) }
        // With only a key-file slot, a passphrase is simply wrong.
        #expect(throws: StorageError.unlockFailed) { try Vault.open(at: directory.file("vault.db")).unlock(passphrase: secret("correct horse")) }
        _ = try Vault.open(at: directory.file("vault.db")).unlock(keyFile: keyFile)
    }

    @Test func changingThePassphraseKeepsEveryEntryAndLeavesNoOldWrappedKey() throws {
        let vault = try makeVault(in: directory, entries: [("a", "value-a"), ("b", "value-b")])
        let path = directory.file("vault.db")
        let oldWrapped = try #require(try vault.vault.connection.prepare("SELECT wrapped_key FROM key_slots").blobRow())
        try vault.changePassphrase(to: secret("new horse"), kdf: .insecureTesting)
        #expect(throws: StorageError.unlockFailed) { try Vault.open(at: path).unlock(passphrase: secret("correct horse")) }
        let reopened = try Vault.open(at: path).unlock(passphrase: secret("new horse"))
        #expect(try secretText(reopened, "a") == "value-a")
        #expect(try secretText(reopened, "b") == "value-b")
        // secure_delete overwrote the old slot's bytes; no journal is left.
        let file = bytes(of: path)
        #expect(file.count > 0)
        #expect(!file.contains(subsequence: oldWrapped))
        #expect(!FileManager.default.fileExists(atPath: path + "-journal"))
    }

    @Test func anAgentBackedVaultCannotChangeSlots() throws {
        let vault = try makeVault(in: directory)
        let elsewhere = vault.vault.unlocked(by: try VaultKey.generate())
        #expect(elsewhere.localKey != nil)  // a VaultKey here stands in for any sealer
        let agentLike = vault.vault.unlocked(by: ForwardingSealer(vault.localKey!))
        #expect(agentLike.localKey == nil)
        #expect(throws: StorageError.needsVaultKey) { try agentLike.changePassphrase(to: secret("x"), kdf: .insecureTesting) }
        #expect(throws: StorageError.needsVaultKey) { try agentLike.addKeyFileSlot(keyFile: try SecretBytes.random(count: 32)) }
    }
}

/// An EntrySealer that is not a VaultKey, as the agent client is.
final class ForwardingSealer: EntrySealer {
    let key: VaultKey
    init(_ key: VaultKey) { self.key = key }
    func seal(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> SealedBox {
        try key.seal(plaintext, associatedData: associatedData)
    }
    func open(_ box: SealedBox, associatedData: [UInt8]) throws(SealingError) -> SecretBytes {
        try key.open(box, associatedData: associatedData)
    }
    func fingerprint(_ plaintext: borrowing SecretBytes) throws(SealingError) -> [UInt8] {
        try key.fingerprint(plaintext)
    }
}

extension Statement {
    func blobRow() throws -> [UInt8]? { try step() ? blob(0) : nil }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count, !subsequence.isEmpty else { return false }
        for start in 0...(count - subsequence.count) where self[start] == subsequence[0] {
            if Array(self[start..<start + subsequence.count]) == subsequence { return true }
        }
        return false
    }
}
