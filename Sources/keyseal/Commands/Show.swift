import ArgumentParser
import Policy
import Storage

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one entry's metadata and previous versions (no passphrase needed).")

    @OptionGroup var vaultOptions: VaultOptions

    @Argument(help: "The entry's name.")
    var name: String

    @Flag(help: "Print JSON (schema in keyseal(1)).")
    var json = false

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let entry = try vault.metadata(named: name)
            let previous = try vault.previousValues(of: name)
            let report = ExpiryReport(vault: vault)
            let state = try report.state(of: entry)
            if json {
                let tokenObtained = try EntryJSON.tokenObtained(entry, in: vault)
                var out = OutputBuffer()
                EntryJSON.write(entry, state: state, policy: report.policy, previous: previous,
                                tokenObtained: tokenObtained, into: &out)
                out.append(UInt8(ascii: "\n"))
                try out.flush()
                return
            }
            let zone = report.policy.zone
            func local(_ seconds: Int64?) -> String { seconds.map { Timestamp.local($0, in: zone) } ?? "never" }
            var rows: [[String]] = [
                ["name:", entry.name],
                ["kind:", entry.fields.kind],
                ["header:", entry.fields.headerTemplate],
                ["url:", entry.fields.url ?? "none"],
                ["description:", entry.fields.description],
                ["expires:", local(entry.fields.expiresAt)],
                ["state:", "\(state.rawValue): \(report.describe(entry, state: state))"],
                ["warn within:", entry.warnWithin.map(WindowInput.describe) ?? "the vault's window"],
                ["created:", local(entry.createdAt)],
                ["updated:", local(entry.updatedAt)],
                ["last used:", local(entry.lastUsedAt)],
                ["fingerprint:", entry.fingerprintHex],
            ]
            // Only when set: the system's CAs need no line.
            if let caCertificates = entry.fields.caCertificates { rows.insert(["ca certificates:", caCertificates], at: 4) }
            if let remoteID = entry.remoteID { rows.append(["token id:", remoteID]) }
            for value in previous {
                rows.append(["previous:", "version \(value.version), replaced \(local(value.replacedAt)), fingerprint \(value.fingerprintHex.prefix(12))"])
            }
            if entry.fields.kind == CredentialKind.bearer.rawValue {
                rows += try bearerRows(vault, local: local)
            }
            try Output.data(TextTable.render(rows.map { $0.map(TextTable.printable) }))
        }
    }
}

extension Show {
    /// A bearer entry's kept token (its age, never its value), its max age,
    /// and the lifetimes observed so far, from which a max age can be chosen.
    private func bearerRows(_ vault: Vault, local: (Int64?) -> String) throws -> [[String]] {
        let sealed = try vault.sealedEntry(named: name)
        let now = Vault.currentTime()
        var rows: [[String]] = []
        if let kept = try vault.keptToken(of: sealed) {
            let stale = TokenAge.isStale(obtainedAt: kept.obtainedAt, maxAge: sealed.metadata.maxAge, now: now)
            rows.append(["token:", "obtained \(local(kept.obtainedAt)), \(AgentTime.describe(max(now - kept.obtainedAt, 0))) ago"
                + (stale ? " (stale: the next use exchanges anew)" : "")])
        } else {
            rows.append(["token:", "none kept (the next use exchanges the key)"])
        }
        rows.append(["max age:", sealed.metadata.maxAge.map(AgentTime.describe) ?? "none (kept until a server refuses it)"])
        let lifetimes = try vault.tokenLifetimes(of: sealed)
        if lifetimes.isEmpty {
            rows.append(["lifetimes:", "none observed yet"])
        } else {
            let spans = lifetimes.map(\.seconds)
            rows.append(["lifetimes:", "\(spans.count) observed, shortest \(AgentTime.describe(spans.min()!)), longest \(AgentTime.describe(spans.max()!))"])
        }
        return rows
    }
}

/// The JSON of one entry, shared by `list --json` and `show --json`,
/// written straight into the output's bytes.
enum EntryJSON {
    static func write(_ entry: EntryMetadata, state: ExpiryState, policy: ExpiryPolicy,
                      previous: [PreviousValue]? = nil, tokenObtained: Int64?, into out: inout OutputBuffer) {
        out.append(UInt8(ascii: "{"))
        JSON.key("name", into: &out)
        JSON.quote(entry.name, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("kind", into: &out)
        JSON.quote(entry.fields.kind, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("header_template", into: &out)
        JSON.quote(entry.fields.headerTemplate, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("url", into: &out)
        optional(entry.fields.url, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("description", into: &out)
        JSON.quote(entry.fields.description, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("created", into: &out)
        time(entry.createdAt, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("updated", into: &out)
        time(entry.updatedAt, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("expires", into: &out)
        time(entry.fields.expiresAt, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("last_used", into: &out)
        time(entry.lastUsedAt, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("fingerprint", into: &out)
        out.append(UInt8(ascii: "\""))
        out.append(hex: entry.fingerprint)
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ","))
        JSON.key("state", into: &out)
        JSON.quote(state.rawValue, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("days_left", into: &out)
        number(entry.fields.expiresAt.map { policy.daysLeft(until: $0) }, into: &out)
        out.append(UInt8(ascii: ","))
        JSON.key("warn_within", into: &out)
        number(entry.warnWithin, into: &out)
        writeExtras(entry, tokenObtained: tokenObtained, into: &out)
        if let previous {
            out.append(UInt8(ascii: ","))
            JSON.key("previous", into: &out)
            out.append(UInt8(ascii: "["))
            for (index, value) in previous.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "{"))
                JSON.key("version", into: &out)
                out.append(decimal: value.version)
                out.append(UInt8(ascii: ","))
                JSON.key("replaced", into: &out)
                time(value.replacedAt, into: &out)
                out.append(UInt8(ascii: ","))
                JSON.key("fingerprint", into: &out)
                out.append(UInt8(ascii: "\""))
                out.append(hex: value.fingerprint)
                out.append(UInt8(ascii: "\""))
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Only for the entries they concern, so other entries' JSON is as it
    /// was: a bearer entry's kept token (when it was obtained, never its
    /// value) and max age; a PAT's server id and state.
    private static func writeExtras(_ entry: EntryMetadata, tokenObtained: Int64?, into out: inout OutputBuffer) {
        if entry.fields.kind == CredentialKind.bearer.rawValue {
            out.append(UInt8(ascii: ","))
            JSON.key("token_obtained", into: &out)
            time(tokenObtained, into: &out)
            out.append(UInt8(ascii: ","))
            JSON.key("max_age", into: &out)
            number(entry.maxAge, into: &out)
        }
        if let remoteID = entry.remoteID {
            out.append(UInt8(ascii: ","))
            JSON.key("token_id", into: &out)
            JSON.quote(remoteID, into: &out)
            out.append(UInt8(ascii: ","))
            JSON.key("remote_state", into: &out)
            optional(entry.remoteState?.rawValue, into: &out)
        }
    }

    /// When a bearer entry's kept token was obtained (nil: none kept, or
    /// not a bearer entry), for `show --json`.
    static func tokenObtained(_ entry: EntryMetadata, in vault: Vault) throws -> Int64? {
        guard entry.fields.kind == CredentialKind.bearer.rawValue else { return nil }
        return try vault.keptToken(of: try vault.sealedEntry(named: entry.name))?.obtainedAt
    }

    /// The same for the entries at `order` (`list --json`), in one query, by index into `entries`.
    static func tokensObtained(_ entries: [EntryMetadata], order: [Int], in vault: Vault) throws -> [Int: Int64] {
        try vault.keptTokenTimes(of: entries, at: order.filter { entries[$0].fields.kind == CredentialKind.bearer.rawValue })
    }

    private static func time(_ seconds: Int64?, into out: inout OutputBuffer) {
        guard let seconds else { return out.append("null") }
        out.append(UInt8(ascii: "\""))
        out.append(iso8601: seconds)
        out.append(UInt8(ascii: "\""))
    }

    private static func number(_ value: Int64?, into out: inout OutputBuffer) {
        guard let value else { return out.append("null") }
        out.append(decimal: value)
    }

    private static func optional(_ text: String?, into out: inout OutputBuffer) {
        guard let text else { return out.append("null") }
        JSON.quote(text, into: &out)
    }
}
