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
            // The same instants are looked up in the zone many times per entry.
            let report = ExpiryReport(vault: vault, zone: RememberingZone(SystemZone()))
            let window = try within.map { try WindowInput.parse($0, policy: report.policy) }
            let entries = try vault.entries()
            var states: [ExpiryState] = []
            states.reserveCapacity(entries.count)
            for entry in entries { states.append(try report.state(of: entry, window: window)) }
            let order = Self.order(entries, states: states, expiringOnly: expiring, by: sort)
            var out = OutputBuffer()
            if json {
                // Read before the first byte is written: a damaged kept token fails the whole answer.
                let tokensObtained = try EntryJSON.tokensObtained(entries, order: order, in: vault)
                try Self.json(entries, states: states, order: order, vault: vault.path, policy: report.policy, tokensObtained: tokensObtained,
                          into: &out) { out in try out.flushIfFull() }
            } else {
                try Self.table(entries, states: states, order: order, policy: report.policy, colour: Colour.enabled(for: 1))
                    .render(into: &out) { out in try out.flushIfFull() }
            }
            try out.flush()
        }
    }

    /// The rows shown, as indexes into `entries` and `states`: sorted as
    /// indexes, so no entry is moved or copied on the way.
    static func order(_ entries: [EntryMetadata], states: [ExpiryState], expiringOnly: Bool, by sort: ListOrder) -> [Int] {
        var order = Array(entries.indices)
        if expiringOnly { order = order.filter { states[$0] == .expiring || states[$0] == .expired || states[$0] == .revoked } }
        if sort == .expiry {
            let expiries = entries.map(\.fields.expiresAt)
            order.sort { a, b in
                switch (expiries[a], expiries[b]) {
                case let (x?, y?) where x != y: return x < y
                case (nil, _?): return false
                case (_?, nil): return true
                default: return entries[a].name < entries[b].name
                }
            }
        }
        return order
    }

    /// `{"vault":…,"checked_at":…,"entries":[…]}` and a newline; `afterEntry`
    /// may flush the buffer.
    static func json(_ entries: [EntryMetadata], states: [ExpiryState], order: [Int], vault: String, policy: ExpiryPolicy,
                     tokensObtained: [Int: Int64], into out: inout OutputBuffer,
                     afterEntry: (inout OutputBuffer) throws -> Void) rethrows {
        out.append(UInt8(ascii: "{"))
        JSON.key("vault", into: &out)
        JSON.quote(vault, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("checked_at", into: &out)
        JSON.quote(Timestamp.iso8601(policy.now), into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("entries", into: &out)
        out.append(UInt8(ascii: "["))
        // safety: the buffer is read only inside the closure, while `entries` lives; it lends each
        // entry where the array's subscript would copy it (a retain per field, 100,000 times).
        try entries.withUnsafeBufferPointer { entries in
            for (position, index) in order.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                EntryJSON.write(entries[index], state: states[index], policy: policy,
                                tokenObtained: tokensObtained.isEmpty ? nil : tokensObtained[index], into: &out)
                try afterEntry(&out)
            }
        }
        out.append(contentsOf: [UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "\n")])
    }

    /// Dates in the user's time zone; JSON has the exact instants in UTC.
    /// `order` holds indexes into `entries` and `states`, the rows in the
    /// order shown.
    static func table(_ entries: [EntryMetadata], states: [ExpiryState], order: [Int], policy: ExpiryPolicy,
                      colour: Bool) -> TextTable.Builder {
        let header = ["NAME", "KIND", "STATE", "EXPIRES", "DAYS", "LAST-USED", "FINGERPRINT", "DESCRIPTION"]
        var table = TextTable.Builder(columns: header.count, capacity: order.count + 1)
        for cell in header { table.append(cell) }
        let zone = policy.zone
        for index in order {
            // Fields read in place: a copy of the whole entry costs more than the row.
            let state = states[index]
            table.append(TextTable.printable(entries[index].name))
            table.append(TextTable.printable(entries[index].fields.kind))
            table.append(state.rawValue, style: colour ? Colour.code(for: state) : nil)
            if let expiresAt = entries[index].fields.expiresAt {
                table.appendASCII { $0.append(localDate: expiresAt, in: zone) }
                table.appendASCII { $0.append(decimal: policy.daysLeft(until: expiresAt)) }
            } else {
                table.append("never")
                table.append("-")
            }
            if let lastUsedAt = entries[index].lastUsedAt {
                table.appendASCII { $0.append(localDate: lastUsedAt, in: zone) }
            } else {
                table.append("never")
            }
            // The fingerprint's first 12 hex digits.
            table.appendASCII { $0.append(hex: entries[index].fingerprint.prefix(6)) }
            table.append(TextTable.printable(entries[index].fields.description))
        }
        return table
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
        if isPlain(text) { return text }
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

    /// Printable ASCII only (0x20 through 0x7E): nothing to escape, and one
    /// character per byte. Most names and descriptions are.
    static func isPlain(_ text: String) -> Bool {
        if let plain = text.utf8.withContiguousStorageIfAvailable({ bytes in
            bytes.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
        }) { return plain }
        return text.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    /// A cell's width: its characters (grapheme clusters).
    static func width(_ cell: String) -> Int { isPlain(cell) ? cell.utf8.count : cell.count }

    /// Left-aligned columns two spaces apart; the last column is not padded.
    /// A cell's style (an ANSI code) wraps the cell's text, not its padding,
    /// so colour does not shift the columns.
    static func render(_ rows: [[String]], styles: [[String?]] = []) -> String {
        guard let columns = rows.first?.count else { return "" }
        var table = Builder(columns: columns)
        for (rowIndex, row) in rows.enumerated() {
            for (column, cell) in row.enumerated() {
                table.append(cell, style: rowIndex < styles.count ? styles[rowIndex][column] : nil)
            }
        }
        var out = OutputBuffer(fd: nil)
        table.render(into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// A table gathered cell by cell, kept as one run of bytes (the widths
    /// need every row before the first is written), then rendered as
    /// `render(_:styles:)` renders it.
    struct Builder {
        let columns: Int
        private var text = OutputBuffer(fd: nil)
        /// Where each cell's text ends in `text`.
        private var ends: [UInt32] = []
        private var widths: [UInt32] = []
        /// Per cell: 0 for no style, else 1 + its index in `styleCodes`.
        private var styleIndexes: [UInt8] = []
        private var styleCodes: [String] = []
        private var columnWidths: [Int]

        init(columns: Int, capacity rows: Int = 0) {
            self.columns = columns
            columnWidths = Array(repeating: 0, count: columns)
            // About eight bytes a cell, so the text is seldom copied as it grows.
            text.reserve(rows * columns * 8)
            ends.reserveCapacity(rows * columns)
            widths.reserveCapacity(rows * columns)
            styleIndexes.reserveCapacity(rows * columns)
        }

        /// The next cell, left to right, top to bottom; `style` is an ANSI code.
        mutating func append(_ cell: String, style: String? = nil) {
            let width = TextTable.width(cell)
            let column = ends.count % columns
            columnWidths[column] = max(columnWidths[column], width)
            text.append(cell)
            ends.append(UInt32(text.count))
            widths.append(UInt32(width))
            appendStyle(style)
        }

        /// The next cell, written by `body` as printable ASCII (a date, a
        /// number, hex), so its width is its length.
        mutating func appendASCII(_ body: (inout OutputBuffer) -> Void) {
            let start = text.count
            body(&text)
            let width = text.count - start
            let column = ends.count % columns
            columnWidths[column] = max(columnWidths[column], width)
            ends.append(UInt32(text.count))
            widths.append(UInt32(width))
            appendStyle(nil)
        }

        private mutating func appendStyle(_ style: String?) {
            if let style {
                if let index = styleCodes.firstIndex(of: style) {
                    styleIndexes.append(UInt8(index + 1))
                } else {
                    styleCodes.append(style)
                    styleIndexes.append(UInt8(styleCodes.count))
                }
            } else {
                styleIndexes.append(0)
            }
        }

        func render(into out: inout OutputBuffer) {
            render(into: &out) { _ in }
        }

        /// Writes the rows; `afterRow` may flush `out`.
        func render(into out: inout OutputBuffer, afterRow: (inout OutputBuffer) throws -> Void) rethrows {
            let reset = Colour.reset
            var cell = 0
            var start = 0
            while cell < ends.count {
                let rowStart = out.count
                for column in 0..<columns {
                    if column > 0 { out.append(contentsOf: [0x20, 0x20]) }
                    let end = Int(ends[cell])
                    let style = styleIndexes[cell]
                    if style != 0 { out.append(styleCodes[Int(style) - 1]) }
                    out.append(contentsOf: text.bytes[start..<end])
                    if style != 0 { out.append(reset) }
                    if column != columns - 1 {
                        out.append(contentsOf: repeatElement(0x20, count: columnWidths[column] - Int(widths[cell])))
                    }
                    start = end
                    cell += 1
                }
                Self.trimTrailingSpaces(&out, from: rowStart)
                out.append(0x0A)
                try afterRow(&out)
            }
        }

        /// A row's trailing spaces go, as `trimmingTrailingSpaces()` removes
        /// them. Spaces after ASCII are characters of their own; after other
        /// text one could belong to the character before it (a prepended
        /// mark), so that rare row is trimmed as a string.
        private static func trimTrailingSpaces(_ out: inout OutputBuffer, from rowStart: Int) {
            var index = out.count
            while index > rowStart && out.bytes[index - 1] == 0x20 { index -= 1 }
            guard index < out.count else { return }
            if index > rowStart && out.bytes[index - 1] >= 0x80 {
                let row = String(decoding: out.bytes[rowStart...], as: UTF8.self)
                out.replaceTail(from: rowStart, with: row.trimmingTrailingSpaces())
            } else {
                out.truncate(to: index)
            }
        }
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
