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

/// Optimistic concurrency: a write given the entry as the caller read it
/// changes nothing when the entry has changed since (keyseal edit, rename).
@Suite struct UnchangedSince {
    @Test func anUpdateFromAStaleReadChangesNothing() throws {
        let directory = try TemporaryDirectory()
        let unlocked = try makeVault(in: directory, entries: [("pat", "v1")])
        let read = try unlocked.vault.metadata(named: "pat")
        // Another writer, through another connection, changes it meanwhile.
        let other = try Vault.open(at: unlocked.vault.path)
        try other.setWarnWithin("pat", 86_400)
        #expect(throws: StorageError.entryChanged(name: "pat")) {
            try unlocked.update("pat", maxAge: .some(600), ifUnchangedSince: read) { $0.description = "stale" }
        }
        #expect(throws: StorageError.entryChanged(name: "pat")) {
            try unlocked.rename("pat", to: "renamed", ifUnchangedSince: read)
        }
        #expect(throws: StorageError.entryChanged(name: "pat")) {
            try unlocked.vault.setPolicies("pat", warnWithin: .some(60), ifUnchangedSince: read)
        }
        let now = try unlocked.vault.metadata(named: "pat")
        #expect(now.fields.description == read.fields.description && now.warnWithin == 86_400 && now.maxAge == nil)
        #expect(now.revision == read.revision + 1)
        // From a fresh read, it goes through: fields, window and max age at once.
        try unlocked.update("pat", warnWithin: .some(120), maxAge: .some(600), ifUnchangedSince: now) { $0.description = "fresh" }
        let updated = try unlocked.vault.metadata(named: "pat")
        #expect(updated.fields.description == "fresh" && updated.warnWithin == 120 && updated.maxAge == 600)
        #expect(updated.revision == now.revision + 1)
        #expect(try secretText(unlocked, "pat") == "v1")
    }

    @Test func anEntryRemovedAndAddedAgainIsAnotherEntry() throws {
        let directory = try TemporaryDirectory()
        let unlocked = try makeVault(in: directory, entries: [("pat", "v1")])
        let read = try unlocked.vault.metadata(named: "pat")
        try unlocked.remove("pat")
        try unlocked.add(name: "pat", fields: read.fields, secret: secret("v2"))
        // Same name, same revision (0), another entry id.
        #expect(try unlocked.vault.metadata(named: "pat").revision == read.revision)
        #expect(throws: StorageError.entryChanged(name: "pat")) {
            try unlocked.update("pat", ifUnchangedSince: read) { $0.description = "meant for the old one" }
        }
    }

    @Test func bothPoliciesChangeInOneStep() throws {
        let directory = try TemporaryDirectory()
        let unlocked = try makeVault(in: directory, entries: [("pat", "v1")])
        try unlocked.vault.setPolicies("pat", warnWithin: .some(3_600), maxAge: .some(60))
        var read = try unlocked.vault.metadata(named: "pat")
        #expect(read.warnWithin == 3_600 && read.maxAge == 60 && read.revision == 1)
        // A bad value refuses both.
        #expect(throws: StorageError.self) { try unlocked.vault.setPolicies("pat", warnWithin: .some(7_200), maxAge: .some(0)) }
        read = try unlocked.vault.metadata(named: "pat")
        #expect(read.warnWithin == 3_600 && read.maxAge == 60)
        try unlocked.vault.setPolicies("pat", warnWithin: .some(nil), maxAge: .some(nil))
        read = try unlocked.vault.metadata(named: "pat")
        #expect(read.warnWithin == nil && read.maxAge == nil && read.revision == 2)
        #expect(throws: StorageError.entryNotFound(name: "nope")) { try unlocked.vault.setPolicies("nope", warnWithin: .some(60)) }
    }
}
