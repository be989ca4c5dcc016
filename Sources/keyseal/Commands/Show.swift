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
                try Output.data(EntryJSON.object(entry, state: state, policy: report.policy, previous: previous,
                                                 extras: try EntryJSON.extras(entry, in: vault)).rendered + "\n")
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

/// The JSON of one entry, shared by `list --json` and `show --json`.
enum EntryJSON {
    static func object(_ entry: EntryMetadata, state: ExpiryState, policy: ExpiryPolicy,
                       previous: [PreviousValue]? = nil, extras: [(String, JSON)] = []) -> JSON {
        var pairs: [(String, JSON)] = [
            ("name", .string(entry.name)),
            ("kind", .string(entry.fields.kind)),
            ("header_template", .string(entry.fields.headerTemplate)),
            ("url", .optional(entry.fields.url)),
            ("description", .string(entry.fields.description)),
            ("created", .string(Timestamp.iso8601(entry.createdAt))),
            ("updated", .string(Timestamp.iso8601(entry.updatedAt))),
            ("expires", .optional(entry.fields.expiresAt.map(Timestamp.iso8601))),
            ("last_used", .optional(entry.lastUsedAt.map(Timestamp.iso8601))),
            ("fingerprint", .string(entry.fingerprintHex)),
            ("state", .string(state.rawValue)),
            ("days_left", entry.fields.expiresAt.map { .number(policy.daysLeft(until: $0)) } ?? .null),
            ("warn_within", entry.warnWithin.map(JSON.number) ?? .null),
        ]
        pairs += extras
        if let previous {
            pairs.append(("previous", .array(previous.map { value in
                .object([
                    ("version", .number(value.version)),
                    ("replaced", .string(Timestamp.iso8601(value.replacedAt))),
                    ("fingerprint", .string(value.fingerprintHex)),
                ])
            })))
        }
        return .object(pairs)
    }

    /// Only for the entries they concern, so other entries' JSON is as it
    /// was: a bearer entry's kept token (when it was obtained, never its
    /// value) and max age; a PAT's server id and state.
    static func extras(_ entry: EntryMetadata, in vault: Vault) throws -> [(String, JSON)] {
        var pairs: [(String, JSON)] = []
        if entry.fields.kind == CredentialKind.bearer.rawValue {
            let kept = try vault.keptToken(of: try vault.sealedEntry(named: entry.name))
            pairs.append(("token_obtained", .optional(kept.map { Timestamp.iso8601($0.obtainedAt) })))
            pairs.append(("max_age", entry.maxAge.map(JSON.number) ?? .null))
        }
        if let remoteID = entry.remoteID {
            pairs.append(("token_id", .string(remoteID)))
            pairs.append(("remote_state", .optional(entry.remoteState?.rawValue)))
        }
        return pairs
    }
}
