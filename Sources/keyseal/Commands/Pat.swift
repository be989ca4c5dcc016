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
        subcommands: [PatCreate.self, PatSync.self, PatRevoke.self])
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

/// The credential a PAT request uses: --auth ENTRY, or the PAT itself.
private struct PatCredential: ~Copyable {
    let name: String
    let header: SecretBytes
    let caCertificates: String?

    init(_ name: String, in unlocked: UnlockedVault) throws {
        let sealed = try unlocked.vault.sealedEntry(named: name)
        let entry = try unlocked.open(sealed)
        let template = try StoredTemplate.parse(entry.metadata)
        header = try EntryValue.use(entry, read: sealed, in: unlocked) { secret, _ in
            try HeaderRenderer.render(template, secret: secret, as: .curl)
        }
        caCertificates = entry.metadata.fields.caCertificates
        self.name = name
    }
}

/// A stored PAT's server, and its id there.
private func remote(of metadata: EntryMetadata) throws -> (base: ServiceURL, tokenID: String) {
    guard let tokenID = metadata.remoteID else {
        throw CLIError(.usage, "\(metadata.name.debugDescription) has no token id: it was not made by keyseal pat create",
                       hint: "revoke it in Immuta's web interface, then keyseal rm \(ShellQuote.quote(metadata.name))")
    }
    return (try BearerExchange.baseURL(of: metadata), tokenID)
}

struct PatRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a PAT on its server, then remove its entry (or keep it, marked revoked).",
        discussion: """
            DELETE <url>/api/auth/tokens/<tokenId>, with the header of --auth ENTRY, \
            else of the PAT itself. A token the server no longer knows (404) \
            counts as revoked. Then the entry is removed, or with --keep kept and \
            marked: list and check show it as revoked, and using it warns (or, \
            with --refuse-expired, is refused).
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The PAT's entry (made by pat create).")
    var name: String

    @Option(help: ArgumentHelp("The entry to authenticate with (default: the PAT itself).", valueName: "entry"))
    var auth: String?

    @Flag(help: "Keep the entry, marked revoked, instead of removing it.")
    var keep = false

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let metadata = try vault.metadata(named: name)
            let (base, tokenID) = try remote(of: metadata)
            let unlocked = try unlockOptions.unlock(vault)
            let credential = try PatCredential(auth ?? name, in: unlocked)
            let known = try RequestApp.revokeToken(
                tokenID, header: credential.header, credential: credential.name, base: base,
                caCertificates: credential.caCertificates ?? metadata.fields.caCertificates,
                timeout: try EntryValue.exchangeTimeout(vault))
            let outcome = known ? "revoked PAT \(tokenID) on \(base.origin)" : "\(base.origin) no longer knows PAT \(tokenID)"
            if keep {
                try vault.setRemoteState(name, .revoked)
                Output.info("\(outcome); kept \(name.debugDescription), marked revoked")
            } else {
                try unlocked.remove(name)
                Output.info("\(outcome); removed \(name.debugDescription)")
            }
        }
    }
}

struct PatSync: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Update stored PATs from their server's list: expiry, and whether each is still active.",
        discussion: """
            GET <url>/api/auth/tokens for each server the PATs (all those made by \
            pat create, or the NAMEs given) come from, with the header of --auth \
            ENTRY, else of one of those PATs that is still usable. Each PAT found \
            gets the server's expiry (sealed again if it changed) and its active \
            state; one not in the list is marked missing. list and check show \
            inactive and missing PATs as revoked.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The PATs to sync (default: every one made by pat create).")
    var names: [String] = []

    @Option(help: ArgumentHelp("The entry to authenticate with.", valueName: "entry"))
    var auth: String?

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            var pats: [EntryMetadata]
            if names.isEmpty {
                pats = try vault.entries().filter { $0.remoteID != nil }
            } else {
                pats = try names.map { try vault.metadata(named: $0) }
                for pat in pats { _ = try remote(of: pat) }
            }
            guard !pats.isEmpty else {
                Output.info("no PAT made by keyseal pat create to sync")
                return
            }
            let unlocked = try unlockOptions.unlock(vault)
            let zone = SystemZone()
            let parser = ExpiryParser(now: Vault.currentTime(), zone: zone)
            // One list per server.
            let groups = Dictionary(grouping: pats) { $0.fields.url ?? "" }
            for url in groups.keys.sorted() {
                let group = groups[url]!
                let base = try remote(of: group[0]).base
                let authName = auth ?? group.first { $0.remoteState?.isUsable ?? true }?.name ?? group[0].name
                let credential = try PatCredential(authName, in: unlocked)
                let listed = try RequestApp.listTokens(
                    header: credential.header, credential: credential.name, base: base,
                    caCertificates: credential.caCertificates ?? group[0].fields.caCertificates,
                    timeout: try EntryValue.exchangeTimeout(vault))
                for pat in group {
                    guard let found = listed.first(where: { $0.tokenID == pat.remoteID }) else {
                        try vault.setRemoteState(pat.name, .missing)
                        Output.info("\(pat.name.debugDescription): not in the list of \(base.origin); marked missing")
                        continue
                    }
                    let state: RemoteState = found.active == false ? .inactive : .active
                    var expiry = pat.fields.expiresAt
                    if let text = found.expirationDate {
                        if let instant = try? parser.parse(Self.withoutFraction(text), allowPast: true).instant {
                            expiry = instant
                        } else {
                            Output.warning("\(pat.name.debugDescription): cannot read the server's expiry \(text.debugDescription); kept ours")
                        }
                    } else {
                        expiry = nil
                    }
                    if expiry != pat.fields.expiresAt {
                        try unlocked.update(pat.name) { $0.expiresAt = expiry }
                    }
                    if state != pat.remoteState { try vault.setRemoteState(pat.name, state) }
                    let when = expiry.map { "expires " + Timestamp.localDate($0, in: zone) } ?? "no expiry"
                    Output.info("\(pat.name.debugDescription): \(state.rawValue), \(when)"
                        + (expiry != pat.fields.expiresAt ? " (changed on the server)" : ""))
                }
            }
        }
    }

    /// "2027-01-31T00:00:00.000Z" → "2027-01-31T00:00:00Z": the expiry
    /// parser reads whole seconds.
    static func withoutFraction(_ text: String) -> String {
        guard let dot = text.firstIndex(of: "."), let end = text[dot...].firstIndex(where: { !$0.isNumber && $0 != "." }) else { return text }
        return String(text[..<dot] + text[end...])
    }
}
