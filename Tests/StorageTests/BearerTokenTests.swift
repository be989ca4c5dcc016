import Foundation
import Testing
@testable import Sealing
@testable import Storage

/// A bearer entry's token kept between uses (format 3): sealed and bound to
/// its entry and the time it was obtained, dropped when the entry changes.
@Suite struct BearerTokenTests {
    private static let fields = EntryFields(kind: "bearer", headerTemplate: "Authorization: Bearer {secret}",
                                            url: "https://immuta.example.com")

    private func vaultWithBearer(_ directory: TemporaryDirectory, names: [String] = ["immuta"]) throws -> UnlockedVault {
        let vault = try makeVault(in: directory)
        for name in names { try vault.add(name: name, fields: Self.fields, secret: secret("api-key-\(name)")) }
        return vault
    }

    @Test func aKeptTokenOpensToItsValueAndIsSealedInTheFile() throws {
        let directory = try TemporaryDirectory()
        let vault = try vaultWithBearer(directory)
        let sealed = try vault.vault.sealedEntry(named: "immuta")
        #expect(try vault.vault.keptToken(of: sealed) == nil)
        try vault.keep(secret("token-sentinel-1"), for: sealed, obtainedAt: 1_800_000_000)
        #expect(try vault.vault.keptToken(of: sealed)?.obtainedAt == 1_800_000_000)
        #expect(try keptText(vault, "immuta") == "token-sentinel-1")
        // A second keep replaces the first.
        try vault.keep(secret("token-sentinel-2"), for: sealed, obtainedAt: 1_800_000_100)
        #expect(try keptText(vault, "immuta") == "token-sentinel-2")
        #expect(try vault.vault.connection.scalarInt("SELECT count(*) FROM bearer_tokens") == 1)
        let file = Data(bytes(of: directory.file("vault.db")))
        #expect(file.range(of: Data("token-sentinel".utf8)) == nil, "a token is in the file in the clear")
    }

    @Test func aTokenMovedOrMadeYoungerFailsAsTampering() throws {
        let directory = try TemporaryDirectory()
        let vault = try vaultWithBearer(directory, names: ["immuta", "other"])
        let sealed = try vault.vault.sealedEntry(named: "immuta")
        try vault.keep(secret("token-a"), for: sealed, obtainedAt: 1_800_000_000)

        try tamper(directory.file("vault.db"), "UPDATE bearer_tokens SET obtained_at = obtained_at + 3600")
        #expect(throws: StorageError.entryTampered(name: "immuta")) { _ = try keptText(vault, "immuta") }

        try tamper(directory.file("vault.db"), "UPDATE bearer_tokens SET obtained_at = 1800000000")
        #expect(try keptText(vault, "immuta") == "token-a")
        try tamper(directory.file("vault.db"), """
            UPDATE bearer_tokens SET entry_id = (SELECT entry_id FROM entries WHERE name = 'other')
            """)
        #expect(try keptText(vault, "immuta") == nil)
        #expect(throws: StorageError.entryTampered(name: "other")) { _ = try keptText(vault, "other") }
    }

    @Test func rotatingOrEditingDropsTheToken_removingDropsItsRows() throws {
        let directory = try TemporaryDirectory()
        let vault = try vaultWithBearer(directory)
        func keepOne() throws {
            try vault.keep(secret("token"), for: try vault.vault.sealedEntry(named: "immuta"), obtainedAt: Vault.currentTime())
            #expect(try keptText(vault, "immuta") == "token")
        }
        try keepOne()
        try vault.rotate("immuta", to: secret("new-api-key"))
        #expect(try keptText(vault, "immuta") == nil)
        try keepOne()
        try vault.update("immuta") { $0.description = "changed" }
        #expect(try keptText(vault, "immuta") == nil)
        try keepOne()
        // The max age is policy, not a re-seal: the token stays.
        try vault.vault.setMaxAge("immuta", 3600)
        #expect(try vault.vault.metadata(named: "immuta").maxAge == 3600)
        #expect(try keptText(vault, "immuta") == "token")
        try vault.tokenRefused(try vault.vault.sealedEntry(named: "immuta"),
                               obtainedAt: try #require(try vault.vault.keptToken(of: try vault.vault.sealedEntry(named: "immuta"))).obtainedAt)
        #expect(try keptText(vault, "immuta") == nil)
        try keepOne()
        try vault.remove("immuta")
        #expect(try vault.vault.connection.scalarInt("SELECT count(*) FROM bearer_tokens") == 0)
        #expect(try vault.vault.connection.scalarInt("SELECT count(*) FROM token_lifetimes") == 0)
    }

    /// A token got with a key that changed meanwhile (another keyseal rotated
    /// it between the read and the keep) is not kept.
    @Test func aTokenForAnEntryChangedMeanwhileIsNotKept() throws {
        let directory = try TemporaryDirectory()
        let vault = try vaultWithBearer(directory)
        let readBefore = try vault.vault.sealedEntry(named: "immuta")
        try vault.rotate("immuta", to: secret("rotated-key"))
        try vault.keep(secret("stale-token"), for: readBefore, obtainedAt: Vault.currentTime())
        #expect(try keptText(vault, "immuta") == nil)
    }

    @Test func refusalsRecordLifetimesNewestTwentyKept() throws {
        let directory = try TemporaryDirectory()
        let vault = try vaultWithBearer(directory)
        for index in 0..<25 {
            let sealed = try vault.vault.sealedEntry(named: "immuta")
            let obtained = Int64(1_800_000_000 + index * 1000)
            try vault.keep(secret("t\(index)"), for: sealed, obtainedAt: obtained)
            try vault.tokenRefused(sealed, obtainedAt: obtained, at: obtained + 600 + Int64(index))
        }
        let lifetimes = try vault.vault.tokenLifetimes(of: try vault.vault.sealedEntry(named: "immuta"))
        #expect(lifetimes.count == Vault.keptLifetimes)
        #expect(lifetimes.first == TokenLifetime(obtainedAt: 1_800_024_000, endedAt: 1_800_024_624))
        #expect(lifetimes.map(\.seconds).min() == 605)
        #expect(try vault.vault.keptToken(of: try vault.vault.sealedEntry(named: "immuta")) == nil)
        #expect(throws: StorageError.self) { try vault.vault.setMaxAge("immuta", 0) }
        #expect(throws: StorageError.entryNotFound(name: "nope")) { try vault.vault.setMaxAge("nope", 60) }
    }
}
