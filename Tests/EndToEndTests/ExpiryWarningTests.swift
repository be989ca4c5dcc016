// Warnings where a secret is used (issue 4): header, get, curl and run say
// one line on stderr for an expiring or expired entry, and nothing for an ok
// or never-expiring one; stdout stays exactly the data. --refuse-expired and
// the vault's refuse-expired setting turn an expired entry into exit 2,
// before any passphrase is asked for.
import Foundation
import Testing

/// A command that uses a secret, and what it prints on stdout for an entry.
struct SecretUse: Sendable, CustomTestStringConvertible {
    let label: String
    /// The arguments for entry `name`; `extra` goes before any `--`.
    let arguments: @Sendable (_ name: String, _ extra: [String]) -> [String]
    /// The exact stdout for entry `entry`.
    let stdout: @Sendable (_ entry: ExpiryEntry) -> String

    var testDescription: String { label }

    static let header = SecretUse(label: "header", arguments: { ["header", $0] + $1 }, stdout: { $0.header + "\n" })
    static let get = SecretUse(label: "get", arguments: { ["get", $0] + $1 }, stdout: { $0.secret + "\n" })
    static let run = SecretUse(
        label: "run",
        arguments: { ["run", "--env", "TOKEN=\($0)"] + $1 + ["--", "sh", "-c", #"printf '%s|' "$TOKEN"; : > ran"#] },
        stdout: { $0.secret + "|" })

    static let local: [SecretUse] = [.header, .get, .run]
}

/// The warning line for an entry that is expiring (or expired, `anyway`).
private func warning(_ name: String, _ wording: String, anyway: Bool = false) -> String {
    "keyseal: warning: \"\(name)\" \(wording)\(anyway ? "; using it anyway" : "")\n"
}

/// The refusal of an expired entry: an error, and a hint to rotate it.
private func refusal(_ name: String, _ wording: String) -> String {
    "keyseal: error: \"\(name)\" \(wording); refusing to use it\n"
        + "keyseal: hint: rotate it: keyseal rotate \(name) --expires 90d\n"
}

@Suite("warnings on stderr when an expiring or expired entry is used; stdout stays exact")
struct ExpiryWarningTests {
    @Test("one warning line for expiring and expired entries, none for ok or never; stdout exact; exit 0",
          arguments: SecretUse.local)
    func warnsOnUse(_ use: SecretUse) async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        for entry in ExpiryEntry.allCases {
            let ranMarker = sandbox.work + "/ran"
            try? FileManager.default.removeItem(atPath: ranMarker)
            let result = try await sandbox.ks(use.arguments(entry.name, []))
            #expect(result.status == 0, "\(result)")
            #expect(result.out == use.stdout(entry), "\(result)")
            let wording = try await sandbox.expectedWording(entry.name)
            switch entry.state {
            case "expiring":
                #expect(result.err == warning(entry.name, wording), "\(result)")
                #expect(wording == "expires in 3 days (\(ExpiryClock.localDate(Date().addingTimeInterval(3 * 86_400))))", "\(wording)")
            case "expired":
                #expect(result.err == warning(entry.name, wording, anyway: true), "\(result)")
                #expect(wording.hasPrefix("expired ") && wording.contains(" days ago ("), "\(wording)")
            default:
                #expect(result.stderr.isEmpty, "\(result)")
            }
            if use.label == "run" { #expect(FileManager.default.fileExists(atPath: ranMarker), "\(result)") }
        }
        // The old entry's wording names its local date.
        let oldWording = try await sandbox.expectedWording("old")
        #expect(oldWording.hasSuffix(" days ago (2020-01-31)"), "\(oldWording)")
    }

    @Test("--refuse-expired: 2, nothing on stdout, no passphrase asked, the command not run", arguments: SecretUse.local)
    func refuseFlag(_ use: SecretUse) async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault(ExpiryEntry.allCases)
        for entry in [ExpiryEntry.old, .lapsed] {
            let wording = try await sandbox.expectedWording(entry.name)
            // With the passphrase at hand, and with no way to get one at all.
            for result in [try await sandbox.ks(use.arguments(entry.name, ["--refuse-expired"])),
                           try await sandbox.ksNoPassphrase(use.arguments(entry.name, ["--refuse-expired"]))] {
                #expect(result.status == 2, "\(result)")
                #expect(result.stdout.isEmpty, "\(result)")
                #expect(result.err == refusal(entry.name, wording), "\(result)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: sandbox.work + "/ran"), "run's command ran")

        // An entry that is only expiring is still used, with its warning.
        let soon = try await sandbox.ks(use.arguments("soon", ["--refuse-expired"]))
        #expect(soon.status == 0 && soon.out == use.stdout(.soon), "\(soon)")
        let soonWording = try await sandbox.expectedWording("soon")
        #expect(soon.err == warning("soon", soonWording), "\(soon)")
        // And an ok one silently.
        let yearly = try await sandbox.ks(use.arguments("yearly", ["--refuse-expired"]))
        #expect(yearly.status == 0 && yearly.out == use.stdout(.yearly) && yearly.stderr.isEmpty, "\(yearly)")
    }

    @Test("config set refuse-expired true refuses without the flag; config unset refuse-expired restores",
          arguments: SecretUse.local)
    func refuseSetting(_ use: SecretUse) async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.old, .soon])
        let wording = try await sandbox.expectedWording("old")

        let set = try await sandbox.ksNoPassphrase(["config", "set", "refuse-expired", "true"])
        #expect(set.status == 0 && set.stdout.isEmpty && set.err == "keyseal: refuse-expired = true\n", "\(set)")
        let shown = try await sandbox.ks(["config", "get", "refuse-expired"])
        #expect(shown.status == 0 && shown.out == "true\n", "\(shown)")

        for result in [try await sandbox.ks(use.arguments("old", [])), try await sandbox.ksNoPassphrase(use.arguments("old", []))] {
            #expect(result.status == 2, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err == refusal("old", wording), "\(result)")
        }
        #expect(!FileManager.default.fileExists(atPath: sandbox.work + "/ran"), "run's command ran")
        let soon = try await sandbox.ks(use.arguments("soon", []))
        #expect(soon.status == 0 && soon.out == use.stdout(.soon), "\(soon)")

        // false is as good as unset.
        let off = try await sandbox.ks(["config", "set", "refuse-expired", "false"])
        #expect(off.status == 0, "\(off)")
        let allowed = try await sandbox.ks(use.arguments("old", []))
        #expect(allowed.status == 0 && allowed.out == use.stdout(.old), "\(allowed)")

        let again = try await sandbox.ks(["config", "set", "refuse-expired", "true"])
        #expect(again.status == 0, "\(again)")
        let unset = try await sandbox.ksNoPassphrase(["config", "unset", "refuse-expired"])
        #expect(unset.status == 0 && unset.stdout.isEmpty && unset.err == "keyseal: refuse-expired = false (default)\n", "\(unset)")
        let restored = try await sandbox.ks(use.arguments("old", []))
        #expect(restored.status == 0, "\(restored)")
        #expect(restored.out == use.stdout(.old), "\(restored)")
        #expect(restored.err == warning("old", wording, anyway: true), "\(restored)")
        let shownAgain = try await sandbox.ks(["config", "get", "refuse-expired"])
        #expect(shownAgain.out == "false\n", "\(shownAgain)")
    }

    @Test("run with several entries: one warning line per entry, even when one entry fills two variables")
    func runWarnsOncePerEntry() async throws {
        let sandbox = try Sandbox()
        try await sandbox.expiryVault([.soon, .old, .yearly])
        let soonWarning = warning("soon", try await sandbox.expectedWording("soon"))
        let oldWarning = warning("old", try await sandbox.expectedWording("old"), anyway: true)
        let printBoth = ["--", "sh", "-c", #"printf '%s|%s' "$A" "$B""#]

        let two = try await sandbox.ks(["run", "--env", "A=soon", "--env", "B=old"] + printBoth)
        #expect(two.status == 0 && two.out == "\(ExpiryEntry.soon.secret)|\(ExpiryEntry.old.secret)", "\(two)")
        #expect(two.err == soonWarning + oldWarning, "\(two)")

        let okAndSoon = try await sandbox.ks(["run", "--env", "A=yearly", "--env", "B=soon"] + printBoth)
        #expect(okAndSoon.status == 0 && okAndSoon.err == soonWarning, "\(okAndSoon)")

        // One entry in two variables is one use of one entry: one warning.
        let twice = try await sandbox.ks(["run", "--env", "A=soon", "--env", "B=soon"] + printBoth)
        #expect(twice.status == 0 && twice.out == "\(ExpiryEntry.soon.secret)|\(ExpiryEntry.soon.secret)", "\(twice)")
        #expect(twice.err == soonWarning, "the same warning more than once: \(twice)")
    }

    @Test("keyseal curl: the warning on stderr, the header still reaches the server; refused: the server hears nothing")
    func curlWarnsAndRefuses() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        try await sandbox.initVault()
        for entry in ExpiryEntry.allCases {
            try await sandbox.addExpiring(entry.name, secret: entry.secret, options: entry.addOptions + ["--url", server.origin])
        }
        func curl(_ arguments: [String], noPassphrase: Bool = false) async throws -> RunResult {
            let env = curlEnvironment.merging(noPassphrase ? ["KEYSEAL_PASSPHRASE_FILE": nil] : [:]) { $1 }
            return try await sandbox.ks(["curl"] + arguments, env: env)
        }

        var expectedPaths: [String] = []
        for entry in ExpiryEntry.allCases {
            let result = try await curl([entry.name, "/\(entry.name)", "--", "-sS"])
            expectedPaths.append("/\(entry.name)")
            #expect(result.status == 0, "\(result)")
            #expect(result.out == LoopbackServer.responseBody, "\(result)")
            let wording = try await sandbox.expectedWording(entry.name)
            switch entry.state {
            case "expiring": #expect(result.err == warning(entry.name, wording), "\(result)")
            case "expired": #expect(result.err == warning(entry.name, wording, anyway: true), "\(result)")
            default: #expect(result.stderr.isEmpty, "\(result)")
            }
        }
        var requests = try server.requests()
        #expect(requests.map(\.path) == expectedPaths, "\(requests)")
        for (request, entry) in zip(requests, ExpiryEntry.allCases) {
            #expect(request.headers(named: "Authorization").map(\.text) == ["Bearer \(entry.secret)"], "\(request)")
        }

        // Refused: by the flag, and by the setting, with or without a passphrase source.
        let wording = try await sandbox.expectedWording("old")
        var refused = [try await curl(["old", "/refused", "--refuse-expired", "--", "-sS"]),
                       try await curl(["old", "/refused", "--refuse-expired", "--", "-sS"], noPassphrase: true)]
        let set = try await sandbox.ks(["config", "set", "refuse-expired", "true"])
        #expect(set.status == 0, "\(set)")
        refused.append(try await curl(["old", "/refused", "--", "-sS"], noPassphrase: true))
        for result in refused {
            #expect(result.status == 2, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err == refusal("old", wording), "\(result)")
        }
        requests = try server.requests()
        #expect(requests.map(\.path) == expectedPaths, "the server heard a refused request: \(requests)")

        // Unset, the expired entry is used again.
        let unset = try await sandbox.ks(["config", "unset", "refuse-expired"])
        #expect(unset.status == 0, "\(unset)")
        let restored = try await curl(["old", "/restored", "--", "-sS"])
        #expect(restored.status == 0 && restored.out == LoopbackServer.responseBody, "\(restored)")
        #expect(restored.err == warning("old", wording, anyway: true), "\(restored)")
        let lastPath = try server.requests().last?.path
        #expect(lastPath == "/restored")
    }

    @Test("keyseal header EXPIRING | curl -H @- URL: the warning does not break the pipe; the header arrives")
    func pipeStillDelivers() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        try await sandbox.expiryVault([.soon, .old])
        var delivered: [String: RunResult] = [:]
        for entry in [ExpiryEntry.soon, .old] {
            delivered[entry.name] = try await sandbox.shell(
                #"{ "$0" header "$1"; echo "header exited $?" >&2; } | curl -sS -H @- "$2""#,
                [entry.name, server.origin + "/piped-\(entry.name)"], env: sandbox.expiryEnvironment(curlEnvironment))
        }
        let soon = try #require(delivered["soon"])
        #expect(soon.status == 0, "\(soon)")
        #expect(soon.out == LoopbackServer.responseBody, "\(soon)")
        let soonWording = try await sandbox.expectedWording("soon")
        let oldWording = try await sandbox.expectedWording("old")
        #expect(soon.err == warning("soon", soonWording) + "header exited 0\n", "\(soon)")
        let old = try #require(delivered["old"])
        #expect(old.status == 0 && old.out == LoopbackServer.responseBody, "\(old)")
        #expect(old.err == warning("old", oldWording, anyway: true) + "header exited 0\n", "\(old)")

        let requests = try server.requests()
        #expect(requests.map(\.path) == ["/piped-soon", "/piped-old"], "\(requests)")
        #expect(requests.first?.headers(named: "Authorization").map(\.value) == [Data("Bearer \(ExpiryEntry.soon.secret)".utf8)],
                "\(requests)")
        #expect(requests.last?.headers(named: "Authorization").map(\.value) == [Data("Bearer \(ExpiryEntry.old.secret)".utf8)],
                "\(requests)")
    }
}
