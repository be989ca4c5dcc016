import Foundation
import Testing
import Sealing
@testable import Storage

@Suite struct VaultRoundTrips {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    @Test func createUnlockAddOpenList() throws {
        let created = try makeVault(in: directory)
        let fields = EntryFields(kind: "pat", headerTemplate: "Authorization: Bearer {secret}",
                                 url: "https://immuta.example.com", description: "CI token", expiresAt: 1_900_000_000)
        let added = try created.add(name: "immuta-pat", fields: fields, secret: secret("pat-value-1"), now: 1_800_000_000)
        #expect(added.fields == fields)
        #expect(added.createdAt == 1_800_000_000)

        let reopened = try Vault.open(at: directory.file("vault.db"))
        #expect(reopened.vaultID == created.vault.vaultID)
        #expect(try reopened.entries().map(\.name) == ["immuta-pat"])
        #expect(try reopened.metadata(named: "immuta-pat") == added)
        let unlocked = try reopened.unlock(passphrase: secret("correct horse"))
        #expect(try secretText(unlocked, "immuta-pat") == "pat-value-1")
        #expect(try unlocked.open("immuta-pat").metadata == added)
    }

    @Test func fingerprintsMatchForEqualSecretsOnly() throws {
        let vault = try makeVault(in: directory, entries: [("a", "same"), ("b", "same"), ("c", "other")])
        let byName = Dictionary(uniqueKeysWithValues: try vault.vault.entries().map { ($0.name, $0.fingerprint) })
        #expect(byName["a"] == byName["b"])
        #expect(byName["a"] != byName["c"])
        // Keyed: the same secret in another vault has another fingerprint.
        let otherDirectory = try TemporaryDirectory()
        let other = try makeVault(in: otherDirectory, entries: [("a", "same")])
        #expect(try other.vault.metadata(named: "a").fingerprint != byName["a"])
    }

    @Test func renameUpdateRemove() throws {
        let vault = try makeVault(in: directory, entries: [("old", "value-1"), ("keep", "value-2")])
        try vault.rename("old", to: "new")
        #expect(throws: StorageError.entryNotFound(name: "old")) { _ = try vault.open("old") }
        #expect(try secretText(vault, "new") == "value-1")

        let updated = try vault.update("new") { fields in
            fields.description = "described"
            fields.expiresAt = 1_900_000_000
            fields.headerTemplate = "X-API-Key: {secret}"
        }
        #expect(updated.fields.description == "described")
        let reopened = try Vault.open(at: directory.file("vault.db")).unlock(passphrase: secret("correct horse"))
        #expect(try secretText(reopened, "new") == "value-1")
        let metadata = try reopened.open("new").metadata
        #expect(metadata.fields.headerTemplate == "X-API-Key: {secret}")
        #expect(metadata.fields.expiresAt == 1_900_000_000)

        try reopened.remove("new")
        #expect(try reopened.vault.entries().map(\.name) == ["keep"])
        #expect(throws: StorageError.entryNotFound(name: "new")) { try reopened.remove("new") }
    }

    @Test func renameOntoAnExistingNameChangesNothing() throws {
        let vault = try makeVault(in: directory, entries: [("a", "value-a"), ("b", "value-b")])
        let before = bytes(of: directory.file("vault.db"))
        #expect(throws: StorageError.entryExists(name: "b")) { try vault.rename("a", to: "b") }
        #expect(bytes(of: directory.file("vault.db")) == before)
        #expect(try secretText(vault, "a") == "value-a")
        #expect(try secretText(vault, "b") == "value-b")
    }

    @Test func addNeverOverwrites() throws {
        let vault = try makeVault(in: directory, entries: [("a", "first")])
        let before = bytes(of: directory.file("vault.db"))
        #expect(throws: StorageError.entryExists(name: "a")) {
            try vault.add(name: "a", fields: EntryFields(kind: "token", headerTemplate: "A: {secret}"), secret: secret("second"))
        }
        #expect(bytes(of: directory.file("vault.db")) == before)
        #expect(try secretText(vault, "a") == "first")
    }

    @Test(arguments: ["", "a\nb", "tab\there", "bell\u{7}", " leading", "trailing ", "zero\u{200B}width",
                      "rtl\u{202E}override", String(repeating: "n", count: 201)])
    func invalidNamesAreRefused(name: String) throws {
        let vault = try makeVault(in: directory)
        let before = bytes(of: directory.file("vault.db"))
        #expect(throws: StorageError.self) {
            try vault.add(name: name, fields: EntryFields(kind: "token", headerTemplate: "A: {secret}"), secret: secret("v"))
        }
        #expect(bytes(of: directory.file("vault.db")) == before)
    }

    @Test(arguments: ["immuta-prod", "gitlab/ci", "Ünïcode name", "a"])
    func validNamesRoundTrip(name: String) throws {
        let vault = try makeVault(in: directory, entries: [(name, "value")])
        #expect(try secretText(vault, name) == "value")
    }

    @Test func emptyAndOversizedSecretsAreRefused() throws {
        let vault = try makeVault(in: directory)
        let fields = EntryFields(kind: "token", headerTemplate: "A: {secret}")
        #expect(throws: StorageError.invalidSecret(reason: "it is empty")) {
            try vault.add(name: "a", fields: fields, secret: secret(""))
        }
        #expect(throws: StorageError.self) {
            try vault.add(name: "a", fields: fields, secret: secret(String(repeating: "x", count: Vault.maxSecretLength + 1)))
        }
        #expect(try vault.vault.entries().isEmpty)
    }

    @Test func metadataWithControlCharactersIsRefused() throws {
        let vault = try makeVault(in: directory)
        #expect(throws: StorageError.invalidField(field: "description", reason: "it cannot hold control characters or line breaks")) {
            try vault.add(name: "a", fields: EntryFields(kind: "token", headerTemplate: "A: {secret}", description: "x\u{1B}[2J"),
                          secret: secret("v"))
        }
    }
}

@Suite struct VaultRefusals {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    @Test func wrongPassphraseLeavesTheFileByteIdentical() throws {
        _ = try makeVault(in: directory, entries: [("a", "value")])
        let path = directory.file("vault.db")
        let before = bytes(of: path)
        let vault = try Vault.open(at: path)
        #expect(throws: StorageError.unlockFailed) { try vault.unlock(passphrase: secret("wrong horse")) }
        #expect(bytes(of: path) == before)
        #expect(!FileManager.default.fileExists(atPath: path + "-journal"))
    }

    @Test func missingVault() {
        #expect(throws: StorageError.vaultNotFound(path: directory.file("none.db"))) {
            try Vault.open(at: directory.file("none.db"))
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("none.db")))
    }

    @Test func createNeverReplacesAVault() throws {
        _ = try makeVault(in: directory, entries: [("a", "value")])
        let before = bytes(of: directory.file("vault.db"))
        #expect(throws: StorageError.vaultExists(path: directory.file("vault.db"))) {
            try Vault.create(at: directory.file("vault.db"), passphrase: secret("p"), kdf: .insecureTesting)
        }
        #expect(bytes(of: directory.file("vault.db")) == before)
        // Nothing staged is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["vault.db"])
    }

    @Test func notAVault() throws {
        let random = directory.file("random.db")
        _ = FileManager.default.createFile(atPath: random, contents: Data((0..<4096).map { _ in UInt8.random(in: 0...255) }))
        let empty = directory.file("empty.db")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let otherDatabase = directory.file("other.db")
        _ = FileManager.default.createFile(atPath: otherDatabase, contents: Data())
        try tamper(otherDatabase, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello')")
        for path in [random, empty, otherDatabase] {
            let before = bytes(of: path)
            #expect(throws: StorageError.notAVault(path: path)) { try Vault.open(at: path) }
            #expect(bytes(of: path) == before, "\(path) was changed")
        }
        #expect(throws: StorageError.notAVault(path: directory.path)) { try Vault.open(at: directory.path) }
    }

    @Test func newerFormatIsRefusedUnchanged() throws {
        _ = try makeVault(in: directory, entries: [("a", "value")])
        let path = directory.file("vault.db")
        try tamper(path, "PRAGMA user_version = 99")
        let before = bytes(of: path)
        #expect(throws: StorageError.newerFormat(path: path, found: 99, supported: Schema.currentVersion)) { try Vault.open(at: path) }
        #expect(bytes(of: path) == before)
    }

    @Test(arguments: [2, 3, 4])
    func truncatedVaultIsRefused(fraction: Int) throws {
        let vault = try makeVault(in: directory, entries: (0..<40).map { ("entry-\($0)", "value-\($0)") })
        let path = directory.file("vault.db")
        withExtendedLifetime(vault) {}
        let full = bytes(of: path)
        let cut = Array(full.prefix(full.count / fraction))
        try Data(cut).write(to: URL(fileURLWithPath: path))
        do {
            let reopened = try Vault.open(at: path).unlock(passphrase: secret("correct horse"))
            for index in 0..<40 {
                #expect(try secretText(reopened, "entry-\(index)") == "value-\(index)")
            }
            Issue.record("a vault cut to 1/\(fraction) of its size opened every entry")
        } catch {
            switch error as? StorageError {
            case .damaged, .notAVault, .entryNotFound: break
            default: Issue.record("unexpected error for a truncated vault: \(error)")
            }
        }
        #expect(bytes(of: path) == cut)
    }

    @Test func kdfClaimingATerabyteIsRefusedBeforeAllocating() throws {
        _ = try makeVault(in: directory, entries: [("a", "value")])
        let path = directory.file("vault.db")
        try tamper(path, "UPDATE key_slots SET kdf_mem = 1099511627776")
        let vault = try Vault.open(at: path)
        #expect(throws: StorageError.damaged(path: path, detail: "key slot 1 claims out-of-range key derivation parameters")) {
            try vault.unlock(passphrase: secret("correct horse"))
        }
    }
}

/// File modes must not depend on the umask: the vault's directory is 0700,
/// the vault and its journal 0600. The umask is process-wide, so this suite
/// sets it only for the few milliseconds it needs.
@Suite(.serialized) struct VaultFileModes {
    @Test func modesUnderUmaskZero() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("nested/deeper/vault.db")
        let previous = umask(0)
        defer { umask(previous) }
        let vault = try Vault.create(at: path, passphrase: secret("p"), kdf: .insecureTesting)
        try vault.add(name: "a", fields: EntryFields(kind: "token", headerTemplate: "A: {secret}"), secret: secret("v"))
        #expect(mode(of: directory.file("nested")) == 0o700)
        #expect(mode(of: directory.file("nested/deeper")) == 0o700)
        #expect(mode(of: path) == 0o600)

        // Hold a write transaction open from a second connection, so the
        // rollback journal exists, and look at its mode.
        let writer = try Connection(path: path, flags: 0x0000_0002)
        try writer.execute("BEGIN IMMEDIATE; UPDATE entries SET description = 'x'")
        #expect(FileManager.default.fileExists(atPath: path + "-journal"))
        #expect(mode(of: path + "-journal") == 0o600)
        try writer.execute("ROLLBACK")
    }

    @Test func looserVaultModeIsTightenedOnOpen() throws {
        let directory = try TemporaryDirectory()
        _ = try makeVault(in: directory)
        let path = directory.file("vault.db")
        chmod(path, 0o644)
        _ = try Vault.open(at: path)
        #expect(mode(of: path) == 0o600)
    }
}

/// Names and text fields of printable ASCII skip the per-character Unicode
/// lookup (`String.isPrintableASCII`): every one-character difference from a
/// valid name, over all of ASCII and some scalars beyond, is judged as the
/// lookup alone judges it.
@Suite struct PrintableASCIIFastPath {
    static func refusedByLookup(_ text: String, format: Bool) -> Bool {
        text.unicodeScalars.contains { scalar in
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator, .surrogate: true
            case .format: format
            default: false
            }
        }
    }

    @Test func namesAndFieldsAgreeWithTheLookup() {
        let samples = (0..<128).compactMap(Unicode.Scalar.init) + ["\u{85}", "\u{A0}", "\u{200B}", "\u{202E}", "\u{2028}", "\u{E9}", "\u{1F600}"]
        for scalar in samples {
            let text = "a" + String(Character(scalar)) + "b"
            var nameRefused = false
            do { try EntryName.validate(text) } catch { nameRefused = true }
            #expect(nameRefused == Self.refusedByLookup(text, format: true), "name with U+\(String(scalar.value, radix: 16))")
            var fieldRefused = false
            do { try TextField.validate(text, field: "description", maxUTF8Length: 100, allowEmpty: true) } catch { fieldRefused = true }
            #expect(fieldRefused == Self.refusedByLookup(text, format: false), "field with U+\(String(scalar.value, radix: 16))")
            #expect(text.isPrintableASCII == (scalar.value >= 0x20 && scalar.value < 0x7F))
        }
    }
}
