import ArgumentParser
import Policy
import Sealing
import Storage

struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Store a new secret, read from a hidden prompt or from stdin.",
        discussion: """
            The secret is never taken from the command line. On a terminal it is \
            asked for with echo off; otherwise stdin is read to its end and exactly \
            one trailing newline (the one echo adds) is removed. Secrets holding \
            CR, LF or NUL are refused, so they can never break a header. keyseal \
            says it stored the entry only after reading it back from the file.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's name, for example immuta-prod.")
    var name: String

    @Option(help: ArgumentHelp("api-key (sent as it is), pat or token (sent as Bearer), or bearer (an Immuta API key exchanged for a token; needs --url).", valueName: "kind"))
    var kind: String = CredentialKind.token.rawValue

    @Option(name: .customLong("header"), help: ArgumentHelp(
        "A header template with one {secret}, for example 'X-API-Key: {secret}' (default: the kind's).",
        valueName: "template"))
    var headerTemplate: String?

    @Option(help: ArgumentHelp("The service's base URL; keyseal curl sends the secret only there.", valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("What the secret is for.", valueName: "text"))
    var description: String = ""

    @Option(help: ArgumentHelp("When it expires: 2027-01-31, 2027-01-31T17:00:00+01:00, 90d, 12w, 6mo, 1y or never.",
                               valueName: "when"))
    var expires: String?

    @Flag(help: "Accept an expiry in the past (to record a token that has already expired).")
    var allowPast = false

    @Option(name: .customLong("cacert"), help: ArgumentHelp("A PEM file of CA certificates to verify the https URL's server with, instead of the system's.", valueName: "path"))
    var caCertificates: String?

    @Option(help: ArgumentHelp("Warn this long before it expires (default: the vault's window, 14d).", valueName: "duration"))
    var warnWithin: String?

    func run() throws {
        try Failure.report {
            let kind = try FieldInput.kind(kind)
            let fields = EntryFields(
                kind: kind.rawValue,
                headerTemplate: try headerTemplate.map(FieldInput.headerTemplate) ?? kind.defaultHeaderTemplate,
                url: try url.map(FieldInput.url),
                description: description,
                expiresAt: try expires.flatMap { try FieldInput.expiry($0, allowPast: allowPast) },
                caCertificates: try caCertificates.map(FieldInput.caCertificates))
            let window = try warnWithin.map {
                try WindowInput.parse($0, policy: ExpiryPolicy(now: Vault.currentTime(), zone: SystemZone()))
            }
            try EntryName.validate(name)
            try FieldInput.checkKind(fields, name: name)
            let vault = try vaultOptions.open()
            // Say so before the user pastes a secret and types a passphrase.
            if (try? vault.metadata(named: name)) != nil { throw StorageError.entryExists(name: name) }
            let secret = try NewSecret.read(for: name, unlockOptions: unlockOptions)
            let unlocked = try unlockOptions.unlock(vault)
            let stored = try unlocked.add(name: name, fields: fields, secret: secret, warnWithin: window)
            Output.info("stored \(name.debugDescription) (\(kind.rawValue), fingerprint \(stored.fingerprintHex.prefix(12))), read back and verified")
        }
    }
}
