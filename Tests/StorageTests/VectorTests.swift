import Foundation
import Testing
import Sealing
@testable import Storage

/// The committed v1 vectors (Vectors/README.md): the golden vault must open
/// forever, and every altered copy must be refused, never yield a wrong secret.
@Suite struct FormatV1Vectors {
    @Test func goldenVaultOpensWithExactContents() throws {
        let directory = try TemporaryDirectory()
        let path = try Vectors.copy(Vectors.golden, into: directory)
        try #require(try Connection(path: path, flags: 0x0000_0001).scalarInt("PRAGMA user_version") == 1)
        // Opening migrates the v1 file to the current format, in place.
        let vault = try Vault.open(at: path)
        #expect(vault.formatVersion == Schema.currentVersion)
        #expect(try vault.connection.scalarInt("PRAGMA user_version") == Schema.currentVersion)
        #expect(try vault.previousValues(of: "immuta-pat").isEmpty)
        let listed = try vault.entries()
        #expect(listed.map(\.name) == GoldenRecipe.items.map(\.name).sorted())
        let unlocked = try vault.unlock(passphrase: secret(GoldenRecipe.passphrase))
        for item in GoldenRecipe.items {
            #expect(try secretText(unlocked, item.name) == item.secret)
            let metadata = try unlocked.open(item.name).metadata
            #expect(metadata.fields == item.fields)
            #expect(metadata.createdAt == GoldenRecipe.createdAt)
        }
    }

    /// A new vault and a migrated golden vault have the same schema, so a
    /// format change cannot slip in without a migration.
    @Test func newVaultsHaveTheMigratedGoldenSchema() throws {
        let directory = try TemporaryDirectory()
        let made = try makeVault(in: directory)
        let golden = try Vault.open(at: try Vectors.copy(Vectors.golden, into: directory, as: "golden.db"))
        let query = "SELECT group_concat(type || ' ' || name || ' ' || coalesce(sql, ''), char(10)) FROM (SELECT * FROM sqlite_schema ORDER BY name)"
        #expect(try made.vault.connection.scalarText(query) == golden.connection.scalarText(query))
        #expect(try made.vault.connection.scalarInt("PRAGMA application_id") == Schema.applicationID)
    }

    struct NegativeVector: CustomTestStringConvertible, Sendable {
        let id: String
        let expect: String
        let passphrase: String
        let sql: String
        var testDescription: String { id }
    }

    static let negativeVectors = load(Vectors.negative, passphrase: GoldenRecipe.passphrase)

    static func load(_ path: String, passphrase: String) -> [NegativeVector] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return NegativeVector(id: columns[0], expect: columns[1],
                                  passphrase: columns[2] == "-" ? passphrase : columns[2],
                                  sql: columns[3])
        }
    }

    @Test func theNegativeVectorListIsThere() {
        #expect(Self.negativeVectors.count >= 30)
    }

    @Test(arguments: negativeVectors)
    func alteredCopyIsRefused(vector: NegativeVector) throws {
        let directory = try TemporaryDirectory()
        let path = try Vectors.copy(Vectors.golden, into: directory)
        let other = try Vectors.copy(Vectors.other, into: directory, as: "other.db")
        // Migrate both first, so the vector tests the current format's checks.
        _ = try Vault.open(at: path)
        _ = try Vault.open(at: other)
        if vector.sql != "-" { try tamper(path, vector.sql.replacingOccurrences(of: "{other}", with: other)) }
        let before = bytes(of: path)
        defer { #expect(bytes(of: path) == before, "the refusal changed the file") }

        switch vector.expect {
        case "unlock-failed":
            let vault = try Vault.open(at: path)
            #expect(throws: StorageError.unlockFailed) { try vault.unlock(passphrase: secret(vector.passphrase)) }
        case "damaged":
            #expect {
                try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            } throws: { error in
                if case .damaged = error as? StorageError { return true }
                return false
            }
        case "unsupported-version":
            #expect(throws: StorageError.newerFormat(path: path, found: 99, supported: Schema.currentVersion)) { try Vault.open(at: path) }
        case "not-a-vault":
            #expect(throws: StorageError.notAVault(path: path)) { try Vault.open(at: path) }
        case let expect where expect.hasPrefix("tampered:"):
            let tampered = expect.dropFirst("tampered:".count).split(separator: ",").map(String.init)
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            for name in tampered {
                #expect(throws: StorageError.entryTampered(name: name)) { _ = try unlocked.open(name) }
            }
            for item in GoldenRecipe.items where !tampered.contains(item.name) {
                guard try unlocked.vault.entries().contains(where: { $0.name == item.name }) else { continue }
                #expect(try secretText(unlocked, item.name) == item.secret)
            }
        default:
            Issue.record("unknown expectation \(vector.expect)")
        }
    }
}

/// The committed v2 vectors: a format-2 vault with a rotated entry, migrated
/// to the current format when opened, and altered copies of it.
@Suite struct FormatV2Vectors {
    static let passphrase = "golden-passphrase-v2"
    /// A day after the golden rotation, inside the retention period.
    static let now = GoldenRecipe.createdAt + 2 * 86_400

    @Test func goldenVaultOpensWithExactContents() throws {
        let directory = try TemporaryDirectory()
        let path = try Vectors.copy(Vectors.goldenV2, into: directory)
        try #require(try Connection(path: path, flags: 0x0000_0001).scalarInt("PRAGMA user_version") == 2)
        _ = try Vault.open(at: path)
        let before = bytes(of: path)
        let vault = try Vault.open(at: path)
        #expect(vault.formatVersion == Schema.currentVersion)
        let unlocked = try vault.unlock(passphrase: secret(Self.passphrase))
        for item in GoldenRecipe.items {
            #expect(try secretText(unlocked, item.name) == item.secret)
            #expect(try unlocked.open(item.name).metadata.fields == item.fields)
        }
        let previous = try vault.previousValues(of: "immuta-pat", now: Self.now)
        #expect(previous.map(\.version) == [1])
        #expect(previous.first?.replacedAt == GoldenRecipe.createdAt + 86_400)
        #expect(string(try unlocked.openPrevious("immuta-pat", now: Self.now)) == "immuta-pat-golden-0002-before-rotation")
        #expect(try vault.previousValues(of: "gitlab", now: Self.now).isEmpty)
        #expect(bytes(of: path) == before, "reading a current-format vault wrote to it")
    }

    static let negativeVectors = FormatV1Vectors.load(Vectors.negativeV2, passphrase: passphrase)

    @Test func theNegativeVectorListIsThere() {
        #expect(Self.negativeVectors.count >= 12)
    }

    @Test(arguments: negativeVectors)
    func alteredCopyIsRefused(vector: FormatV1Vectors.NegativeVector) throws {
        let directory = try TemporaryDirectory()
        let path = try Vectors.copy(Vectors.goldenV2, into: directory)
        // Migrated first, so the vector tests the current format's checks.
        _ = try Vault.open(at: path)
        if vector.sql != "-" { try tamper(path, vector.sql) }
        let before = bytes(of: path)
        defer { #expect(bytes(of: path) == before, "the refusal changed the file") }
        switch vector.expect {
        case "unlock-failed":
            let vault = try Vault.open(at: path)
            #expect(throws: StorageError.unlockFailed) { try vault.unlock(passphrase: secret(vector.passphrase)) }
        case "unsupported-version":
            #expect(throws: StorageError.newerFormat(path: path, found: 99, supported: Schema.currentVersion)) { try Vault.open(at: path) }
        case "intact":
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            for item in GoldenRecipe.items { #expect(try secretText(unlocked, item.name) == item.secret) }
        case let expect where expect.hasPrefix("previous-tampered:"):
            let name = String(expect.dropFirst("previous-tampered:".count))
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            #expect(throws: StorageError.entryTampered(name: name)) { _ = try unlocked.openPrevious(name, now: Self.now) }
            for item in GoldenRecipe.items { #expect(try secretText(unlocked, item.name) == item.secret) }
        case let expect where expect.hasPrefix("tampered:"):
            let name = String(expect.dropFirst("tampered:".count))
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            #expect(throws: StorageError.entryTampered(name: name)) { _ = try unlocked.open(name) }
        default:
            Issue.record("unknown expectation \(vector.expect)")
        }
    }
}

/// The committed v3 vectors: a format-3 vault (Vectors/README.md) with a
/// bearer entry (kept token, CA certificates, max age, one lifetime) and a
/// PAT made by `pat create` (token id, remote state), opened as it is, and
/// altered copies of it.
@Suite struct FormatV3Vectors {
    static let passphrase = "golden-passphrase-v3"
    static let keptToken = "golden-bearer-token-0005"
    static let obtainedAt = GoldenRecipe.createdAt + 60
    static let tokenID = "6f1c0e9a-0000-4000-8000-000000000001"
    static let extraItems: [GoldenRecipe.Item] = [
        GoldenRecipe.Item(name: "immuta-bearer", secret: "IMMUTA-BEARER-KEY-GOLDEN-0004",
                          fields: EntryFields(kind: "bearer", headerTemplate: "Authorization: Bearer {secret}",
                                              url: "https://immuta.example.com", description: "Immuta API key, exchanged",
                                              caCertificates: "/etc/ssl/golden-ca.pem")),
        GoldenRecipe.Item(name: "immuta-created-pat", secret: "immuta-created-pat-golden-0006",
                          fields: EntryFields(kind: "pat", headerTemplate: "Authorization: Bearer {secret}",
                                              url: "https://immuta.example.com", description: "made by pat create",
                                              expiresAt: 1_801_353_600)),
    ]

    @Test func goldenVaultOpensWithExactContents() throws {
        let directory = try TemporaryDirectory()
        let path = try Vectors.copy(Vectors.goldenV3, into: directory)
        let before = bytes(of: path)
        let vault = try Vault.open(at: path)
        #expect(vault.formatVersion == 3)
        let unlocked = try vault.unlock(passphrase: secret(Self.passphrase))
        for item in GoldenRecipe.items + Self.extraItems {
            #expect(try secretText(unlocked, item.name) == item.secret)
            #expect(try unlocked.open(item.name).metadata.fields == item.fields)
        }
        let bearer = try vault.metadata(named: "immuta-bearer")
        #expect(bearer.maxAge == 3600)
        #expect(try keptText(unlocked, "immuta-bearer") == Self.keptToken)
        #expect(try vault.keptToken(of: try vault.sealedEntry(named: "immuta-bearer"))?.obtainedAt == Self.obtainedAt + 60)
        #expect(try vault.tokenLifetimes(of: try vault.sealedEntry(named: "immuta-bearer"))
            == [TokenLifetime(obtainedAt: Self.obtainedAt, endedAt: Self.obtainedAt + 30)])
        let pat = try vault.metadata(named: "immuta-created-pat")
        #expect(pat.remoteID == Self.tokenID && pat.remoteState == .active)
        #expect(try vault.metadata(named: "gitlab").remoteID == nil)
        #expect(bytes(of: path) == before, "reading a current-format vault wrote to it")
    }

    static let negativeVectors = FormatV1Vectors.load(Vectors.negativeV3, passphrase: passphrase)

    @Test func theNegativeVectorListIsThere() {
        #expect(Self.negativeVectors.count >= 10)
    }

    @Test(arguments: negativeVectors)
    func alteredCopyIsRefused(vector: FormatV1Vectors.NegativeVector) throws {
        let directory = try TemporaryDirectory()
        let path = try Vectors.copy(Vectors.goldenV3, into: directory)
        if vector.sql != "-" { try tamper(path, vector.sql) }
        let before = bytes(of: path)
        defer { #expect(bytes(of: path) == before, "the refusal changed the file") }
        let allItems = GoldenRecipe.items + Self.extraItems
        switch vector.expect {
        case "intact":
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            for item in allItems { #expect(try secretText(unlocked, item.name) == item.secret) }
            #expect(try keptText(unlocked, "immuta-bearer") == Self.keptToken)
        case "damaged":
            #expect {
                try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase)).vault.entries()
            } throws: { error in
                if case .damaged = error as? StorageError { return true }
                return false
            }
        case let expect where expect.hasPrefix("token-tampered:"):
            let name = String(expect.dropFirst("token-tampered:".count))
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            #expect(throws: StorageError.entryTampered(name: name)) { _ = try keptText(unlocked, name) }
            for item in allItems { #expect(try secretText(unlocked, item.name) == item.secret) }
        case let expect where expect.hasPrefix("tampered:"):
            let name = String(expect.dropFirst("tampered:".count))
            let unlocked = try Vault.open(at: path).unlock(passphrase: secret(vector.passphrase))
            #expect(throws: StorageError.entryTampered(name: name)) { _ = try unlocked.open(name) }
            for item in allItems where item.name != name { #expect(try secretText(unlocked, item.name) == item.secret) }
        default:
            Issue.record("unknown expectation \(vector.expect)")
        }
    }
}
