import ArgumentParser
import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

struct Pat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pat",
        abstract: "Personal access tokens in Immuta's Request app, created straight into the vault.",
        subcommands: [PatCreate.self])
}

struct PatCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a PAT on the server and store it, without it passing through a clipboard.",
        discussion: """
            POST <url>/api/auth/tokens with the header of --auth ENTRY (a bearer, \
            api-key, pat or token entry whose URL is the Request app's base). The \
            new token is stored as NAME (kind pat, the same URL, the description \
            and expiry given, the server's tokenId), committed and read back \
            before success is reported. If storing fails after the server made \
            the token, keyseal shows the token once, on the terminal (else on \
            standard output), with the tokenId to revoke: it is never lost \
            silently.
              keyseal pat create nightly --auth immuta --description "nightly export" --expires 90d
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The name to store the new PAT under.")
    var name: String

    @Option(help: ArgumentHelp("The entry to authenticate the request with.", valueName: "entry"))
    var auth: String

    @Option(help: ArgumentHelp("What the PAT is for (shown by Immuta and by keyseal).", valueName: "text"))
    var description: String

    @Option(help: ArgumentHelp("When it expires: 2027-01-31, 90d, … or never (the default).", valueName: "when"))
    var expires: String = "never"

    func run() throws {
        try Failure.report {
            try EntryName.validate(name)
            let expiresAt = try FieldInput.expiry(expires, allowPast: false)
            let vault = try vaultOptions.open()
            // Everything that could stop the store is checked before the
            // server makes a token: the name, the credential, the unlock.
            if (try? vault.metadata(named: name)) != nil { throw StorageError.entryExists(name: name) }
            let authSealed = try vault.sealedEntry(named: auth)
            let base = try BearerExchange.baseURL(of: authSealed.metadata)
            let unlocked = try unlockOptions.unlock(vault)
            let authEntry = try unlocked.open(authSealed)
            let template = try StoredTemplate.parse(authEntry.metadata)
            let header = try EntryValue.use(authEntry, read: authSealed, in: unlocked) { secret, _ in
                try HeaderRenderer.render(template, secret: secret, as: .curl)
            }
            let caCertificates = authEntry.metadata.fields.caCertificates
            let created = try RequestApp.createToken(
                header: header, credential: auth, base: base, caCertificates: caCertificates,
                description: description, expiresAt: expiresAt, timeout: try EntryValue.exchangeTimeout(vault))
            let fields = EntryFields(kind: CredentialKind.pat.rawValue, headerTemplate: CredentialKind.pat.defaultHeaderTemplate,
                                     url: base.text, description: description, expiresAt: expiresAt, caCertificates: caCertificates)
            do {
                let stored = try unlocked.add(name: name, fields: fields, secret: created.token, remoteID: created.tokenID)
                Output.info("\(base.origin) created PAT \(created.tokenID); stored as \(name.debugDescription) (pat, fingerprint "
                    + "\(stored.fingerprintHex.prefix(12))), read back and verified")
            } catch {
                try Self.showOnce(created.token)
                throw CLIError(.failure, "\(base.origin) created PAT \(created.tokenID), but keyseal could not store it: \(Failure.message(for: error))",
                               hint: "store the token shown above now (keyseal add \(ShellQuote.quote(name)) --kind pat --url \(base.text)), "
                                   + "or revoke it in Immuta (tokenId \(created.tokenID))")
            }
        }
    }

    /// The token, once: on the terminal if there is one, else on standard
    /// output (where the caller asked the command's output to go).
    static func showOnce(_ token: borrowing SecretBytes) throws {
        let terminal = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC)
        let fd = terminal >= 0 ? terminal : STDOUT_FILENO
        defer { if terminal >= 0 { close(terminal) } }
        Output.write(fd, "keyseal: the new PAT, shown once because it could not be stored:\n")
        try Output.secret(token, to: fd)
        Output.write(fd, "\n")
    }
}
