import ArgumentParser
import Policy
import Storage

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Change an entry's description, expiry, URL, header or kind.",
        discussion: "The secret is unchanged; it is sealed again under the new fields.")

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's name.")
    var name: String

    @Option(help: ArgumentHelp("A new description (\"\" for none).", valueName: "text"))
    var description: String?

    @Option(help: ArgumentHelp("A new expiry: 2027-01-31, 90d, never, …", valueName: "when"))
    var expires: String?

    @Flag(help: "Accept an expiry in the past.")
    var allowPast = false

    @Option(help: ArgumentHelp("A new base URL.", valueName: "url"))
    var url: String?

    @Flag(help: "Remove the base URL.")
    var noUrl = false

    @Option(name: .customLong("cacert"), help: ArgumentHelp("A PEM file of CA certificates for the https URL.", valueName: "path"))
    var caCertificates: String?

    @Flag(name: .customLong("no-cacert"), help: "Verify the server with the system's CA certificates again.")
    var noCACertificates = false

    @Option(name: .customLong("header"), help: ArgumentHelp("A new header template with one {secret}.", valueName: "template"))
    var headerTemplate: String?

    @Option(help: ArgumentHelp("A new kind: api-key, pat, token or bearer.", valueName: "kind"))
    var kind: String?

    @Option(help: ArgumentHelp("This entry's warning window (7d, 2w), or \"default\" for the vault's; needs no passphrase.",
                               valueName: "duration"))
    var warnWithin: String?

    @Option(help: ArgumentHelp("A bearer entry's maximum token age (30m, 8h), or \"none\": an older kept token is exchanged anew; needs no passphrase.",
                               valueName: "duration"))
    var maxAge: String?

    func run() throws {
        try Failure.report {
            let resealing = description != nil || expires != nil || url != nil || noUrl || headerTemplate != nil || kind != nil
                || caCertificates != nil || noCACertificates
            guard resealing || warnWithin != nil || maxAge != nil else {
                throw CLIError(.usage, "nothing to change",
                               hint: "give --description, --expires, --url, --no-url, --cacert, --no-cacert, --header, --kind, --warn-within or --max-age")
            }
            let newMaxAge: Int64?? = try maxAge.map { text in
                if text == "none" { return nil }
                guard let seconds = try? AgentTime.parse(text) else {
                    throw CLIError(.usage, "\(text.debugDescription) is not a maximum token age", hint: "for example --max-age 30m, 8h or 1d, or none")
                }
                return seconds
            }
            if url != nil && noUrl { throw CLIError(.usage, "--url and --no-url contradict each other") }
            if caCertificates != nil && noCACertificates { throw CLIError(.usage, "--cacert and --no-cacert contradict each other") }
            let newCACertificates = try caCertificates.map(FieldInput.caCertificates)
            let newKind = try kind.map(FieldInput.kind)
            let newTemplate = try headerTemplate.map(FieldInput.headerTemplate)
            let newURL = try url.map(FieldInput.url)
            let newExpiry = try expires.map { try FieldInput.expiry($0, allowPast: allowPast) }
            let newWindow: Int64?? = try warnWithin.map { text in
                text == "default" ? nil
                    : try WindowInput.parse(text, policy: ExpiryPolicy(now: Vault.currentTime(), zone: SystemZone()))
            }
            let vault = try vaultOptions.open()
            let current = try vault.metadata(named: name)
            // The warning window is not sealed: alone, it changes without the
            // key; with other changes, only once the vault has unlocked.
            if newMaxAge != nil, current.fields.kind != CredentialKind.bearer.rawValue {
                throw CLIError(.usage, "--max-age is for bearer entries; \(name.debugDescription) is a \(current.fields.kind) entry")
            }
            // The max age is not sealed either: alone, it changes without the
            // key; with other changes, in the same transaction.
            guard resealing else {
                // Both in one transaction: a crash leaves both or neither.
                do {
                    try vault.setPolicies(name, warnWithin: newWindow, maxAge: newMaxAge, ifUnchangedSince: current)
                } catch { throw CLIError.conflict(error, command: "edit") }
                Output.info("updated \(name.debugDescription)")
                return
            }
            func apply(_ fields: inout EntryFields) {
                if let description { fields.description = description }
                if let newExpiry { fields.expiresAt = newExpiry }
                if let newURL { fields.url = newURL }
                if noUrl { fields.url = nil }
                if let newCACertificates { fields.caCertificates = newCACertificates }
                if noCACertificates { fields.caCertificates = nil }
                if let newKind {
                    // A template that was the old kind's default follows the kind.
                    let oldDefault = CredentialKind(rawValue: fields.kind)?.defaultHeaderTemplate
                    if fields.headerTemplate == oldDefault { fields.headerTemplate = newKind.defaultHeaderTemplate }
                    fields.kind = newKind.rawValue
                }
                if let newTemplate { fields.headerTemplate = newTemplate }
            }
            var edited = current.fields
            apply(&edited)
            try FieldInput.checkKind(edited, name: name)
            let unlocked = try unlockOptions.unlock(vault)
            // Every change in one transaction, and only to the entry as read
            // above: another keyseal may have changed it while this one
            // waited for the passphrase, and its change must not be
            // overwritten unseen (exit 75, nothing changed).
            do {
                try unlocked.update(name, warnWithin: newWindow, maxAge: newMaxAge, ifUnchangedSince: current, apply)
            } catch { throw CLIError.conflict(error, command: "edit") }
            Output.info("updated \(name.debugDescription)")
        }
    }
}
