import ArgumentParser
import Policy
import Sealing
import Storage

extension HeaderFormat: ExpressibleByArgument {}

struct Header: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "header",
        abstract: "Print an entry's ready HTTP header, for curl.",
        discussion: """
            Formats: line (default) prints "Authorization: Bearer …" for \
            curl -H @-; curl prints a config line (header = "…") for curl -K -; \
            http prints the header ending in CR LF; json prints \
            {"name": …, "value": …}. Examples:
              keyseal header immuta | curl -H @- https://immuta.example.com/bim/user/current
              keyseal header immuta --format curl | curl -K - https://immuta.example.com/bim/user/current
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's name.")
    var name: String

    @Option(help: ArgumentHelp("line, curl, http or json.", valueName: "format"))
    var format: HeaderFormat = .line

    @OptionGroup var expiryOptions: ExpiryUseOptions

    func run() throws {
        try request.run()
    }

    var request: HeaderRequest {
        HeaderRequest(location: vaultOptions.location, unlock: unlockOptions.method, name: name, format: format,
                      refuseExpired: expiryOptions.refuseExpired)
    }
}

/// What `keyseal header` was asked, as plain values: argument-parser fills it
/// through Header, the fast path (HeaderFastPath) directly.
struct HeaderRequest: Equatable {
    var location: VaultLocation
    var unlock: UnlockMethod
    var name: String
    var format: HeaderFormat = .line
    var refuseExpired = false

    func run() throws {
        try Failure.report {
            let vault = try location.open()
            // One read of the row: checked against the policy (a refusal
            // comes before any passphrase prompt), then opened.
            let sealed = try vault.sealedEntry(named: name)
            try ExpiryReport(vault: vault).checkBeforeUse(sealed.metadata, refuseExpired: refuseExpired)
            let unlocked = try unlock.unlock(vault)
            let entry = try unlocked.open(sealed)
            let template = try StoredTemplate.parse(entry.metadata)
            try EntryValue.use(entry, read: sealed, in: unlocked) { secret, _ in
                if format == .json && !secret.isValidUTF8 {
                    throw CLIError(.usage, "the secret of \(name.debugDescription) is not UTF-8 text, which JSON cannot carry",
                                   hint: "use --format line or curl")
                }
                try Output.secret(HeaderRenderer.render(template, secret: secret, as: format))
            }
        }
    }
}

enum StoredTemplate {
    /// The entry's template, checked again: it was validated when stored and
    /// is bound into the seal, so a failure here means a damaged vault.
    static func parse(_ metadata: EntryMetadata) throws -> HeaderTemplate {
        do {
            return try HeaderTemplate(metadata.fields.headerTemplate)
        } catch {
            throw CLIError(.data, "entry \(metadata.name.debugDescription) has an unusable header template: \(error)",
                           hint: "set one with keyseal edit \(metadata.name) --header 'Authorization: Bearer {secret}'")
        }
    }
}
