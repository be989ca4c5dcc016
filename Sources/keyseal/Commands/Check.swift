import ArgumentParser
import Policy
import Storage

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check expiries for cron, CI and prompts (no passphrase needed).",
        discussion: """
            Exit status, as monitoring plugins use it: 0 all is well, 1 something \
            expires within the window (with --strict: or never expires), 2 \
            something has expired, 3 the check itself failed (other errors keep \
            their documented status). One line per entry that needs attention; \
            nothing when all is well. Examples:
              crontab:  0 8 * * *  keyseal check --within 14d
              prompt:   keyseal check --quiet || echo "tokens need attention"
            """)

    @OptionGroup var vaultOptions: VaultOptions

    @Option(help: ArgumentHelp("The warning window for this call: 7d, 2w, 36h, 1mo.", valueName: "duration"))
    var within: String?

    @Flag(help: "Print JSON (schema in keyseal(1)).")
    var json = false

    @Flag(help: "Count entries that never expire as needing attention.")
    var strict = false

    @Flag(name: [.short, .long], help: "Print nothing; only set the exit status.")
    var quiet = false

    func run() throws {
        var status = ExitStatus.success
        do {
            try Failure.report { status = try check() }
        } catch let exit as ExitCode where exit == ExitCode(ExitStatus.failure.rawValue) {
            // 1 means "expiring" here: a failure of the check itself is 3.
            throw ExitCode(ExitStatus.checkFailed.rawValue)
        }
        if status != .success { throw ExitCode(status.rawValue) }
    }

    /// What the check found: success, failure (expiring) or expired.
    private func check() throws -> ExitStatus {
        let vault = try vaultOptions.open()
        let report = ExpiryReport(vault: vault)
        let window = try within.map { try WindowInput.parse($0, policy: report.policy) }
        var results: [(entry: EntryMetadata, state: ExpiryState, attention: Bool)] = []
        for entry in try vault.entries() {
            let state = try report.state(of: entry, window: window)
            let attention = state == .expired || state == .revoked || state == .expiring || (strict && state == .never)
            results.append((entry, state, attention))
        }
        results.sort { ($0.entry.fields.expiresAt ?? .max, $0.entry.name) < ($1.entry.fields.expiresAt ?? .max, $1.entry.name) }
        let status: ExitStatus = results.contains { $0.state == .expired || $0.state == .revoked } ? .expired
            : results.contains { $0.attention } ? .failure : .success
        if json {
            try Output.data(JSON.object([
                ("status", .string(status == .expired ? "expired" : status == .failure ? "expiring" : "ok")),
                ("exit", .number(Int64(status.rawValue))),
                ("checked_at", .string(Timestamp.iso8601(report.policy.now))),
                ("strict", .bool(strict)),
                ("entries", .array(results.map { result in
                    .object([
                        ("name", .string(result.entry.name)),
                        ("state", .string(result.state.rawValue)),
                        ("attention", .bool(result.attention)),
                        ("expires", .optional(result.entry.fields.expiresAt.map(Timestamp.iso8601))),
                        ("days_left", result.entry.fields.expiresAt.map { .number(report.policy.daysLeft(until: $0)) } ?? .null),
                        ("message", .string(report.describe(result.entry, state: result.state))),
                    ])
                })),
            ]).rendered + "\n")
        } else if !quiet {
            for result in results where result.attention {
                let name = TextTable.printable(result.entry.name)
                try Output.data("\(name): \(result.state.rawValue), \(report.describe(result.entry, state: result.state))\n")
            }
        }
        return status
    }
}
