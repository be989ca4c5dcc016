import ArgumentParser
import Policy
import Storage

struct Login: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Exchange a bearer entry's API key for a token, to check that it works.",
        discussion: """
            POST <url>/bim/apikey/authenticate with the entry's API key (through \
            curl, the key on its stdin). header, curl and run do the same for a \
            bearer entry when it has no kept token, or one older than its max age \
            (edit --max-age); login exchanges when they would, or always with \
            --refresh, reports the outcome and prints no token. \
            Exit status: 0 a token was issued, 77 the key was refused, 69 the \
            server could not be reached (or TLS failed, or it timed out), 76 its \
            answer was not the expected JSON.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The bearer entry's name.")
    var name: String

    @Flag(help: "Exchange even when a kept token is still young enough.")
    var refresh = false

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let sealed = try vault.sealedEntry(named: name)
            let metadata = sealed.metadata
            guard metadata.fields.kind == CredentialKind.bearer.rawValue else {
                throw CLIError(.usage, "\(name.debugDescription) is a \(metadata.fields.kind) entry; only bearer entries hold an API key to exchange",
                               hint: "store the key with keyseal add NAME --kind bearer --url https://immuta.example.com")
            }
            let base = try BearerExchange.baseURL(of: metadata)
            let unlocked = try unlockOptions.unlock(vault)
            let entry = try unlocked.open(sealed)
            let before = try vault.keptToken(of: sealed)
            let length = try EntryValue.use(entry, read: sealed, in: unlocked, refresh: refresh) { token, _ in token.count }
            let after = try vault.keptToken(of: sealed)
            if let after, after == before {
                Output.info("\(name.debugDescription) has a token from \(Vault.currentTime() - after.obtainedAt) s ago; keyseal login --refresh gets a new one")
            } else {
                Output.info("\(base.origin) accepted the API key of \(name.debugDescription) and issued a bearer token (\(length) bytes)")
            }
        }
    }
}
