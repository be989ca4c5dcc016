import Foundation
import Testing
import Sealing
@testable import Storage

@Suite struct Rotation {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    @Test func rotateKeepsThePreviousValue() throws {
        let vault = try makeVault(in: directory, entries: [("pat", "first")])
        let before = try vault.vault.metadata(named: "pat")
        let after = try vault.rotate("pat", to: secret("second"), now: before.updatedAt + 10) { $0.expiresAt = 1_900_000_000 }
        #expect(try secretText(vault, "pat") == "second")
        #expect(after.fields.expiresAt == 1_900_000_000)
        #expect(after.fingerprint != before.fingerprint)
        #expect(after.createdAt == before.createdAt)
        let previous = try vault.vault.previousValues(of: "pat")
        #expect(previous.map(\.version) == [1])
        #expect(previous.first?.fingerprint == before.fingerprint)
        #expect(previous.first?.setAt == before.updatedAt)
        #expect(previous.first?.replacedAt == before.updatedAt + 10)
        #expect(string(try vault.openPrevious("pat")) == "first")

        try vault.rotate("pat", to: secret("third"), now: before.updatedAt + 20)
        #expect(try vault.vault.previousValues(of: "pat").map(\.version) == [2, 1])
        #expect(string(try vault.openPrevious("pat")) == "second")
        #expect(string(try vault.openPrevious("pat", version: 1)) == "first")
        #expect(throws: StorageError.noPreviousValue(name: "pat", version: 7)) { _ = try vault.openPrevious("pat", version: 7) }
    }

    @Test func purgePreviousDiscardsEveryOldValue() throws {
        let vault = try makeVault(in: directory, entries: [("pat", "first")])
        try vault.rotate("pat", to: secret("second"))
        try vault.rotate("pat", to: secret("third"), keepPrevious: false)
        #expect(try vault.vault.previousValues(of: "pat").isEmpty)
        #expect(throws: StorageError.noPreviousValue(name: "pat", version: nil)) { _ = try vault.openPrevious("pat") }
        #expect(try secretText(vault, "pat") == "third")
    }

    @Test func previousValuesExpireAfterTheRetentionPeriod() throws {
        let vault = try makeVault(in: directory, entries: [("pat", "first"), ("other", "x")])
        let start: Int64 = 1_800_000_000
        let end = start + Vault.previousValueRetention
        try vault.rotate("pat", to: secret("second"), now: start)
        // Within the period it is kept, through writes too.
        try vault.update("other", now: end - 1) { $0.description = "a" }
        #expect(try vault.vault.previousValues(of: "pat", now: end).count == 1)
        #expect(string(try vault.openPrevious("pat", now: end)) == "first")
        // After it, it is neither listed nor opened, even before a write...
        #expect(try vault.vault.previousValues(of: "pat", now: end + 1).isEmpty)
        #expect(throws: StorageError.noPreviousValue(name: "pat", version: nil)) { _ = try vault.openPrevious("pat", now: end + 1) }
        #expect(try vault.vault.connection.scalarInt("SELECT count(*) FROM previous_values") == 1)
        // ...and any write, an add included, deletes it from the file.
        try vault.add(name: "new", fields: EntryFields(kind: "token", headerTemplate: "A: {secret}"), secret: secret("v"), now: end + 1)
        #expect(try vault.vault.connection.scalarInt("SELECT count(*) FROM previous_values") == 0)
    }

    @Test func previousValuesFollowRenamesAndGoWithTheEntry() throws {
        let vault = try makeVault(in: directory, entries: [("pat", "first")])
        try vault.rotate("pat", to: secret("second"))
        try vault.rename("pat", to: "renamed")
        #expect(string(try vault.openPrevious("renamed")) == "first")
        try vault.remove("renamed")
        #expect(try vault.vault.connection.scalarInt("SELECT count(*) FROM previous_values") == 0)
    }

    @Test func alteredPreviousValueIsRefused() throws {
        let vault = try makeVault(in: directory, entries: [("pat", "first")])
        try vault.rotate("pat", to: secret("second"))
        let path = directory.file("vault.db")
        for sql in [
            "UPDATE previous_values SET replaced_at = replaced_at + 1",
            "UPDATE previous_values SET version = 2",
            "UPDATE previous_values SET fingerprint = zeroblob(16)",
        ] {
            let copy = directory.file("copy.db")
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            try tamper(copy, sql)
            let reopened = try Vault.open(at: copy).unlock(passphrase: secret("correct horse"))
            #expect(throws: StorageError.entryTampered(name: "pat"), "\(sql)") { _ = try reopened.openPrevious("pat") }
            #expect(try secretText(reopened, "pat") == "second")
        }
    }

    @Test func rotationRefusesBadInputAndChangesNothing() throws {
        let vault = try makeVault(in: directory, entries: [("pat", "first")])
        let before = bytes(of: directory.file("vault.db"))
        #expect(throws: StorageError.invalidSecret(reason: "it is empty")) { try vault.rotate("pat", to: secret("")) }
        #expect(throws: StorageError.entryNotFound(name: "nope")) { try vault.rotate("nope", to: secret("x")) }
        #expect(bytes(of: directory.file("vault.db")) == before)
    }

    @Test func aMigratedGoldenVaultRotates() throws {
        let path = try Vectors.copy(Vectors.golden, into: directory)
        let vault = try Vault.open(at: path).unlock(passphrase: secret(GoldenRecipe.passphrase))
        try vault.rotate("immuta-pat", to: secret("rotated-pat"))
        #expect(try secretText(vault, "immuta-pat") == "rotated-pat")
        #expect(string(try vault.openPrevious("immuta-pat")) == "immuta-pat-golden-0002")
    }
}
