// `list`, `list --json`, `check` and `check --json` write their answer as
// bytes, in chunks (issue 9: speed at 100,000 entries). These tests render
// random entry sets with the new code and with a copy of the code it
// replaced (the Reference types below, as they were before the change), and
// require the same bytes: names and descriptions with non-ASCII, combining
// marks, emoji, controls and format characters, every kind, kept tokens,
// remote states, and expiries past, near, far, absent and out of the
// four-digit years, in zones with and without DST.
import Foundation
import Testing
@testable import keyseal
@testable import Policy
@testable import Sealing
@testable import Storage

// MARK: - The code before the change, kept as the reference

enum ReferenceTextTable {
    static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate:
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func render(_ rows: [[String]], styles: [[String?]] = []) -> String {
        guard let columns = rows.first?.count else { return "" }
        let widths = (0..<columns).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().map { rowIndex, row in
            row.enumerated().map { column, cell in
                let styled = (rowIndex < styles.count ? styles[rowIndex][column] : nil).map { $0 + cell + Colour.reset } ?? cell
                return column == columns - 1 ? styled : styled + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ").referenceTrimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    func referenceTrimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}

indirect enum ReferenceJSON {
    case string(String)
    case number(Int64)
    case bool(Bool)
    case null
    case array([ReferenceJSON])
    case object([(String, ReferenceJSON)])

    static func optional(_ value: String?) -> ReferenceJSON { value.map(ReferenceJSON.string) ?? .null }

    var rendered: String {
        switch self {
        case let .string(text): Self.quote(text)
        case let .number(value): String(value)
        case let .bool(value): value ? "true" : "false"
        case .null: "null"
        case let .array(items): "[" + items.map(\.rendered).joined(separator: ",") + "]"
        case let .object(pairs): "{" + pairs.map { Self.quote($0.0) + ":" + $0.1.rendered }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
                || scalar.properties.generalCategory == .format
                || scalar.properties.generalCategory == .lineSeparator
                || scalar.properties.generalCategory == .paragraphSeparator:
                for unit in String(scalar).utf16 {
                    let hex = String(unit, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

enum ReferenceTimestamp {
    static func iso8601(_ seconds: Int64) -> String {
        let (days, secondOfDay) = Timestamp.floorDivide(seconds, 86_400)
        let (year, month, day) = Timestamp.civil(fromDays: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    static func date(_ seconds: Int64) -> String {
        String(iso8601(seconds).prefix(while: { $0 != "T" }))
    }

    static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    static func localDate(_ seconds: Int64, in zone: LocalZone) -> String {
        date(seconds + zone.utcOffset(at: seconds))
    }
}

/// `ExpiryPolicy.describe(expiresAt:)` as it was.
func referenceDescribe(_ policy: ExpiryPolicy, expiresAt: Int64?) -> String {
    guard let expiresAt else { return "never expires" }
    let zone = policy.zone
    let days = policy.daysLeft(until: expiresAt)
    let date = ReferenceTimestamp.localDate(expiresAt, in: zone)
    let local = LocalCalendar.local(expiresAt, in: zone)
    let time = "\(ReferenceTimestamp.pad(local.hour, 2)):\(ReferenceTimestamp.pad(local.minute, 2))"
    if expiresAt > policy.now {
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

/// `ExpiryReport.describe(_:state:)` as it was.
func referenceMessage(_ entry: EntryMetadata, state: ExpiryState, policy: ExpiryPolicy) -> String {
    guard state == .revoked, let remote = entry.remoteState else { return referenceDescribe(policy, expiresAt: entry.fields.expiresAt) }
    return switch remote {
    case .revoked: "was revoked on its server (keyseal pat revoke --keep)"
    case .inactive: "is no longer active on its server (keyseal pat sync)"
    case .missing: "is gone from its server's list (keyseal pat sync)"
    case .active: referenceDescribe(policy, expiresAt: entry.fields.expiresAt)
    }
}

enum ReferenceEntryJSON {
    static func object(_ entry: EntryMetadata, state: ExpiryState, policy: ExpiryPolicy,
                       previous: [PreviousValue]? = nil, extras: [(String, ReferenceJSON)] = []) -> ReferenceJSON {
        var pairs: [(String, ReferenceJSON)] = [
            ("name", .string(entry.name)),
            ("kind", .string(entry.fields.kind)),
            ("header_template", .string(entry.fields.headerTemplate)),
            ("url", .optional(entry.fields.url)),
            ("description", .string(entry.fields.description)),
            ("created", .string(ReferenceTimestamp.iso8601(entry.createdAt))),
            ("updated", .string(ReferenceTimestamp.iso8601(entry.updatedAt))),
            ("expires", .optional(entry.fields.expiresAt.map(ReferenceTimestamp.iso8601))),
            ("last_used", .optional(entry.lastUsedAt.map(ReferenceTimestamp.iso8601))),
            ("fingerprint", .string(entry.fingerprintHex)),
            ("state", .string(state.rawValue)),
            ("days_left", entry.fields.expiresAt.map { .number(policy.daysLeft(until: $0)) } ?? .null),
            ("warn_within", entry.warnWithin.map(ReferenceJSON.number) ?? .null),
        ]
        pairs += extras
        if let previous {
            pairs.append(("previous", .array(previous.map { value in
                .object([
                    ("version", .number(value.version)),
                    ("replaced", .string(ReferenceTimestamp.iso8601(value.replacedAt))),
                    ("fingerprint", .string(value.fingerprintHex)),
                ])
            })))
        }
        return .object(pairs)
    }

    /// As it was, with the kept token's time given (the vault read it per entry).
    static func extras(_ entry: EntryMetadata, obtainedAt: Int64?) -> [(String, ReferenceJSON)] {
        var pairs: [(String, ReferenceJSON)] = []
        if entry.fields.kind == CredentialKind.bearer.rawValue {
            pairs.append(("token_obtained", .optional(obtainedAt.map { ReferenceTimestamp.iso8601($0) })))
            pairs.append(("max_age", entry.maxAge.map(ReferenceJSON.number) ?? .null))
        }
        if let remoteID = entry.remoteID {
            pairs.append(("token_id", .string(remoteID)))
            pairs.append(("remote_state", .optional(entry.remoteState?.rawValue)))
        }
        return pairs
    }

    /// The old per-entry reads: the entry again by name, then its kept token.
    static func obtainedAt(_ entry: EntryMetadata, in vault: Vault) throws -> Int64? {
        guard entry.fields.kind == CredentialKind.bearer.rawValue else { return nil }
        return try vault.keptToken(of: try vault.sealedEntry(named: entry.name))?.obtainedAt
    }
}

enum ReferenceList {
    typealias Row = (entry: EntryMetadata, state: ExpiryState)

    static func rows(_ entries: [EntryMetadata], states: [ExpiryState], expiring: Bool, sort: ListOrder) -> [Row] {
        var rows: [Row] = Array(zip(entries, states)).map { ($0.0, $0.1) }
        if expiring { rows = rows.filter { $0.state == .expiring || $0.state == .expired || $0.state == .revoked } }
        if sort == .expiry {
            rows.sort { a, b in
                switch (a.entry.fields.expiresAt, b.entry.fields.expiresAt) {
                case let (x?, y?) where x != y: return x < y
                case (nil, _?): return false
                case (_?, nil): return true
                default: return a.entry.name < b.entry.name
                }
            }
        }
        return rows
    }

    static func json(_ rows: [Row], vault: String, policy: ExpiryPolicy, obtainedAt: (EntryMetadata) throws -> Int64?) rethrows -> String {
        ReferenceJSON.object([
            ("vault", .string(vault)),
            ("checked_at", .string(ReferenceTimestamp.iso8601(policy.now))),
            ("entries", .array(try rows.map { row in
                ReferenceEntryJSON.object(row.entry, state: row.state, policy: policy,
                                          extras: ReferenceEntryJSON.extras(row.entry, obtainedAt: try obtainedAt(row.entry)))
            })),
        ]).rendered + "\n"
    }

    static func table(_ rows: [Row], policy: ExpiryPolicy, colour: Bool) -> String {
        let header = ["NAME", "KIND", "STATE", "EXPIRES", "DAYS", "LAST-USED", "FINGERPRINT", "DESCRIPTION"]
        let cells = rows.map { row in
            let entry = row.entry
            return [
                entry.name, entry.fields.kind, row.state.rawValue,
                entry.fields.expiresAt.map { ReferenceTimestamp.localDate($0, in: policy.zone) } ?? "never",
                entry.fields.expiresAt.map { String(policy.daysLeft(until: $0)) } ?? "-",
                entry.lastUsedAt.map { ReferenceTimestamp.localDate($0, in: policy.zone) } ?? "never",
                String(entry.fingerprintHex.prefix(12)), entry.fields.description,
            ].map(ReferenceTextTable.printable)
        }
        let styles: [[String?]] = [Array(repeating: nil, count: header.count)] + rows.map { row in
            var style = [String?](repeating: nil, count: header.count)
            if colour { style[2] = Colour.code(for: row.state) }
            return style
        }
        return ReferenceTextTable.render([header] + cells, styles: styles)
    }
}

enum ReferenceCheck {
    typealias Result = (entry: EntryMetadata, state: ExpiryState, attention: Bool)

    static func results(_ entries: [EntryMetadata], states: [ExpiryState], strict: Bool) -> [Result] {
        var results: [Result] = []
        for (entry, state) in zip(entries, states) {
            let attention = state == .expired || state == .revoked || state == .expiring || (strict && state == .never)
            results.append((entry, state, attention))
        }
        results.sort { ($0.entry.fields.expiresAt ?? .max, $0.entry.name) < ($1.entry.fields.expiresAt ?? .max, $1.entry.name) }
        return results
    }

    static func status(_ results: [Result]) -> keyseal.ExitStatus {
        results.contains { $0.state == .expired || $0.state == .revoked } ? .expired
            : results.contains { $0.attention } ? .failure : .success
    }

    static func json(_ results: [Result], strict: Bool, report: ExpiryReport) -> String {
        let status = status(results)
        return ReferenceJSON.object([
            ("status", .string(status == .expired ? "expired" : status == .failure ? "expiring" : "ok")),
            ("exit", .number(Int64(status.rawValue))),
            ("checked_at", .string(ReferenceTimestamp.iso8601(report.policy.now))),
            ("strict", .bool(strict)),
            ("entries", .array(results.map { result in
                .object([
                    ("name", .string(result.entry.name)),
                    ("state", .string(result.state.rawValue)),
                    ("attention", .bool(result.attention)),
                    ("expires", .optional(result.entry.fields.expiresAt.map(ReferenceTimestamp.iso8601))),
                    ("days_left", result.entry.fields.expiresAt.map { .number(report.policy.daysLeft(until: $0)) } ?? .null),
                    ("message", .string(referenceMessage(result.entry, state: result.state, policy: report.policy))),
                ])
            })),
        ]).rendered + "\n"
    }

    static func lines(_ results: [Result], report: ExpiryReport) -> String {
        var text = ""
        for result in results where result.attention {
            let name = ReferenceTextTable.printable(result.entry.name)
            text += "\(name): \(result.state.rawValue), \(referenceMessage(result.entry, state: result.state, policy: report.policy))\n"
        }
        return text
    }
}

// MARK: - Random entry sets

/// A zone whose offset changes every so often (a made-up DST, with the
/// change at odd seconds so dates near midnight move), east or west of UTC.
struct SteppedZone: LocalZone {
    let base: Int64
    let step: Int64
    let period: Int64
    func utcOffset(at utc: Int64) -> Int64 {
        Timestamp.floorDivide(utc, period).0 % 2 == 0 ? base : base + step
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum RandomEntries {
    /// Pieces text is made of: the plain and the awkward.
    static let pieces: [String] = [
        "svc", "api", "-", "_", ".", " ", "  ", "0", "42", "Zürich", "café", "cafe\u{301}", "e\u{301}", "\u{301}", "日本語",
        "👩‍💻", "🇩🇪", "🏳️‍🌈", "\u{202E}", "\u{200B}", "\u{200D}", "\u{FEFF}", "\u{2028}", "\u{2029}", "\u{85}", "\u{7F}",
        "\u{1B}[31m", "\t", "\n", "\r\n", "\r", "\u{0}", "\"", "\\", "\\u{41}", "\u{E0041}", "\u{0D4E}", "\u{0D4E} ", "\u{0600}",
        "\u{111C2} ", "ﬁ", "Å", "A\u{30A}", "\u{1100}\u{1161}\u{11A8}", "x\u{20DD}", "ก\u{E33}", "~", "{secret}", "/",
    ]

    static func text<G: RandomNumberGenerator>(_ random: inout G, maxPieces: Int, allowEmpty: Bool) -> String {
        let count = Int.random(in: (allowEmpty ? 0 : 1)...maxPieces, using: &random)
        var text = ""
        for _ in 0..<count {
            // Mostly plain, as real vaults are, so both paths are taken.
            if Int.random(in: 0..<3, using: &random) == 0 {
                text += pieces.randomElement(using: &random)!
            } else {
                text += "svc\(Int.random(in: 0..<1000, using: &random))"
            }
        }
        return text
    }

    static let now: Int64 = 1_795_997_024

    static func instant<G: RandomNumberGenerator>(_ random: inout G) -> Int64? {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: nil
        case 1: now - Int64.random(in: 0...(400 * 86_400), using: &random)
        case 2: now + Int64.random(in: 0...(3 * 86_400), using: &random)
        case 3: now + Int64.random(in: 0...(20 * 86_400), using: &random)
        case 4: now + Int64.random(in: 0...(3 * 365 * 86_400), using: &random)
        case 5: now  // exactly now: expired
        case 6: Int64.random(in: 253_402_300_700...253_402_400_000, using: &random)  // year 9999 into 10000
        case 7: Int64.random(in: -62_167_300_000 ... -62_167_100_000, using: &random)  // year 0 and before
        case 8: now + Int64.random(in: -86_400...86_400, using: &random)  // today, yesterday, tomorrow
        default: Int64.random(in: 0...4_102_444_800, using: &random)
        }
    }

    static func entries<G: RandomNumberGenerator>(_ random: inout G, count: Int) -> [EntryMetadata] {
        var names: Set<String> = []
        var entries: [EntryMetadata] = []
        let kinds = ["token", "api-key", "bearer", "pat", "bearer", "ssh\u{202E}", "", "k\u{e9}y", "x"]
        while entries.count < count {
            var name = text(&random, maxPieces: 4, allowEmpty: false)
            // Canonically equal names (café / cafe + U+0301) tie in the sort: both orders must agree.
            if Int.random(in: 0..<8, using: &random) == 0 { name = ["caf\u{e9}", "cafe\u{301}", "\u{c5}", "A\u{30a}"].randomElement(using: &random)! }
            guard names.insert(name).inserted else { continue }
            let kind = kinds.randomElement(using: &random)!
            let remoteID: String? = kind == "pat" || Bool.random(using: &random) && Bool.random(using: &random)
                ? text(&random, maxPieces: 2, allowEmpty: true) : nil
            let remoteState: RemoteState? = remoteID == nil ? nil : [nil, .active, .inactive, .revoked, .missing].randomElement(using: &random)!
            let fields = EntryFields(
                kind: kind, headerTemplate: Bool.random(using: &random) ? "Authorization: Bearer {secret}" : text(&random, maxPieces: 3, allowEmpty: true),
                url: Bool.random(using: &random) ? nil : "https://" + text(&random, maxPieces: 2, allowEmpty: true),
                description: text(&random, maxPieces: 5, allowEmpty: true),
                expiresAt: instant(&random), caCertificates: nil)
            let fingerprint = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
            entries.append(EntryMetadata(
                id: (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }, name: name, fields: fields,
                createdAt: instant(&random) ?? now, updatedAt: instant(&random) ?? now,
                lastUsedAt: Bool.random(using: &random) ? nil : instant(&random), fingerprint: fingerprint,
                warnWithin: Bool.random(using: &random) ? nil : Int64.random(in: 1...10_000_000, using: &random),
                revision: 0, maxAge: Bool.random(using: &random) ? nil : Int64.random(in: 1...100_000, using: &random),
                remoteID: remoteID, remoteState: remoteState))
        }
        // As the vault gives them: by name, byte by byte (SQLite's BINARY order).
        return entries.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    static let zones: [LocalZone] = [
        FixedOffsetZone.utc, FixedOffsetZone(seconds: 19_800), FixedOffsetZone(seconds: -34_200),
        SteppedZone(base: 3600, step: 3600, period: 15_778_463), SteppedZone(base: -18_000, step: 3600, period: 7_777_777),
        SteppedZone(base: 0, step: 50_400, period: 86_401),
    ]
}

/// Test secrets as guarded bytes.
func renderSecret(_ text: String) -> SecretBytes {
    let bytes = Array(text.utf8)
    var secret = try! SecretBytes(count: bytes.count)
    secret.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
    return secret
}

func bytes(_ out: OutputBuffer) -> String { String(decoding: out.bytes, as: UTF8.self) }

// MARK: - The tests

@Suite("list and check render the same bytes as before")
struct ListRenderingTests {
    /// A real vault for ExpiryReport (check's messages); its entries are not used.
    private static func scratchVault() throws -> (Vault, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyseal-render-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        let unlocked = try Vault.create(at: directory + "/vault.db", passphrase: renderSecret("correct horse"), kdf: .insecureTesting)
        return (unlocked.vault, directory)
    }

    @Test("printable text and JSON strings: the fast paths agree with the old per-scalar code", arguments: 0..<4)
    func cells(seed: UInt64) {
        var random = SplitMix(state: seed)
        for _ in 0..<3000 {
            let text = RandomEntries.text(&random, maxPieces: 6, allowEmpty: true)
            #expect(TextTable.printable(text) == ReferenceTextTable.printable(text), "\(text.debugDescription)")
            #expect(JSON.quote(text) == ReferenceJSON.quote(text), "\(text.debugDescription)")
            #expect(TextTable.width(TextTable.printable(text)) == ReferenceTextTable.printable(text).count)
        }
        for piece in RandomEntries.pieces + ["", " ", "a ", "\u{0D4E}   ", "x\u{0D4E} \u{0D4E}  "] {
            #expect(JSON.quote(piece) == ReferenceJSON.quote(piece))
            #expect(TextTable.render([[piece, "b"], ["c", piece]]) == ReferenceTextTable.render([[piece, "b"], ["c", piece]]))
            #expect(TextTable.render([["a", piece], [piece, piece]], styles: [[nil, "S"]])
                == ReferenceTextTable.render([["a", piece], [piece, piece]], styles: [[nil, "S"]]))
        }
    }

    @Test("JSON trees (config, key slots, lock, PAT requests): rendered as before")
    func trees() {
        var random = SplitMix(state: 31)
        func tree(depth: Int) -> (JSON, ReferenceJSON) {
            switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &random) {
            case 0:
                let text = RandomEntries.text(&random, maxPieces: 3, allowEmpty: true)
                return (.string(text), .string(text))
            case 1:
                let value = Int64.random(in: Int64.min...Int64.max, using: &random) >> Int64.random(in: 0...63, using: &random)
                return (.number(value), .number(value))
            case 2:
                let value = Bool.random(using: &random)
                return (.bool(value), .bool(value))
            case 3: return (.null, .null)
            case 4:
                let items = (0..<Int.random(in: 0...4, using: &random)).map { _ in tree(depth: depth + 1) }
                return (.array(items.map(\.0)), .array(items.map(\.1)))
            default:
                let pairs = (0..<Int.random(in: 0...4, using: &random)).map { _ in
                    (RandomEntries.text(&random, maxPieces: 2, allowEmpty: true), tree(depth: depth + 1))
                }
                return (.object(pairs.map { ($0.0, $0.1.0) }), .object(pairs.map { ($0.0, $0.1.1) }))
            }
        }
        for _ in 0..<2000 {
            let (new, old) = tree(depth: 0)
            #expect(new.rendered == old.rendered)
        }
    }

    @Test("timestamps: ISO 8601 and local dates, years 0 to 9999 and beyond, any zone")
    func timestamps() {
        var random = SplitMix(state: 99)
        var instants: [Int64] = [0, -1, 86_399, 86_400, -86_400, 253_402_300_799, 253_402_300_800, -62_167_219_200, -62_167_219_201,
                                 951_782_400, 4_107_542_399]
        for _ in 0..<20_000 { instants.append(Int64.random(in: -70_000_000_000...300_000_000_000, using: &random)) }
        for instant in instants {
            #expect(Timestamp.iso8601(instant) == ReferenceTimestamp.iso8601(instant), "\(instant)")
            #expect(Timestamp.date(instant) == ReferenceTimestamp.date(instant), "\(instant)")
            for zone in RandomEntries.zones {
                #expect(Timestamp.localDate(instant, in: zone) == ReferenceTimestamp.localDate(instant, in: zone), "\(instant)")
                let policy = ExpiryPolicy(now: instant + Int64.random(in: -200_000...200_000, using: &random), zone: zone)
                #expect(policy.describe(expiresAt: instant) == referenceDescribe(policy, expiresAt: instant), "\(instant)")
            }
        }
    }

    @Test("list, list --json, check and check --json: random entry sets, byte for byte", arguments: 0..<12)
    func commands(seed: UInt64) throws {
        let (vault, directory) = try Self.scratchVault()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var random = SplitMix(state: 1000 + seed)
        let count = [0, 1, 2, 7, 40, 300][Int(seed) % 6]
        let entries = RandomEntries.entries(&random, count: count)
        let states = entries.map { _ in ExpiryState.allCases.randomElement(using: &random)! }
        let zone = RandomEntries.zones[Int(seed) % RandomEntries.zones.count]
        let report = ExpiryReport(vault: vault, now: RandomEntries.now + Int64.random(in: -86_400...86_400, using: &random), zone: zone)
        let policy = report.policy
        var tokens: [Int: Int64] = [:]
        for (index, entry) in entries.enumerated() where entry.fields.kind == "bearer" && Bool.random(using: &random) {
            tokens[index] = RandomEntries.instant(&random) ?? 0
        }
        let tokenByID = Dictionary(uniqueKeysWithValues: tokens.map { (entries[$0.key].id, $0.value) })

        for expiring in [false, true] {
            for sort in ListOrder.allCases {
                let rows = ReferenceList.rows(entries, states: states, expiring: expiring, sort: sort)
                let order = List.order(entries, states: states, expiringOnly: expiring, by: sort)
                #expect(order.map { entries[$0].name } == rows.map(\.entry.name))
                for colour in [false, true] {
                    var out = OutputBuffer(fd: nil)
                    List.table(entries, states: states, order: order, policy: policy, colour: colour).render(into: &out)
                    #expect(bytes(out) == ReferenceList.table(rows, policy: policy, colour: colour))
                    if bytes(out) != ReferenceList.table(rows, policy: policy, colour: colour) {
                        let new = bytes(out).split(separator: "\n", omittingEmptySubsequences: false)
                        let old = ReferenceList.table(rows, policy: policy, colour: colour).split(separator: "\n", omittingEmptySubsequences: false)
                        for (a, b) in zip(new, old) where a != b { Issue.record("new \(a.debugDescription)\nold \(b.debugDescription)"); break }
                    }
                }
                var out = OutputBuffer(fd: nil)
                List.json(entries, states: states, order: order, vault: "/v/vault \"ü\".db", policy: policy, tokensObtained: tokens,
                          into: &out) { _ in }
                #expect(bytes(out) == ReferenceList.json(rows, vault: "/v/vault \"ü\".db", policy: policy) { tokenByID[$0.id] })
            }
        }

        for strict in [false, true] {
            let results = ReferenceCheck.results(entries, states: states, strict: strict)
            let order = Check.order(entries)
            #expect(order.map { entries[$0].name } == results.map(\.entry.name))
            let attentionByID = Dictionary(uniqueKeysWithValues: results.map { ($0.entry.id, $0.attention) })
            let attentions = entries.map { attentionByID[$0.id]! }
            var out = OutputBuffer(fd: nil)
            Check.json(entries, states: states, attentions: attentions, order: order, status: ReferenceCheck.status(results),
                       strict: strict, report: report, into: &out) { _ in }
            #expect(bytes(out) == ReferenceCheck.json(results, strict: strict, report: report))
            out = OutputBuffer(fd: nil)
            Check.lines(entries, states: states, attentions: attentions, order: order, report: report, into: &out) { _ in }
            #expect(bytes(out) == ReferenceCheck.lines(results, report: report))
        }
    }

    @Test("written in 64 KiB chunks to a file, the answer is the same bytes as rendered whole, and the buffer stays near one chunk")
    func chunkedWrites() throws {
        let (vault, directory) = try Self.scratchVault()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var random = SplitMix(state: 77)
        let entries = RandomEntries.entries(&random, count: 3000)
        let states = entries.map { _ in ExpiryState.allCases.randomElement(using: &random)! }
        let report = ExpiryReport(vault: vault, now: RandomEntries.now, zone: RememberingZone(SteppedZone(base: 3600, step: 3600, period: 9_999_991)))
        let order = List.order(entries, states: states, expiringOnly: false, by: .expiry)
        let checkOrder = Check.order(entries)
        let attentions = states.map { $0 != .ok && $0 != .never }

        func both(_ render: (inout OutputBuffer, (inout OutputBuffer) throws -> Void) throws -> Void) throws {
            var whole = OutputBuffer(fd: nil)
            try render(&whole) { _ in }
            let path = directory + "/out-\(UUID().uuidString)"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            #expect(fd >= 0)
            var chunked = OutputBuffer(fd: fd)
            var largest = 0
            try render(&chunked) { out in
                largest = max(largest, out.count)
                try out.flushIfFull()
            }
            try chunked.flush()
            close(fd)
            let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(whole.bytes.count > OutputBuffer.chunk)
            #expect(written == whole.bytes)
            #expect(largest < OutputBuffer.chunk + 8192)
        }
        try both { out, after in
            try List.table(entries, states: states, order: order, policy: report.policy, colour: true).render(into: &out, afterRow: after)
        }
        try both { out, after in
            try List.json(entries, states: states, order: order, vault: "v", policy: report.policy, tokensObtained: [:], into: &out, afterEntry: after)
        }
        try both { out, after in
            try Check.json(entries, states: states, attentions: attentions, order: checkOrder, status: .expired, strict: false,
                           report: report, into: &out, afterEntry: after)
        }
        try both { out, after in
            try Check.lines(entries, states: states, attentions: attentions, order: checkOrder, report: report, into: &out, afterLine: after)
        }
    }

    @Test("show --json: the same object as before, previous values and a kept token included")
    func showJSON() {
        var random = SplitMix(state: 7)
        let entries = RandomEntries.entries(&random, count: 200)
        for entry in entries {
            let state = ExpiryState.allCases.randomElement(using: &random)!
            let policy = ExpiryPolicy(now: RandomEntries.now, zone: RandomEntries.zones.randomElement(using: &random)!)
            let previous: [PreviousValue]? = Bool.random(using: &random) ? nil : (0..<Int.random(in: 0...3, using: &random)).map { version in
                PreviousValue(version: Int64(version), setAt: 0, replacedAt: RandomEntries.instant(&random) ?? 0,
                              fingerprint: (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) })
            }
            let obtained = Bool.random(using: &random) ? nil : RandomEntries.instant(&random)
            var out = OutputBuffer(fd: nil)
            EntryJSON.write(entry, state: state, policy: policy, previous: previous,
                            tokenObtained: entry.fields.kind == "bearer" ? obtained : nil, into: &out)
            let old = ReferenceEntryJSON.object(entry, state: state, policy: policy, previous: previous,
                                                extras: ReferenceEntryJSON.extras(entry, obtainedAt: obtained)).rendered
            #expect(bytes(out) == old)
        }
    }

    @Test("list --json of a real vault: kept tokens read in one query, as the per-entry reads read them")
    func keptTokensInOneQuery() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyseal-render-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let unlocked = try Vault.create(at: directory + "/vault.db", passphrase: renderSecret("correct horse"),
                                        kdf: .insecureTesting)
        var random = SplitMix(state: 5)
        for index in 0..<60 {
            let kind = ["bearer", "pat", "token", "bearer"][index % 4]
            let name = index % 5 == 0 ? "b\u{e9}arer \(index)" : "entry-\(index)"
            try unlocked.add(name: name, fields: EntryFields(kind: kind, headerTemplate: "Authorization: Bearer {secret}",
                                                             url: kind == "bearer" ? "https://immuta.example.com" : nil,
                                                             description: "d\(index)", expiresAt: RandomEntries.instant(&random)),
                             secret: renderSecret("secret-\(index)"))
            if kind == "bearer" && Bool.random(using: &random) {
                try unlocked.keep(renderSecret("token-\(index)"), for: unlocked.vault.sealedEntry(named: name),
                                  obtainedAt: RandomEntries.now - Int64(index) * 1000)
            }
        }
        let vault = unlocked.vault
        let entries = try vault.entries()
        let report = ExpiryReport(vault: vault, now: RandomEntries.now, zone: FixedOffsetZone(seconds: 3600))
        let states = try entries.map { try report.state(of: $0) }
        let order = List.order(entries, states: states, expiringOnly: false, by: .expiry)
        let tokens = try EntryJSON.tokensObtained(entries, order: order, in: vault)
        #expect(!tokens.isEmpty)
        var out = OutputBuffer(fd: nil)
        List.json(entries, states: states, order: order, vault: vault.path, policy: report.policy, tokensObtained: tokens, into: &out) { _ in }
        let rows = ReferenceList.rows(entries, states: states, expiring: false, sort: .expiry)
        let old = try ReferenceList.json(rows, vault: vault.path, policy: report.policy) { try ReferenceEntryJSON.obtainedAt($0, in: vault) }
        #expect(bytes(out) == old)
        #expect(old.contains("\"token_obtained\":\"20"))
    }
}
