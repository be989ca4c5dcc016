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
        // The same instants are looked up in the zone many times per entry.
        let report = ExpiryReport(vault: vault, zone: RememberingZone(SystemZone()))
        let window = try within.map { try WindowInput.parse($0, policy: report.policy) }
        let entries = try vault.entries()
        var states: [ExpiryState] = []
        states.reserveCapacity(entries.count)
        for entry in entries { states.append(try report.state(of: entry, window: window)) }
        func attention(_ index: Int) -> Bool {
            let state = states[index]
            return state == .expired || state == .revoked || state == .expiring || (strict && state == .never)
        }
        let order = Self.order(entries)
        let attentions = entries.indices.map(attention)
        let status: ExitStatus = states.contains { $0 == .expired || $0 == .revoked } ? .expired
            : attentions.contains(true) ? .failure : .success
        var out = OutputBuffer()
        if json {
            try Self.json(entries, states: states, attentions: attentions, order: order, status: status, strict: strict, report: report, into: &out) { out in try out.flushIfFull() }
        } else if !quiet {
            try Self.lines(entries, states: states, attentions: attentions, order: order, report: report, into: &out) { out in try out.flushIfFull() }
        }
        try out.flush()
        return status
    }

    /// Soonest expiry first, then by name, as indexes into `entries`: sorted
    /// as indexes, so no entry is moved or copied on the way.
    static func order(_ entries: [EntryMetadata]) -> [Int] {
        let expiries = entries.map { $0.fields.expiresAt ?? .max }
        return entries.indices.sorted { expiries[$0] != expiries[$1] ? expiries[$0] < expiries[$1] : entries[$0].name < entries[$1].name }
    }

    /// The JSON answer and a newline; `afterEntry` may flush the buffer.
    static func json(_ entries: [EntryMetadata], states: [ExpiryState], attentions: [Bool], order: [Int], status: ExitStatus, strict: Bool, report: ExpiryReport,
                     into out: inout OutputBuffer, afterEntry: (inout OutputBuffer) throws -> Void) rethrows {
        let policy = report.policy
        out.append(UInt8(ascii: "{"))
        JSON.key("status", into: &out)
        JSON.quote(status == .expired ? "expired" : status == .failure ? "expiring" : "ok", into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("exit", into: &out)
        out.append(decimal: Int64(status.rawValue))
        out.append(UInt8(ascii: ","))
        JSON.key("checked_at", into: &out)
        JSON.quote(Timestamp.iso8601(policy.now), into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("strict", into: &out)
        out.append(strict ? "true" : "false")
        out.append(UInt8(ascii: ","))
        JSON.key("entries", into: &out)
        out.append(UInt8(ascii: "["))
        // safety: the buffer is read only inside the closure, while `entries` lives; it lends each
        // entry where the array's subscript would copy it.
        try entries.withUnsafeBufferPointer { entries in
            for (position, index) in order.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                // Fields read in place: a copy of the whole entry costs more than the line.
                let state = states[index]
                out.append(UInt8(ascii: "{"))
                JSON.key("name", into: &out)
                JSON.quote(entries[index].name, into: &out)
                out.append(UInt8(ascii: ","))
                JSON.key("state", into: &out)
                JSON.quote(state.rawValue, into: &out)
                out.append(UInt8(ascii: ","))
                JSON.key("attention", into: &out)
                out.append(attentions[index] ? "true" : "false")
                out.append(UInt8(ascii: ","))
                JSON.key("expires", into: &out)
                if let expiresAt = entries[index].fields.expiresAt {
                    out.append(UInt8(ascii: "\""))
                    out.append(iso8601: expiresAt)
                    out.append(UInt8(ascii: "\""))
                } else {
                    out.append("null")
                }
                out.append(UInt8(ascii: ","))
                JSON.key("days_left", into: &out)
                if let expiresAt = entries[index].fields.expiresAt {
                    out.append(decimal: policy.daysLeft(until: expiresAt))
                } else {
                    out.append("null")
                }
                out.append(UInt8(ascii: ","))
                JSON.key("message", into: &out)
                JSON.quote(report.describe(entries[index], state: state), into: &out)
                out.append(UInt8(ascii: "}"))
                try afterEntry(&out)
            }
        }
        out.append(contentsOf: [UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "\n")])
    }

    /// One line per entry that needs attention; `afterLine` may flush the buffer.
    static func lines(_ entries: [EntryMetadata], states: [ExpiryState], attentions: [Bool], order: [Int], report: ExpiryReport, into out: inout OutputBuffer,
                      afterLine: (inout OutputBuffer) throws -> Void) rethrows {
        // safety: as in json(…): the buffer is read only inside the closure.
        try entries.withUnsafeBufferPointer { entries in
            for index in order where attentions[index] {
                let state = states[index]
                out.append(TextTable.printable(entries[index].name))
                out.append(": ")
                out.append(state.rawValue)
                out.append(", ")
                out.append(report.describe(entries[index], state: state))
                out.append(UInt8(ascii: "\n"))
                try afterLine(&out)
            }
        }
    }
}
