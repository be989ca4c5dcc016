// `keyseal check` end to end (issue 4): its Nagios-style exit statuses, one
// line per entry that needs attention, --within, --strict, --quiet, --json,
// and that it needs no passphrase and changes nothing.
import Foundation
import Testing

@Suite("keyseal check: exit statuses, lines and JSON for cron, CI and prompts")
struct ExpiryCheckTests {
    /// `NAME: STATE, WORDING`, as check prints an entry that needs attention.
    private func line(_ sandbox: Sandbox, _ entry: ExpiryEntry, state: String? = nil) async throws -> String {
        "\(entry.name): \(state ?? entry.state), \(try await sandbox.expectedWording(entry.name))"
    }

    @Test("0 and nothing printed when every entry is ok or never expires")
    func allWell() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.yearly, .forever])
        let result = try await sandbox.ks(["check"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")

        // An empty vault is well too.
        let bare = try Sandbox()
        try await bare.initVault()
        let none = try await bare.ks(["check"])
        #expect(none.status == 0 && none.stdout.isEmpty && none.stderr.isEmpty, "\(none)")
    }

    @Test("1 with one line per expiring entry, soonest first, and none for ok or never")
    func expiring() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.yearly, .soon, .forever])
        try await sandbox.addExpiring("later", secret: "tok-later", options: ["--expires", "10d"])
        let result = try await sandbox.ks(["check"])
        #expect(result.status == 1, "\(result)")
        let later = "later: expiring, \(try await sandbox.expectedWording("later"))"
        #expect(later.hasSuffix(" days (\(ExpiryClock.localDate(Date().addingTimeInterval(10 * 86_400))))"), "\(later)")
        let soonLine = try await line(sandbox, .soon)
        #expect(result.out == [soonLine, later].map { $0 + "\n" }.joined(), "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
    }

    @Test("2 when any entry has expired, with a line for each expired and each expiring entry")
    func expired() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        let result = try await sandbox.ks(["check"])
        #expect(result.status == 2, "\(result)")
        var expected: [String] = []
        for entry in [ExpiryEntry.old, .lapsed, .soon] { expected.append(try await line(sandbox, entry)) }
        #expect(outputLines(result.out) == expected, "\(result)")
        #expect(result.out.hasSuffix("\n"), "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        // The wording is the issue's: days ago, and the local date.
        let days = ExpiryClock.daysLeft(ExpiryClock.calendar.date(from: DateComponents(year: 2020, month: 1, day: 31, hour: 12))!)
        #expect(expected.first == "old: expired, expired \(-days) days ago (2020-01-31)", "\(expected)")
        #expect(expected.dropFirst().first == "lapsed: expired, expired 3 days ago (\(ExpiryClock.localDate(Date().addingTimeInterval(-3 * 86_400))))")
        #expect(expected.last == "soon: expiring, expires in 3 days (\(ExpiryClock.localDate(Date().addingTimeInterval(3 * 86_400))))")

        // Only expired entries (no expiring one) are still 2.
        let lapsedOnly = try Sandbox()
        try await lapsedOnly.expiryVault([.lapsed, .yearly])
        let only = try await lapsedOnly.ks(["check"])
        #expect(only.status == 2, "\(only)")
        #expect(only.out == "lapsed: expired, expired 3 days ago (\(ExpiryClock.localDate(Date().addingTimeInterval(-3 * 86_400))))\n",
                "\(only)")
    }

    @Test("--within 1d narrows the window (0), --within 400d widens it to the 1-year entry (1)")
    func within() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.yearly, .soon, .forever])
        let narrow = try await sandbox.ks(["check", "--within", "1d"])
        #expect(narrow.status == 0, "\(narrow)")
        #expect(narrow.stdout.isEmpty && narrow.stderr.isEmpty, "\(narrow)")

        let wide = try await sandbox.ks(["check", "--within", "400d"])
        #expect(wide.status == 1, "\(wide)")
        let soonLine = try await line(sandbox, .soon)
        let yearlyLine = try await line(sandbox, .yearly, state: "expiring")
        #expect(outputLines(wide.out) == [soonLine, yearlyLine], "\(wide)")
        #expect(wide.stderr.isEmpty, "\(wide)")

        // The default is back without --within, and a bad window is a usage error, not a check result.
        let plain = try await sandbox.ks(["check"])
        #expect(plain.status == 1 && outputLines(plain.out) == [soonLine], "\(plain)")
        let bad = try await sandbox.ks(["check", "--within", "soon"])
        #expect(bad.status == 64, "\(bad)")
        #expect(bad.stdout.isEmpty, "\(bad)")
        #expect(bad.err == "keyseal: error: \"soon\" is not a duration\nkeyseal: hint: for example 7d, 2w, 36h or 1mo\n", "\(bad)")
    }

    @Test("--strict counts an entry that never expires (1), and never hides an expired one (2)")
    func strict() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.yearly, .forever])
        let strict = try await sandbox.ks(["check", "--strict"])
        #expect(strict.status == 1, "\(strict)")
        #expect(strict.out == "forever: never, never expires\n", "\(strict)")
        #expect(strict.stderr.isEmpty, "\(strict)")

        let json = try await sandbox.ks(["check", "--strict", "--json"])
        #expect(json.status == 1, "\(json)")
        let root = try jsonObject(json)
        #expect(root["strict"] as? Bool == true && root["status"] as? String == "expiring" && root["exit"] as? Int == 1, "\(json)")
        let entries = try #require(root["entries"] as? [[String: Any]], "\(json)")
        let forever = try #require(entries.first { $0["name"] as? String == "forever" }, "\(json)")
        #expect(forever["state"] as? String == "never" && forever["attention"] as? Bool == true, "\(json)")
        #expect(forever["expires"] is NSNull && forever["days_left"] is NSNull, "\(json)")

        try await sandbox.addExpiring(ExpiryEntry.old.name, secret: "x", options: ExpiryEntry.old.addOptions)
        let both = try await sandbox.ks(["check", "--strict"])
        #expect(both.status == 2, "\(both)")
        let oldLine = try await line(sandbox, .old)
        #expect(outputLines(both.out) == [oldLine, "forever: never, never expires"], "\(both)")
    }

    @Test("--quiet and -q print nothing and keep the status: 0, 1, 2", arguments: [
        ([ExpiryEntry.yearly, .forever], Int32(0)),
        ([ExpiryEntry.yearly, .soon, .forever], Int32(1)),
        (ExpiryEntry.allCases, Int32(2)),
    ])
    func quiet(_ entries: [ExpiryEntry], _ status: Int32) async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(entries)
        let loud = try await sandbox.ks(["check"])
        #expect(loud.status == status, "\(loud)")
        #expect(loud.stdout.isEmpty == (status == 0), "\(loud)")
        for flag in ["--quiet", "-q"] {
            let result = try await sandbox.ks(["check", flag])
            #expect(result.status == status, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
        }
    }

    @Test("--json parses, and its status, exit and entries agree with the exit status", arguments: [
        ([ExpiryEntry.yearly, .forever], Int32(0), "ok"),
        ([ExpiryEntry.yearly, .soon, .forever], Int32(1), "expiring"),
        (ExpiryEntry.allCases, Int32(2), "expired"),
    ])
    func json(_ entries: [ExpiryEntry], _ status: Int32, _ word: String) async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(entries)
        let listed = try await sandbox.listedEntries()
        let before = ExpiryClock.now()
        let result = try await sandbox.ks(["check", "--json"])
        #expect(result.status == status, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(result.out.hasSuffix("}\n") && outputLines(result.out).count == 1, "\(result)")
        let root = try jsonObject(result)
        #expect(root["status"] as? String == word, "\(result)")
        #expect(root["exit"] as? Int == Int(status), "\(result)")
        #expect(root["strict"] as? Bool == false, "\(result)")
        let checkedText = root["checked_at"] as? String ?? ""
        let checkedAt = try #require(ExpiryClock.parseUTC(checkedText), "\(result)")
        #expect(checkedAt >= before && checkedAt <= Date().addingTimeInterval(1), "\(result)")
        let reported = try #require(root["entries"] as? [[String: Any]], "\(result)")
        // Every entry, soonest first, those that never expire last.
        #expect(reported.compactMap { $0["name"] as? String } == ExpiryEntry.byExpiry.filter(entries.contains).map(\.name), "\(result)")
        for object in reported {
            let name = try #require(object["name"] as? String)
            let entry = try #require(ExpiryEntry(rawValue: name))
            #expect(object["state"] as? String == entry.state, "\(name): \(object)")
            #expect(object["attention"] as? Bool == (entry.state == "expiring" || entry.state == "expired"), "\(name): \(object)")
            let expires = listed[name]?["expires"]
            if entry == .forever {
                #expect(object["expires"] is NSNull && expires is NSNull, "\(name): \(object)")
                #expect(object["days_left"] is NSNull, "\(name): \(object)")
                #expect(object["message"] as? String == "never expires", "\(name): \(object)")
            } else {
                let text = try #require(object["expires"] as? String, "\(name): \(object)")
                #expect(text == expires as? String, "\(name): check says \(text), list says \(String(describing: expires))")
                let instant = try #require(ExpiryClock.parseUTC(text), "\(name): \(text)")
                #expect(object["days_left"] as? Int == ExpiryClock.daysLeft(instant), "\(name): \(object)")
                #expect(object["message"] as? String == ExpiryClock.describe(instant), "\(name): \(object)")
                #expect(((object["days_left"] as? Int ?? 0) < 0) == (entry.state == "expired"), "\(name): \(object)")
            }
        }
        // The overall status is the worst state among the entries.
        let states = Set(reported.compactMap { $0["state"] as? String })
        let worst = states.contains("expired") ? "expired" : states.contains("expiring") ? "expiring" : "ok"
        #expect(worst == word, "\(states)")
        if entries.contains(.old) {
            #expect(listed["old"]?["expires"] as? String == "2020-01-31T14:59:59Z", "\(listed)")
        }
    }

    @Test("check needs no passphrase at all, and leaves the vault byte for byte as it was")
    func noPassphraseNoChange() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        // The control: with no passphrase source, unlocking is impossible.
        let locked = try await sandbox.ksNoPassphrase(["header", "yearly"])
        #expect(locked.status == 77, "\(locked)")
        #expect(locked.stdout.isEmpty, "\(locked)")

        let before = try sandbox.snapshot(sandbox.work)
        var expectedLines: [String] = []
        for entry in [ExpiryEntry.old, .lapsed, .soon] { expectedLines.append(try await line(sandbox, entry)) }
        let plain = try await sandbox.ksNoPassphrase(["check"])
        #expect(plain.status == 2 && outputLines(plain.out) == expectedLines, "\(plain)")
        let json = try await sandbox.ksNoPassphrase(["check", "--json", "--within", "400d", "--strict"])
        let jsonRoot = try jsonObject(json)
        #expect(json.status == 2 && jsonRoot["exit"] as? Int == 2, "\(json)")
        let quiet = try await sandbox.ksNoPassphrase(["check", "--quiet"])
        #expect(quiet.status == 2 && quiet.stdout.isEmpty, "\(quiet)")
        for result in [plain, json, quiet] {
            #expect(result.stderr.isEmpty, "\(result)")
            #expect(!result.err.contains("assphrase"), "\(result)")
        }
        // Also through the vault's default location, with no KEYSEAL_VAULT and no --vault.
        let dataHome = sandbox.home + "/.local/share/keyseal"
        try FileManager.default.createDirectory(atPath: dataHome, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: sandbox.vault, toPath: dataHome + "/vault.db")
        let byDefault = try await sandbox.ksNoPassphrase(["check"], env: ["KEYSEAL_VAULT": nil])
        #expect(byDefault.status == 2 && byDefault.out == plain.out && byDefault.stderr.isEmpty, "\(byDefault)")

        let after = try sandbox.snapshot(sandbox.work)
        #expect(after.keys.sorted() == before.keys.sorted(), "files came or went: \(before.keys.sorted()) -> \(after.keys.sorted())")
        #expect(after == before, "check changed the vault's bytes")
    }

    @Test("a vault another writer keeps locked: 3 (the check failed), not 1, after the busy wait")
    func busyVault() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.soon])
        let locked = sandbox.root + "/locked"
        // python3 holds an exclusive lock until killed (with SIGKILL, which no
        // inherited signal mask blocks); check runs once it holds it.
        let script = #"""
            python3 -c 'import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN EXCLUSIVE")
            open(sys.argv[2], "w").close()
            time.sleep(20)' "$1" "$2" &
            holder=$!
            while [ ! -e "$2" ]; do kill -0 $holder 2>/dev/null || exit 99; sleep 0.02; done
            "$0" check "$3"
            status=$?
            kill -KILL $holder
            wait $holder 2>/dev/null
            exit $status
            """#
        // One run: each waits out the 5-second busy timeout.
        let result = try await sandbox.shell(script, [sandbox.vault, locked, "--json"], env: sandbox.expiryEnvironment())
        #expect(result.status == 3, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: the vault \(sandbox.vault) is locked"), "\(result)")
        let free = try await sandbox.ks(["check", "--quiet"])
        #expect(free.status == 1, "\(free)")
    }

    @Test("a missing vault is 66 and a damaged one 65, never 1, 2 or 3", arguments: ["", "--json", "--quiet"])
    func missingOrDamaged(_ flag: String) async throws {
        let sandbox = try Sandbox()
        let flags = flag.isEmpty ? [] : [flag]
        let missingPath = sandbox.work + "/no-such-vault.db"
        let missing = try await sandbox.ksNoPassphrase(["check"] + flags, env: ["KEYSEAL_VAULT": missingPath])
        #expect(missing.status == 66, "\(missing)")
        #expect(missing.stdout.isEmpty, "\(missing)")
        #expect(missing.err.hasPrefix("keyseal: error: no vault at \(missingPath)\n"), "\(missing)")
        #expect(!FileManager.default.fileExists(atPath: missingPath), "check created \(missingPath)")

        // A file of random bytes.
        var generator = SystemRandomNumberGenerator()
        let noise = Data((0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let randomPath = sandbox.work + "/random.db"
        try sandbox.write(noise, to: randomPath)
        let random = try await sandbox.ksNoPassphrase(["check"] + flags, env: ["KEYSEAL_VAULT": randomPath])
        #expect(random.status == 65, "\(random)")
        #expect(random.stdout.isEmpty, "\(random)")
        #expect(random.err.hasPrefix("keyseal: error: "), "\(random)")
        #expect(sandbox.bytes(randomPath) == noise, "check changed the damaged file")

        // A real vault whose pages after the first were overwritten with random bytes.
        try await sandbox.expiryVault([.soon, .old])
        var damaged = try #require(sandbox.bytes(sandbox.vault))
        try #require(damaged.count > 4096)
        damaged.replaceSubrange(4096..<damaged.count, with: (4096..<damaged.count).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try sandbox.write(damaged, to: sandbox.vault)
        let broken = try await sandbox.ksNoPassphrase(["check"] + flags)
        #expect(broken.status == 65, "\(broken)")
        #expect(broken.stdout.isEmpty, "\(broken)")
        #expect(broken.err.hasPrefix("keyseal: error: "), "\(broken)")
    }
}
