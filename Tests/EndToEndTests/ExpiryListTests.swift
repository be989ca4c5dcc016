// `keyseal list` and `keyseal show` with expiry states (issue 4): the default
// order by expiry, the STATE and DAYS columns, --sort name, --expiring
// [WITHIN], --json, and colour only on a terminal without NO_COLOR.
import Foundation
import Testing

@Suite("list and show: expiry order, states, days left, JSON and colour")
struct ExpiryListTests {
    /// The table's rows (header first) split into cells; no cell here holds a space.
    private func table(_ result: RunResult) -> [[String]] {
        outputLines(result.out).map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
    }

    /// What each entry's row must hold in the STATE, EXPIRES and DAYS columns.
    private func expectedColumns(_ sandbox: Sandbox) async throws -> [String: [String]] {
        let expiries = try await sandbox.listedExpiries()
        var columns: [String: [String]] = [:]
        for (name, expires) in expiries {
            let state = ExpiryEntry(rawValue: name)?.state ?? "?"
            columns[name] = [state, expires.map(ExpiryClock.localDate) ?? "never", expires.map { String(ExpiryClock.daysLeft($0)) } ?? "-"]
        }
        return columns
    }

    @Test("the table: sorted by expiry (expired first, never last), STATE and DAYS columns, no escape bytes off a terminal")
    func defaultTable() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        let result = try await sandbox.ks(["list"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(!result.stdout.contains("\u{1B}"), "escape bytes without a terminal: \(result)")
        let rows = table(result)
        try #require(rows.count == 6, "\(result)")
        #expect(rows[0] == ["NAME", "KIND", "STATE", "EXPIRES", "DAYS", "LAST-USED", "FINGERPRINT", "DESCRIPTION"], "\(result)")
        #expect(rows.dropFirst().map { $0.first ?? "" } == ExpiryEntry.byExpiry.map(\.name), "\(result)")
        let expected = try await expectedColumns(sandbox)
        for row in rows.dropFirst() {
            try #require(row.count == 7, "\(row)")
            #expect(row[1] == "token", "\(row)")
            #expect(Array(row[2...4]) == expected[row[0]], "\(row): expected \(expected[row[0]] ?? [])")
            #expect(row[5] == "never", "\(row)")
            #expect(row[6].count == 12 && row[6].allSatisfy(\.isHexDigit), "\(row)")
        }
        // The values themselves, as the issue describes them.
        let byName = Dictionary(uniqueKeysWithValues: rows.dropFirst().map { ($0[0], $0) })
        #expect(byName["old"]?[3] == "2020-01-31", "\(result)")
        #expect(Int(byName["old"]?[4] ?? "") ?? 0 < -2000, "\(result)")
        #expect(byName["lapsed"]?[4] == "-3", "\(result)")
        #expect(byName["soon"]?[4] == "3", "\(result)")
        #expect(["365", "366"].contains(byName["yearly"]?[4] ?? ""), "\(result)")
        #expect(byName["forever"]?[3] == "never" && byName["forever"]?[4] == "-", "\(result)")
        // ls is list.
        let aliased = try await sandbox.ks(["ls"])
        #expect(aliased.status == 0 && aliased.stdout == result.stdout, "\(aliased)")
    }

    @Test("--sort name orders by name, with the same rows")
    func sortByName() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        let byExpiry = try await sandbox.ks(["list"])
        let byName = try await sandbox.ks(["list", "--sort", "name"])
        #expect(byName.status == 0 && byName.stderr.isEmpty, "\(byName)")
        let rows = table(byName)
        #expect(rows.first?.first == "NAME", "\(byName)")
        #expect(rows.dropFirst().map { $0.first ?? "" } == ExpiryEntry.allCases.map(\.name).sorted(), "\(byName)")
        #expect(Set(outputLines(byName.out)) == Set(outputLines(byExpiry.out)), "\(byExpiry)\n\(byName)")
        let json = try await sandbox.ks(["list", "--json", "--sort", "name"])
        let jsonRoot = try jsonObject(json)
        let names = try #require(jsonRoot["entries"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        #expect(names == ExpiryEntry.allCases.map(\.name).sorted(), "\(json)")
        let bad = try await sandbox.ks(["list", "--sort", "size"])
        #expect(bad.status == 64 && bad.stdout.isEmpty, "\(bad)")
    }

    @Test("--expiring shows only expiring and expired entries; --expiring 400d and --expiring --within 400d add the 1-year one")
    func expiringFilter() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        let expiring = try await sandbox.ks(["list", "--expiring"])
        #expect(expiring.status == 0 && expiring.stderr.isEmpty, "\(expiring)")
        #expect(table(expiring).dropFirst().map { $0.first ?? "" } == ["old", "lapsed", "soon"], "\(expiring)")

        for arguments in [["list", "--expiring", "400d"], ["list", "--expiring", "--within", "400d"], ["list", "--expiring=400d"],
                          ["ls", "--expiring", "400d"]] {
            let wide = try await sandbox.ks(arguments)
            #expect(wide.status == 0 && wide.stderr.isEmpty, "\(wide)")
            let rows = table(wide).dropFirst()
            #expect(rows.map { $0.first ?? "" } == ["old", "lapsed", "soon", "yearly"], "\(wide)")
            #expect(rows.last?[2] == "expiring", "the 1-year entry is expiring within 400d: \(wide)")
        }
        // --within alone changes the states but filters nothing.
        let within = try await sandbox.ks(["list", "--within", "400d"])
        #expect(table(within).dropFirst().map { $0[2] } == ["expired", "expired", "expiring", "expiring", "never"], "\(within)")
        // A narrow window leaves only the expired entries.
        let narrow = try await sandbox.ks(["list", "--expiring", "1d"])
        #expect(table(narrow).dropFirst().map { $0.first ?? "" } == ["old", "lapsed"], "\(narrow)")

        let json = try await sandbox.ks(["list", "--json", "--expiring"])
        let jsonRoot = try jsonObject(json)
        let entries = try #require(jsonRoot["entries"] as? [[String: Any]], "\(json)")
        #expect(entries.compactMap { $0["name"] as? String } == ["old", "lapsed", "soon"], "\(json)")
    }

    @Test("--json: state, days_left and the exact instant in UTC")
    func json() async throws {
        let sandbox = try Sandbox()
        let before = ExpiryClock.now()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        let after = ExpiryClock.now()
        let result = try await sandbox.ks(["list", "--json"])
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
        #expect(!result.stdout.contains("\u{1B}"), "\(result)")
        let root = try jsonObject(result)
        #expect(root["vault"] as? String == sandbox.vault, "\(result)")
        let entries = try #require(root["entries"] as? [[String: Any]], "\(result)")
        #expect(entries.compactMap { $0["name"] as? String } == ExpiryEntry.byExpiry.map(\.name), "\(result)")
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0["name"] as? String ?? "", $0) })
        for entry in ExpiryEntry.allCases {
            let object = try #require(byName[entry.name])
            #expect(Set(documentedEntryKeys).isSubset(of: object.keys), "\(object)")
            #expect(object["state"] as? String == entry.state, "\(object)")
        }
        // A date means the end of that day in the user's zone (UTC+9): 14:59:59Z.
        #expect(byName["old"]?["expires"] as? String == "2020-01-31T14:59:59Z", "\(result)")
        // A date-time with an offset is kept to the second, in UTC.
        #expect(byName["lapsed"]?["expires"] as? String == ExpiryClock.lapsed.utc, "\(result)")
        #expect(byName["lapsed"]?["days_left"] as? Int == -3, "\(result)")
        #expect(byName["soon"]?["days_left"] as? Int == 3, "\(result)")
        #expect(byName["forever"]?["expires"] is NSNull && byName["forever"]?["days_left"] is NSNull, "\(result)")
        // Durations count from when the entry was added.
        let soon = try #require(ExpiryClock.parseUTC(byName["soon"]?["expires"] as? String ?? ""), "\(result)")
        #expect(soon >= before.addingTimeInterval(3 * 86_400) && soon <= after.addingTimeInterval(3 * 86_400), "\(soon)")
        let yearly = try #require(ExpiryClock.parseUTC(byName["yearly"]?["expires"] as? String ?? ""), "\(result)")
        let aYear = ExpiryClock.calendar.date(byAdding: .year, value: 1, to: before)!
        #expect(yearly >= aYear && yearly <= ExpiryClock.calendar.date(byAdding: .year, value: 1, to: after)!, "\(yearly)")
        for (name, object) in byName {
            if let text = object["expires"] as? String {
                let instant = try #require(ExpiryClock.parseUTC(text), "\(name): \(text)")
                #expect(ExpiryClock.utc(instant) == text, "\(name): \(text) is not YYYY-MM-DDTHH:MM:SSZ")
                #expect(object["days_left"] as? Int == ExpiryClock.daysLeft(instant), "\(name): \(object)")
            }
        }
    }

    @Test("on a terminal the STATE column is coloured (red for expired), and not when NO_COLOR is set")
    func colourOnTerminal() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        let command = "'\(sandbox.keyseal)' list"
        let coloured = try await sandbox.spawn("/usr/bin/script", ["-qec", command, "/dev/null"], stdin: Data(),
                                               env: sandbox.expiryEnvironment(["TERM": "xterm", "NO_COLOR": nil]),
                                               label: ["script -qec", command])
        #expect(coloured.status == 0, "\(coloured)")
        let lines = coloured.out.components(separatedBy: "\r\n")
        let oldRow = try #require(lines.first { $0.hasPrefix("old ") }, "\(coloured)")
        #expect(oldRow.contains("  \u{1B}[31mexpired\u{1B}[0m  "), "no red expired state: \(oldRow.debugDescription)")
        let soonRow = try #require(lines.first { $0.hasPrefix("soon ") }, "\(coloured)")
        #expect(soonRow.contains("\u{1B}[33mexpiring\u{1B}[0m"), "\(soonRow.debugDescription)")
        let yearlyRow = try #require(lines.first { $0.hasPrefix("yearly ") }, "\(coloured)")
        #expect(yearlyRow.contains("\u{1B}[32mok\u{1B}[0m"), "\(yearlyRow.debugDescription)")
        let neverRow = try #require(lines.first { $0.hasPrefix("forever ") }, "\(coloured)")
        #expect(!neverRow.contains("\u{1B}"), "\(neverRow.debugDescription)")
        // The colour codes do not shift the columns: without them the table is the plain one.
        let plain = try await sandbox.ks(["list"])
        var stripped = coloured.out.replacingOccurrences(of: "\r\n", with: "\n")
        for code in ["31", "32", "33", "0"] { stripped = stripped.replacingOccurrences(of: "\u{1B}[\(code)m", with: "") }
        #expect(stripped == plain.out, "\(stripped)\n\(plain.out)")

        let noColor = try await sandbox.spawn("/usr/bin/script", ["-qec", command, "/dev/null"], stdin: Data(),
                                              env: sandbox.expiryEnvironment(["TERM": "xterm", "NO_COLOR": "1"]),
                                              label: ["NO_COLOR=1 script -qec", command])
        #expect(noColor.status == 0, "\(noColor)")
        #expect(noColor.out.contains("expired"), "\(noColor)")
        #expect(!noColor.stdout.contains("\u{1B}"), "escape bytes with NO_COLOR=1: \(noColor.out.debugDescription)")
        #expect(noColor.out.replacingOccurrences(of: "\r\n", with: "\n") == plain.out, "\(noColor)")
    }

    @Test("show prints state: and warn within: lines; show --json has state and days_left")
    func show() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        for entry in ExpiryEntry.allCases {
            let wording = try await sandbox.expectedWording(entry.name)
            let result = try await sandbox.ksNoPassphrase(["show", entry.name])
            #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
            let lines = outputLines(result.out)
            #expect(lines.contains("state:        \(entry.state): \(wording)"), "\(result)")
            #expect(lines.contains("warn within:  the vault's window"), "\(result)")

            let json = try await sandbox.ksNoPassphrase(["show", entry.name, "--json"])
            #expect(json.status == 0 && json.stderr.isEmpty, "\(json)")
            let object = try jsonObject(json)
            #expect(object["state"] as? String == entry.state, "\(json)")
            #expect(object["warn_within"] is NSNull, "\(json)")
            if let expires = (object["expires"] as? String).flatMap(ExpiryClock.parseUTC) {
                #expect(object["days_left"] as? Int == ExpiryClock.daysLeft(expires), "\(json)")
            } else {
                #expect(entry == .forever && object["days_left"] is NSNull, "\(json)")
            }
        }
        let foreverWording = try await sandbox.expectedWording("forever")
        #expect(foreverWording == "never expires")

        let edited = try await sandbox.ksNoPassphrase(["edit", "soon", "--warn-within", "36h"])
        #expect(edited.status == 0, "\(edited)")
        let shown = try await sandbox.ks(["show", "soon"])
        #expect(outputLines(shown.out).contains("warn within:  36h"), "\(shown)")
        let soonWording = try await sandbox.expectedWording("soon")
        #expect(outputLines(shown.out).contains("state:        ok: \(soonWording)"), "\(shown)")
        let json = try await sandbox.ks(["show", "soon", "--json"])
        let object = try jsonObject(json)
        #expect(object["warn_within"] as? Int == 36 * 3600 && object["state"] as? String == "ok", "\(json)")
        #expect(object["days_left"] as? Int == 3, "\(json)")
    }
}
