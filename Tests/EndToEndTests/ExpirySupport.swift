// Shared set-up for the expiry end-to-end tests (issue 4). The binary reads
// the real clock, so every entry is made relative to now: ok (1y), expiring
// (3d, inside the default 14-day window), expired (a past date, or a
// date-time with an offset three days ago) and never. Every run uses a fixed
// time zone that is not UTC and has no DST (Asia/Tokyo), so local dates differ
// from UTC ones, and the expected wording is worked out here with Foundation.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// MARK: The clock, as the tests see it

enum ExpiryClock {
    static let zoneName = "Asia/Tokyo"

    static var zone: TimeZone { TimeZone(identifier: zoneName)! }

    static var calendar: Foundation.Calendar {
        var calendar = Foundation.Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }

    /// Now, to the whole second (the CLI stores seconds).
    static func now() -> Date { Date(timeIntervalSince1970: floor(Date().timeIntervalSince1970)) }

    static func format(_ date: Date, _ pattern: String, zone: TimeZone = zone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.calendar = Foundation.Calendar(identifier: .gregorian)
        formatter.timeZone = zone
        formatter.dateFormat = pattern
        return formatter.string(from: date)
    }

    /// 2027-01-31, in the test zone.
    static func localDate(_ date: Date) -> String { format(date, "yyyy-MM-dd") }

    /// 2027-01-31T08:00:00Z, as `--json` prints instants.
    static func utc(_ date: Date) -> String { format(date, "yyyy-MM-dd'T'HH:mm:ss'Z'", zone: TimeZone(identifier: "UTC")!) }

    static func parseUTC(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return formatter.date(from: text)
    }

    /// Calendar days from today to the expiry's date, in the test zone.
    static func daysLeft(_ expires: Date, now: Date = now()) -> Int {
        let calendar = calendar
        return calendar.dateComponents([.day], from: calendar.startOfDay(for: now), to: calendar.startOfDay(for: expires)).day!
    }

    /// The wording the issue specifies: `expires in 3 days (2027-01-31)`,
    /// `expired 2 days ago (2027-01-29)`, `never expires`.
    static func describe(_ expires: Date?, now: Date = now()) -> String {
        guard let expires else { return "never expires" }
        let days = daysLeft(expires, now: now)
        let date = localDate(expires)
        let time = format(expires, "HH:mm")
        if expires > now {
            switch days {
            case 0: return "expires today at \(time)"
            case 1: return "expires tomorrow (\(date))"
            default: return "expires in \(days) days (\(date))"
            }
        }
        switch days {
        case 0: return "expired today at \(time)"
        case -1: return "expired yesterday (\(date))"
        default: return "expired \(-days) days ago (\(date))"
        }
    }

    /// An instant three days ago, written as a date-time with a +01:00
    /// offset, and the same instant as `--json` prints it.
    static let lapsed: (input: String, utc: String) = {
        let instant = now().addingTimeInterval(-3 * 86_400)
        let input = format(instant, "yyyy-MM-dd'T'HH:mm:ss", zone: TimeZone(secondsFromGMT: 3600)!) + "+01:00"
        return (input, utc(instant))
    }()
}

// MARK: The entries

/// One entry of each state; `rawValue` is its name. Sorted by name:
/// forever, lapsed, old, soon, yearly. By expiry: old, lapsed, soon, yearly,
/// forever.
enum ExpiryEntry: String, CaseIterable, Sendable {
    /// ok: expires in a year.
    case yearly
    /// expiring: in 3 days, inside the default 14-day window.
    case soon
    /// expired: the end of 2020-01-31 in the test zone.
    case old
    /// expired: a date-time with an offset, three days ago.
    case lapsed
    /// never: no --expires.
    case forever

    var name: String { rawValue }
    var secret: String { "tok-\(rawValue)-0123456789" }

    var addOptions: [String] {
        switch self {
        case .yearly: ["--expires", "1y"]
        case .soon: ["--expires", "3d"]
        case .old: ["--expires", "2020-01-31", "--allow-past"]
        case .lapsed: ["--expires", ExpiryClock.lapsed.input, "--allow-past"]
        case .forever: []
        }
    }

    /// The state under the default window.
    var state: String {
        switch self {
        case .yearly: "ok"
        case .soon: "expiring"
        case .old, .lapsed: "expired"
        case .forever: "never"
        }
    }

    /// The default header of a token: `Authorization: Bearer …`.
    var header: String { "Authorization: Bearer \(secret)" }

    static let byExpiry: [ExpiryEntry] = [.old, .lapsed, .soon, .yearly, .forever]
}

extension Sandbox {
    /// The environment of every expiry run: the test zone and the sandbox's
    /// vault (so `--vault` need not be placed among each command's arguments).
    func expiryEnvironment(_ env: [String: String?] = [:]) -> [String: String?] {
        ["TZ": ExpiryClock.zoneName, "KEYSEAL_VAULT": vault].merging(env) { $1 }
    }

    /// keyseal with the expiry environment.
    func ks(_ arguments: [String], stdin: String = "", env: [String: String?] = [:]) async throws -> RunResult {
        try await run(arguments, stdin: stdin, env: expiryEnvironment(env))
    }

    /// keyseal with no way at all to get a passphrase: no
    /// KEYSEAL_PASSPHRASE_FILE, no --passphrase-fd, no terminal.
    func ksNoPassphrase(_ arguments: [String], env: [String: String?] = [:]) async throws -> RunResult {
        try await ks(arguments, env: env.merging(["KEYSEAL_PASSPHRASE_FILE": nil]) { $1 })
    }

    /// `init`, then `add` for each entry (with `extra` options per name), all
    /// of which must succeed.
    func expiryVault(_ entries: [ExpiryEntry], extra: [ExpiryEntry: [String]] = [:]) async throws {
        try await initVault()
        for entry in entries {
            try await addExpiring(entry.name, secret: entry.secret, options: entry.addOptions + (extra[entry] ?? []))
        }
    }

    func addExpiring(_ name: String, secret: String, options: [String]) async throws {
        let result = try await ks(["add", name] + options, stdin: secret + "\n")
        try #require(result.status == 0, "add failed: \(result)")
    }

    /// `list --json`'s entries, by name; it must succeed.
    func listedEntries(_ arguments: [String] = []) async throws -> [String: [String: Any]] {
        let listed = try await ks(["list", "--json"] + arguments)
        try #require(listed.status == 0, "\(listed)")
        let root = try jsonObject(listed)
        let entries = try #require(root["entries"] as? [[String: Any]], "\(listed)")
        return Dictionary(uniqueKeysWithValues: entries.map { ($0["name"] as? String ?? "", $0) })
    }

    /// Each entry's expiry as `list --json` reports it (nil: never).
    func listedExpiries() async throws -> [String: Date?] {
        try await listedEntries().mapValues { entry in
            (entry["expires"] as? String).flatMap(ExpiryClock.parseUTC)
        }
    }

    /// What the CLI should say about `name` now, from its listed expiry.
    func expectedWording(_ name: String) async throws -> String {
        let expiries = try await listedExpiries()
        let expires = try #require(expiries[name], "no entry \(name) in \(expiries)")
        return ExpiryClock.describe(expires)
    }
}

func jsonObject(_ result: RunResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result)",
                 sourceLocation: sourceLocation)
}

/// The lines of `text` without the final empty one.
func outputLines(_ text: String) -> [String] {
    var lines = text.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    return lines
}

// MARK: Python

extension Sandbox {
    /// Runs `python3 -c code arguments…` in the work directory with the
    /// runner's environment; it must succeed. Returns its stdout.
    func pythonOutput(_ code: String, _ arguments: [String] = []) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", code] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: work)
        let outputPath = root + "/python-\(UUID().uuidString).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        let errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "python3 failed: \(String(decoding: message, as: UTF8.self))")
        return try Data(contentsOf: URL(fileURLWithPath: outputPath))
    }
}
