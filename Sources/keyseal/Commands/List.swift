import ArgumentParser
import Policy
import Storage

enum ListOrder: String, ExpressibleByArgument, CaseIterable {
    case expiry, name
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List entries with their expiry state (metadata only; no passphrase needed).",
        discussion: """
            Sorted by expiry, soonest first, entries that never expire last. \
            DAYS is the number of calendar days left (negative once expired). \
            On a terminal the state is coloured (not when NO_COLOR is set). \
            --expiring shows only entries that expire within the window or have \
            expired: keyseal list --expiring 30d.
            """,
        aliases: ["ls"])

    @OptionGroup var vaultOptions: VaultOptions

    @Flag(help: "Print JSON (schema in keyseal(1)).")
    var json = false

    @Flag(help: "Only entries that expire within the window (--within, else the entry's or vault's) or have expired.")
    var expiring = false

    @Option(help: ArgumentHelp("The warning window for this call: 7d, 2w, 36h, 1mo.", valueName: "duration"))
    var within: String?

    @Option(help: ArgumentHelp("expiry (default) or name.", valueName: "order"))
    var sort: ListOrder = .expiry

    /// `list --expiring 30d` and `--expiring=30d` mean `--expiring --within
    /// 30d`: argument-parser has no flag with an optional value.
    static func expandExpiringShorthand(_ arguments: [String]) -> [String] {
        guard let command = arguments.first, command == "list" || command == "ls" else { return arguments }
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                result += arguments[(index - 1)...]
                break
            }
            if argument.hasPrefix("--expiring=") {
                result += ["--expiring", "--within", String(argument.dropFirst("--expiring=".count))]
            } else if argument == "--expiring", index < arguments.count, arguments[index].first?.isNumber == true {
                result += ["--expiring", "--within", arguments[index]]
                index += 1
            } else {
                result.append(argument)
            }
        }
        return result
    }

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let report = ExpiryReport(vault: vault)
            let window = try within.map { try WindowInput.parse($0, policy: report.policy) }
            var rows: [(entry: EntryMetadata, state: ExpiryState)] = try vault.entries().map { entry in
                (entry, try report.state(of: entry, window: window))
            }
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
            if json {
                try Output.data(JSON.object([
                    ("vault", .string(vault.path)),
                    ("checked_at", .string(Timestamp.iso8601(report.policy.now))),
                    ("entries", .array(try rows.map { row in
                        EntryJSON.object(row.entry, state: row.state, policy: report.policy, extras: try EntryJSON.extras(row.entry, in: vault))
                    })),
                ]).rendered + "\n")
            } else {
                try Output.data(Self.table(rows, policy: report.policy))
            }
        }
    }

    /// Dates in the user's time zone; JSON has the exact instants in UTC.
    static func table(_ rows: [(entry: EntryMetadata, state: ExpiryState)], policy: ExpiryPolicy) -> String {
        let header = ["NAME", "KIND", "STATE", "EXPIRES", "DAYS", "LAST-USED", "FINGERPRINT", "DESCRIPTION"]
        let cells = rows.map { row in
            let entry = row.entry
            return [
                entry.name, entry.fields.kind, row.state.rawValue,
                entry.fields.expiresAt.map { Timestamp.localDate($0, in: policy.zone) } ?? "never",
                entry.fields.expiresAt.map { String(policy.daysLeft(until: $0)) } ?? "-",
                entry.lastUsedAt.map { Timestamp.localDate($0, in: policy.zone) } ?? "never",
                String(entry.fingerprintHex.prefix(12)), entry.fields.description,
            ].map(TextTable.printable)
        }
        let colour = Colour.enabled(for: 1)
        let styles: [[String?]] = [Array(repeating: nil, count: header.count)] + rows.map { row in
            var style = [String?](repeating: nil, count: header.count)
            if colour { style[2] = Colour.code(for: row.state) }
            return style
        }
        return TextTable.render([header] + cells, styles: styles)
    }
}

/// ANSI colour for states, only on a terminal and never when NO_COLOR is set
/// (no-color.org) or TERM is dumb.
enum Colour {
    static func enabled(for fd: Int32) -> Bool {
        guard Output.isTerminal(fd) else { return false }
        if let noColor = Environment.value("NO_COLOR"), !noColor.isEmpty { return false }
        return Environment.value("TERM") != "dumb"
    }

    static func code(for state: ExpiryState) -> String? {
        switch state {
        case .expired, .revoked: "\u{1B}[31m"
        case .expiring, .stale: "\u{1B}[33m"
        case .ok: "\u{1B}[32m"
        case .never: nil
        }
    }

    static let reset = "\u{1B}[0m"
}

enum TextTable {
    /// keyseal stores no control characters, but a file edited outside it
    /// could hold some: shown escaped, they cannot drive the terminal.
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

    /// Left-aligned columns two spaces apart; the last column is not padded.
    /// A cell's style (an ANSI code) wraps the cell's text, not its padding,
    /// so colour does not shift the columns.
    static func render(_ rows: [[String]], styles: [[String?]] = []) -> String {
        guard let columns = rows.first?.count else { return "" }
        let widths = (0..<columns).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().map { rowIndex, row in
            row.enumerated().map { column, cell in
                let styled = (rowIndex < styles.count ? styles[rowIndex][column] : nil).map { $0 + cell + Colour.reset } ?? cell
                return column == columns - 1 ? styled : styled + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}

/// A duration a user gives as a warning window.
enum WindowInput {
    static func parse(_ text: String, policy: ExpiryPolicy) throws -> Int64 {
        do {
            return try WindowParser(now: policy.now, zone: policy.zone).parse(text)
        } catch {
            throw CLIError(.usage, "\(text.debugDescription) is not a duration", hint: "for example 7d, 2w, 36h or 1mo")
        }
    }

    /// 604800 -> "7d", 129600 -> "36h", 90 -> "90s".
    static func describe(_ seconds: Int64) -> String {
        if seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        return "\(seconds)s"
    }
}
