// Crash suite (issue 8, docs/RELIABILITY.md): `kill -9` of add, edit,
// rotate, rm, passwd and backup at random moments of their lives, with and
// without the unlock agent. After every kill the vault must pass SQLite's
// own checks, hold every entry acknowledged before with its exact value, and
// show the interrupted operation wholly done or not at all; a journal left
// by the kill must be rolled back by the next keyseal that opens the vault.
//
// Bounded here (a fixed number of rounds, each killing every command once);
// `scripts/stress crash SECONDS` repeats rounds until the time is spent.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CrashStressTests {
    @Test func killedCommandsUnlockingWithThePassphrase() async throws {
        let run = try await CrashRun(agent: false)
        try await run.go(rounds: 40)
    }

    @Test func killedCommandsUnlockingThroughTheAgent() async throws {
        let run = try await CrashRun(agent: true)
        try await run.go(rounds: 40)
    }
}

/// One vault, killed into again and again; the model is what the vault must
/// hold: every entry acknowledged (or found present after a kill), with its
/// secret and fingerprint.
final class CrashRun {
    let sandbox: Sandbox
    let inspector: VaultInspector
    let agent: Bool
    let label: String
    /// Passwd switches between the two; `current` unlocks the vault.
    let passphraseFiles: [String]
    var current = 0
    var agentPID: Int32?

    struct Known {
        var secret: String
        /// The fingerprint add or rotate reported (12 hex digits), or the
        /// whole one found in the file after a kill.
        var fingerprint: String
    }
    var model: [String: Known] = [:]

    struct Tally {
        var kills = 0
        /// Killed runs that left the old state, and those that left the new one.
        var before = 0
        var after = 0
        /// Runs that exited before the kill came.
        var completed = 0
        /// Kills that left a journal behind (rolled back by the next open).
        var hotJournals = 0
        /// Journals left after the next open, never synced (see expectNoHotJournal).
        var coldJournals = 0
        /// Temporary copies a killed backup left (never under the target's name).
        var leftovers = 0
        /// The longest a run of the command took when not killed, in ms
        /// (calibration runs included).
        var longest = 0.0
    }
    static let commands = ["add", "edit", "rotate", "rm", "passwd", "backup"]
    var tally: [String: Tally] = [:]
    /// The longest delay before the kill, per command, in microseconds.
    var window: [String: UInt32] = [:]
    /// How long the last runs that were not killed took, per command.
    var recent: [String: [UInt32]] = [:]
    /// The kill delays used, to report their range.
    var longestDelay: [String: UInt32] = [:]
    var serial = 0
    var rmTarget: (name: String, id: String)?
    var editState = 0
    var bytesChecked = 0

    var vault: String { sandbox.vault }
    var journal: String { sandbox.vault + "-journal" }
    var backupTarget: String { sandbox.work + "/bk.db" }

    init(agent: Bool) async throws {
        self.agent = agent
        label = agent ? "agent" : "passphrase"
        sandbox = try Sandbox()
        inspector = try VaultInspector()
        let second = sandbox.root + "/passphrase-b"
        try sandbox.write("another passphrase for the crash suite\n", to: second)
        passphraseFiles = [sandbox.passphraseFile, second]
        try await sandbox.initVault()
        if agent { agentPID = try await sandbox.unlockAgent() }
        try await setUp()
    }

    /// With the agent, commands get no passphrase at all: a command that
    /// fell back to one would fail instead of hiding a dead agent.
    func env(noAgent: Bool = false) -> [String: String?] {
        ["KEYSEAL_PASSPHRASE_FILE": agent && !noAgent ? nil : passphraseFiles[current]]
    }

    func secret(_ what: String) -> String {
        serial += 1
        return "crash-\(label)-\(what)-\(serial)-\(UUID().uuidString.prefix(8))"
    }

    static func reportedFingerprint(_ outcome: ChildOutcome) -> String? {
        guard let range = outcome.err.range(of: "fingerprint ") else { return nil }
        let digits = outcome.err[range.upperBound...].prefix { $0.isHexDigit }
        return digits.count == 12 ? String(digits) : nil
    }

    // MARK: Setting up

    /// The entries the rounds work on, each added (and measured) without a kill.
    func setUp() async throws {
        for index in 0..<3 {
            let value = secret("base")
            try await addCompleted("base-\(index)", value)
        }
        try await addCompleted("edit-target", secret("edit"), options: Self.editFields[0].addOptions)
        let setAge = try await sandbox.direct(["edit", "edit-target", "--max-age", Self.editFields[0].maxAge, "--vault", vault], env: env())
        try #require(setAge.status == 0, "\(setAge)")
        try await addCompleted("rot-target", secret("rot"))
        // Calibrate: how long each command runs here, unhurried.
        for _ in 0..<2 {
            for command in Self.commands { try await calibrate(command) }
        }
        for command in Self.commands { tally[command, default: Tally()].completed = 0 }
    }

    func addCompleted(_ name: String, _ value: String, options: [String] = []) async throws {
        let added = try await sandbox.direct(["add", name, "--vault", vault] + options, stdin: value + "\n", env: env())
        try #require(added.status == 0, "\(added)")
        model[name] = Known(secret: value, fingerprint: try #require(Self.reportedFingerprint(added), "\(added)"))
    }

    /// Runs a round of `command` with no kill, to learn how long it takes.
    func calibrate(_ command: String) async throws {
        try await round(command, killAfter: nil)
    }

    // MARK: Rounds

    func go(rounds: Int) async throws {
        let started = Date()
        let done = try await StressBudget.repeatRounds(bounded: rounds) { _ in
            for command in Self.commands {
                let delay = UInt32.random(in: 0...(window[command] ?? 20_000))
                longestDelay[command] = max(longestDelay[command] ?? 0, delay)
                try await round(command, killAfter: delay)
            }
        }
        try await finalCheck()
        let seconds = Date().timeIntervalSince(started)
        print("CrashStressTests (\(label)): \(done) rounds, \(tally.values.map(\.kills).reduce(0, +)) kills in \(Int(seconds)) s; "
            + "\(model.count) entries at the end, every one read back exactly; \(bytesChecked) bytes of vault checked")
        for command in Self.commands {
            let t = tally[command, default: Tally()]
            print("  \(command): \(t.kills) killed (\(t.before) left the old state, \(t.after) the new), "
                + "\(t.completed) finished before the kill; \(t.hotJournals) journals found after the kill, "
                + "\(t.coldJournals) of them cold (never synced, ignored by SQLite until the next write), the rest rolled back; "
                + "kill delays 0-\((longestDelay[command] ?? 0) / 1000) ms, runs not killed took up to \(Int(t.longest)) ms"
                + (command == "backup" || command == "passwd" ? "; \(t.leftovers) temporary copies left" : ""))
        }
    }

    func round(_ command: String, killAfter: UInt32?) async throws {
        switch command {
        case "add": try await addRound(killAfter)
        case "edit": try await editRound(killAfter)
        case "rotate": try await rotateRound(killAfter)
        case "rm": try await removeRound(killAfter)
        case "passwd": try await passwdRound(killAfter)
        case "backup": try await backupRound(killAfter)
        default: Issue.record("no round for \(command)")
        }
    }

    /// Counts what a run did; a run that was not killed must have succeeded.
    func record(_ command: String, _ outcome: ChildOutcome, sourceLocation: SourceLocation = #_sourceLocation) {
        var t = tally[command, default: Tally()]
        if outcome.killed {
            t.kills += 1
        } else {
            t.completed += 1
            t.longest = max(t.longest, Double(outcome.elapsed) / 1000)
            // The kill window follows the load of the machine: 1.1 times
            // the median of the last runs that were not killed.
            var times = (recent[command] ?? []) + [outcome.elapsed]
            if times.count > 9 { times.removeFirst() }
            recent[command] = times
            window[command] = max(5_000, UInt32(Double(times.sorted()[times.count / 2]) * 1.1))
            #expect(outcome.status == 0, "a \(command) that was not killed failed: \(outcome)", sourceLocation: sourceLocation)
        }
        tally[command] = t
    }

    func count(_ command: String, newState: Bool, _ outcome: ChildOutcome, sourceLocation: SourceLocation = #_sourceLocation) {
        if outcome.killed {
            if newState { tally[command]?.after += 1 } else { tally[command]?.before += 1 }
        } else {
            #expect(newState, "\(command) exited 0 but its change is not in the vault: \(outcome)", sourceLocation: sourceLocation)
        }
    }

    /// After a run: notes a journal the kill left, has keyseal open the
    /// vault (verify opens every value), checks the journal is gone, then
    /// has SQLite check the file.
    func settle(_ command: String, verifyEnv: [String: String?]? = nil,
                sourceLocation: SourceLocation = #_sourceLocation) async throws -> VaultInspector.Report {
        if FileManager.default.fileExists(atPath: journal) { tally[command]?.hotJournals += 1 }
        let verified = try await sandbox.direct(["verify", "--json", "--vault", vault], env: verifyEnv ?? env())
        #expect(verified.status == 0, "verify after \(command): \(verified)", sourceLocation: sourceLocation)
        if verified.status == 0 {
            let json = try JSONSerialization.jsonObject(with: verified.stdout) as? [String: Any]
            #expect(json?["intact"] as? Bool == true, "\(verified)", sourceLocation: sourceLocation)
        }
        expectNoHotJournal(after: command, sourceLocation: sourceLocation)
        return try sound(command, sourceLocation: sourceLocation)
    }

    /// Once keyseal has opened the vault, no journal that could still be
    /// rolled back is left: a hot one was rolled back and deleted. A kill
    /// before the journal was synced leaves one whose header SQLite has not
    /// yet stamped (its first 8 bytes, the magic, are zero): the database
    /// file was never written by that transaction, SQLite ignores such a
    /// journal, and the next write transaction reuses and deletes it.
    func expectNoHotJournal(after command: String, counting: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let data = sandbox.bytes(journal) else { return }
        if counting { tally[command]?.coldJournals += 1 }
        #expect(data.count < 8 || data.prefix(8).allSatisfy { $0 == 0 },
                "a journal that could still be rolled back is left after keyseal opened the vault (after \(command)): \(journalSummary())",
                sourceLocation: sourceLocation)
    }

    /// Its size and first bytes, for a message.
    func journalSummary() -> String {
        guard let data = sandbox.bytes(journal) else { return "gone" }
        return "\(data.count) bytes: " + data.prefix(32).map { String(format: "%02x", $0) }.joined()
    }

    func sound(_ command: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> VaultInspector.Report {
        let report = try inspector.inspect(vault, sourceLocation: sourceLocation)
        bytesChecked += Int((try? FileManager.default.attributesOfItem(atPath: vault)[.size] as? NSNumber)??.intValue ?? 0)
        #expect(report.integrity == ["ok"], "integrity_check after \(command): \(report.integrity)", sourceLocation: sourceLocation)
        #expect(report.foreignKeys.isEmpty, "foreign_key_check after \(command): \(report.foreignKeys)", sourceLocation: sourceLocation)
        #expect(report.orphans == 0, "\(report.orphans) rows without their entry after \(command)", sourceLocation: sourceLocation)
        #expect(report.slots.filter { $0 == "passphrase" }.count == 1, "key slots after \(command): \(report.slots)",
                sourceLocation: sourceLocation)
        return report
    }

    /// Every entry of the model is there with its fingerprint, and nothing else is.
    func checkModel(_ report: VaultInspector.Report, after command: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for (name, known) in model {
            let found = report.fingerprint(name)
            #expect(found?.hasPrefix(known.fingerprint) == true || (found != nil && known.fingerprint.hasPrefix(found!)),
                    "after \(command): \(name.debugDescription) has fingerprint \(found ?? "none"), expected \(known.fingerprint)",
                    sourceLocation: sourceLocation)
        }
        #expect(Set(report.entries.keys) == Set(model.keys),
                "after \(command): the vault holds \(report.entries.keys.sorted()), expected \(model.keys.sorted())",
                sourceLocation: sourceLocation)
    }

    func expectValue(_ name: String, _ expected: String, previous: Bool = false,
                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let got = try await sandbox.direct(["get", name, "--vault", vault] + (previous ? ["--previous"] : []), env: env())
        var text = got.out
        if text.hasSuffix("\n") { text.removeLast() }
        #expect(got.status == 0 && text == expected,
                "get \(previous ? "--previous " : "")\(name) did not give back the exact value: \(got)", sourceLocation: sourceLocation)
    }

    // add: absent, or present with the exact value.
    func addRound(_ killAfter: UInt32?) async throws {
        let value = secret("add")
        let name = "add-\(serial)"
        let added = try await sandbox.direct(["add", name, "--vault", vault], stdin: value + "\n", env: env(), killAfter: killAfter)
        record("add", added)
        let report = try await settle("add")
        if let found = report.fingerprint(name) {
            count("add", newState: true, added)
            if let reported = Self.reportedFingerprint(added) { #expect(found.hasPrefix(reported)) }
            try await expectValue(name, value)
            model[name] = Known(secret: value, fingerprint: found)
        } else {
            count("add", newState: false, added)
        }
        checkModel(report, after: "add")
    }

    /// The two sets of fields edit switches between: all of one or all of the other.
    struct EditFields {
        let description: String
        let url: String
        let header: String
        let warnWithin: String
        let warnSeconds: Int
        let maxAge: String
        let maxAgeSeconds: Int

        var addOptions: [String] {
            ["--kind", "bearer", "--url", url, "--header", header, "--description", description, "--warn-within", warnWithin]
        }

        var editOptions: [String] {
            ["--description", description, "--url", url, "--header", header, "--warn-within", warnWithin, "--max-age", maxAge]
        }

        func matches(_ report: VaultInspector.Report, _ name: String) -> Bool {
            report.string(name, "description") == description && report.string(name, "url") == url
                && report.string(name, "header") == header && report.int(name, "warn_within") == warnSeconds
                && report.int(name, "max_age") == maxAgeSeconds
        }
    }

    static let editFields = [
        EditFields(description: "fields A", url: "https://a.example.com", header: "X-A: {secret}",
                   warnWithin: "7d", warnSeconds: 7 * 86_400, maxAge: "30m", maxAgeSeconds: 1_800),
        EditFields(description: "fields B", url: "https://b.example.com", header: "X-B: {secret}",
                   warnWithin: "9d", warnSeconds: 9 * 86_400, maxAge: "45m", maxAgeSeconds: 2_700),
    ]

    // edit: every field old, or every field new; the value unchanged.
    func editRound(_ killAfter: UInt32?) async throws {
        let target = Self.editFields[1 - editState]
        let edited = try await sandbox.direct(["edit", "edit-target", "--vault", vault] + target.editOptions,
                                              env: env(), killAfter: killAfter)
        record("edit", edited)
        let report = try await settle("edit")
        if target.matches(report, "edit-target") {
            count("edit", newState: true, edited)
            editState = 1 - editState
        } else {
            #expect(Self.editFields[editState].matches(report, "edit-target"),
                    "edit left a mix of old and new fields: \(report.entries["edit-target"] ?? [:])")
            count("edit", newState: false, edited)
        }
        checkModel(report, after: "edit")
    }

    // rotate: the old value and no new previous version, or the new value
    // with the old one as the newest previous version.
    func rotateRound(_ killAfter: UInt32?) async throws {
        let before = try sound("rotate")
        let previousCount = before.int("rot-target", "previous") ?? 0
        let old = try #require(model["rot-target"])
        let value = secret("rot")
        let rotated = try await sandbox.direct(["rotate", "rot-target", "--vault", vault], stdin: value + "\n",
                                               env: env(), killAfter: killAfter)
        record("rotate", rotated)
        let report = try await settle("rotate")
        let found = try #require(report.fingerprint("rot-target"), "rotate lost its entry")
        let previous = report.int("rot-target", "previous") ?? 0
        if found.hasPrefix(old.fingerprint) || old.fingerprint.hasPrefix(found) {
            count("rotate", newState: false, rotated)
            #expect(previous == previousCount, "an interrupted rotate left \(previous) previous values, had \(previousCount)")
        } else {
            count("rotate", newState: true, rotated)
            #expect(previous == previousCount + 1, "a rotation left \(previous) previous values, had \(previousCount)")
            try await expectValue("rot-target", value)
            try await expectValue("rot-target", old.secret, previous: true)
            model["rot-target"] = Known(secret: value, fingerprint: found)
        }
        checkModel(report, after: "rotate")
    }

    // rm: the entry and its previous values all there, or all gone.
    func removeRound(_ killAfter: UInt32?) async throws {
        if rmTarget == nil {
            let name = "rm-\(serial + 1)"
            try await addCompleted(name, secret("rm"))
            let value = secret("rm")
            let rotated = try await sandbox.direct(["rotate", name, "--vault", vault], stdin: value + "\n", env: env())
            try #require(rotated.status == 0, "\(rotated)")
            model[name] = Known(secret: value, fingerprint: try #require(Self.reportedFingerprint(rotated)))
            let id = try #require(try sound("rm").string(name, "id"))
            rmTarget = (name, id)
        }
        let (name, id) = try #require(rmTarget)
        let removed = try await sandbox.direct(["rm", name, "--yes", "--vault", vault], env: env(), killAfter: killAfter)
        record("rm", removed)
        let report = try await settle("rm")
        if report.entries[name] != nil {
            count("rm", newState: false, removed)
            #expect(report.int(name, "previous") == 1, "an interrupted rm left \(report.int(name, "previous") ?? -1) of 1 previous values")
        } else {
            count("rm", newState: true, removed)
            #expect(!report.previousIDs.contains(id), "rm left the previous values of \(name)")
            model[name] = nil
            rmTarget = nil
        }
        checkModel(report, after: "rm")
    }

    // passwd: exactly one of the old and the new passphrase unlocks.
    func passwdRound(_ killAfter: UInt32?) async throws {
        let next = 1 - current
        let changed = try await sandbox.direct(
            ["passwd", "--kdf", "insecure-testing", "--new-passphrase-fd", "3", "--vault", vault],
            env: ["KEYSEAL_PASSPHRASE_FILE": passphraseFiles[current]], files: [3: passphraseFiles[next]], killAfter: killAfter)
        record("passwd", changed)
        if FileManager.default.fileExists(atPath: journal) { tally["passwd"]?.hotJournals += 1 }
        var unlocks: [Int32] = []
        for file in passphraseFiles {
            let verified = try await sandbox.direct(["verify", "--json", "--no-agent", "--vault", vault],
                                                    env: ["KEYSEAL_PASSPHRASE_FILE": file])
            #expect(verified.status == 0 || verified.status == 77, "\(verified)")
            unlocks.append(verified.status)
            expectNoHotJournal(after: "passwd", counting: file == passphraseFiles[0])
        }
        #expect(unlocks.filter { $0 == 0 }.count == 1, "after passwd, \(unlocks.filter { $0 == 0 }.count) of the two passphrases unlock")
        let switched = unlocks[next] == 0
        count("passwd", newState: switched, changed)
        if switched { current = next }
        let report = try sound("passwd")
        checkModel(report, after: "passwd")
        tally["passwd"]?.leftovers += try leftovers(in: vault + ".backups", prefix: ".")
        if agent {
            // The agent holds the vault key, which passwd does not change.
            let status = try await sandbox.direct(["status", "--json", "--vault", vault], env: ["KEYSEAL_PASSPHRASE_FILE": nil])
            #expect(status.status == 0 && status.out.contains("\"pid\":\(agentPID ?? -1)"), "the agent is gone: \(status)")
        }
    }

    // backup: the target absent, the previous backup, or a complete new one.
    func backupRound(_ killAfter: UInt32?) async throws {
        let previous = sandbox.bytes(backupTarget)
        let copied = try await sandbox.direct(["backup", backupTarget, "--vault", vault], env: env(), killAfter: killAfter)
        record("backup", copied)
        let report = try await settle("backup")
        checkModel(report, after: "backup")
        tally["backup"]?.leftovers += try leftovers(in: sandbox.work, prefix: ".bk.db.")
        guard let now = sandbox.bytes(backupTarget) else {
            #expect(previous == nil, "a killed backup removed the previous backup")
            count("backup", newState: false, copied)
            return
        }
        if now == previous && copied.killed {
            count("backup", newState: false, copied)
            return
        }
        // A new backup: whole, every value opens, and it holds what the vault holds.
        count("backup", newState: true, copied)
        let copy = try inspector.inspect(backupTarget)
        #expect(copy.isSound, "the backup fails SQLite's checks: \(copy.integrity) \(copy.foreignKeys)")
        #expect(copy.entries.mapValues { $0["fingerprint"] as? String } == report.entries.mapValues { $0["fingerprint"] as? String },
                "the backup does not hold the vault's entries")
        let verified = try await sandbox.direct(["verify", "--vault", backupTarget], env: env())
        #expect(verified.status == 0, "the backup does not verify: \(verified)")
    }

    /// Counts the temporary files a killed command left in `directory`
    /// (which must be private, 0600), and removes them.
    func leftovers(in directory: String, prefix: String) throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var found = 0
        for name in names where name.hasPrefix(prefix) {
            let path = directory + "/" + name
            #expect(sandbox.mode(path).map { $0 & 0o077 == 0 } ?? true, "\(path) is readable by others")
            found += 1
            try? FileManager.default.removeItem(atPath: path)
        }
        return found
    }

    /// At the end: every entry gives back its exact value.
    func finalCheck() async throws {
        for (name, known) in model.sorted(by: { $0.key < $1.key }) {
            try await expectValue(name, known.secret)
        }
        if agent { try await sandbox.lockAgent() }
    }
}
