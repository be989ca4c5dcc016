import ArgumentParser
import Policy
import Storage

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List entries (metadata only; no passphrase needed).",
        aliases: ["ls"])

    @OptionGroup var vaultOptions: VaultOptions

    @Flag(help: "Print JSON (schema in keyseal(1)).")
    var json = false

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let entries = try vault.entries()
            Output.data(json ? Self.json(entries, vault: vault).rendered + "\n" : Self.table(entries))
        }
    }

    static func json(_ entries: [EntryMetadata], vault: Vault) -> JSON {
        .object([
            ("vault", .string(vault.path)),
            ("entries", .array(entries.map { EntryJSON.object($0) })),
        ])
    }

    /// Dates in the user's time zone; JSON has the exact instants in UTC.
    static func table(_ entries: [EntryMetadata]) -> String {
        let zone = SystemZone()
        let header = ["NAME", "KIND", "EXPIRES", "CREATED", "FINGERPRINT", "DESCRIPTION"]
        let rows = entries.map { entry in
            [entry.name, entry.fields.kind, entry.fields.expiresAt.map { Timestamp.localDate($0, in: zone) } ?? "never",
             Timestamp.localDate(entry.createdAt, in: zone), String(entry.fingerprintHex.prefix(12)), entry.fields.description]
                .map(TextTable.printable)
        }
        return TextTable.render([header] + rows)
    }
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
    static func render(_ rows: [[String]]) -> String {
        guard let columns = rows.first?.count else { return "" }
        let widths = (0..<columns).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == columns - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
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
