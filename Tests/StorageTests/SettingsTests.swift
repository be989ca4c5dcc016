import Foundation
import Testing
import Sealing
@testable import Storage

@Suite struct PolicyMetadata {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    @Test func settingsRoundTripWithoutUnlocking() throws {
        _ = try makeVault(in: directory)
        let vault = try Vault.open(at: directory.file("vault.db"))
        #expect(try vault.setting("warn-within") == nil)
        try vault.setSetting("warn-within", "604800")
        try vault.setSetting("refuse-expired", "true")
        try vault.setSetting("warn-within", "86400")
        let reopened = try Vault.open(at: directory.file("vault.db"))
        #expect(try reopened.setting("warn-within") == "86400")
        #expect(try reopened.settings().map { "\($0.key)=\($0.value)" } == ["refuse-expired=true", "warn-within=86400"])
        try reopened.setSetting("refuse-expired", nil)
        #expect(try reopened.setting("refuse-expired") == nil)
        #expect(throws: StorageError.self) { try reopened.setSetting("bad\nkey", "1") }
        #expect(throws: StorageError.self) { try reopened.setSetting("key", "") }
    }

    @Test func anEntrysWarningWindowIsSetWithoutUnlockingAndLeavesTheSealAlone() throws {
        let unlocked = try makeVault(in: directory, entries: [("pat", "value")])
        let vault = try Vault.open(at: directory.file("vault.db"))
        #expect(try vault.metadata(named: "pat").warnWithin == nil)
        try vault.setWarnWithin("pat", 3 * 86_400)
        #expect(try vault.metadata(named: "pat").warnWithin == 3 * 86_400)
        #expect(try secretText(unlocked, "pat") == "value")
        // Edits that re-seal keep it.
        try unlocked.update("pat") { $0.description = "changed" }
        #expect(try vault.metadata(named: "pat").warnWithin == 3 * 86_400)
        try vault.setWarnWithin("pat", nil)
        #expect(try vault.metadata(named: "pat").warnWithin == nil)
        #expect(throws: StorageError.entryNotFound(name: "nope")) { try vault.setWarnWithin("nope", 60) }
        #expect(throws: StorageError.self) { try vault.setWarnWithin("pat", 0) }
    }

    @Test func addTakesAWarningWindow() throws {
        let unlocked = try makeVault(in: directory)
        try unlocked.add(name: "pat", fields: EntryFields(kind: "pat", headerTemplate: "A: {secret}"), secret: secret("v"),
                         warnWithin: 7 * 86_400)
        #expect(try unlocked.vault.metadata(named: "pat").warnWithin == 7 * 86_400)
    }
}

@Suite struct Revisions {
    @Test func everyChangeCountsOnce() throws {
        let directory = try TemporaryDirectory()
        let unlocked = try makeVault(in: directory, entries: [("pat", "v1")])
        func revision() throws -> Int64 { try unlocked.vault.metadata(named: "pat").revision }
        #expect(try revision() == 0)
        try unlocked.update("pat") { $0.description = "a" }
        #expect(try revision() == 1)
        try unlocked.rotate("pat", to: secret("v2"))
        #expect(try revision() == 2)
        try unlocked.vault.setWarnWithin("pat", 86_400)
        #expect(try revision() == 3)
        try unlocked.rename("pat", to: "renamed")
        #expect(try unlocked.vault.metadata(named: "renamed").revision == 4)
    }
}
