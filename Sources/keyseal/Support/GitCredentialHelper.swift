import Policy
import Sealing
import Storage

/// What `keyseal git-credential` does for each of git's operations. Each
/// one finds the entry from metadata alone, so a request no entry matches
/// never asks for a passphrase.
struct GitCredentialHelper {
    let vaultOptions: VaultOptions
    let unlockOptions: UnlockOptions
    let refuseExpired: Bool

    /// Prints username, password and (if the entry has one) password_expiry_utc
    /// for the matching entry; nothing when none matches.
    func get(_ input: borrowing GitCredentialInput, username: String) throws {
        guard let url = input.request.url else { return }
        let vault = try vaultOptions.open()
        guard let name = try Self.match(url, in: vault) else { return }
        guard GitCredentialRequest.mayReceiveCredential(url) else {
            Output.warning("not giving \(name.debugDescription) to \(url.origin): plain http is only for this machine's own addresses")
            return
        }
        // One read of the row: checked against the policy (a refusal comes
        // before any prompt), then opened.
        let sealed = try vault.sealedEntry(named: name)
        try ExpiryReport(vault: vault).checkBeforeUse(sealed.metadata, refuseExpired: refuseExpired)
        let unlocked = try unlockOptions.unlock(vault)
        let entry = try unlocked.open(sealed)
        // A line break would end the password early and start a line of its own.
        if entry.secret.containsAny(of: [0x0A, 0x0D, 0x00]) {
            throw CLIError(.data, "the secret of \(name.debugDescription) holds a line break or NUL, which git's protocol cannot carry",
                           hint: "rotate it: keyseal rotate \(ShellQuote.quote(name))")
        }
        try Output.data("username=\(input.request.username ?? username)\npassword=")
        try Output.secret(entry.secret)
        let expiry = entry.metadata.fields.expiresAt.map { "password_expiry_utc=\($0)\n" } ?? ""
        try Output.data("\n" + expiry)
    }

    /// With --allow-store: rotates the matching entry to the password git
    /// used, if it differs (the old value is kept 30 days), or adds a pat
    /// entry for the URL when none matches.
    func store(_ input: borrowing GitCredentialInput) throws {
        guard input.password.count > 0, let url = input.request.url, GitCredentialRequest.mayReceiveCredential(url) else { return }
        let vault = try vaultOptions.open()
        guard let name = try Self.match(url, in: vault) else {
            try add(input, url: url, to: vault)
            return
        }
        let sealed = try vault.sealedEntry(named: name)
        let unlocked = try unlockOptions.unlock(vault)
        let entry = try unlocked.open(sealed)
        if entry.secret.constantTimeEquals(input.password) { return }
        let stored = try unlocked.rotate(name, to: input.password)
        Output.info("rotated \(name.debugDescription) to the password git used (fingerprint \(stored.fingerprintHex.prefix(12))); previous value kept for 30 days")
    }

    private func add(_ input: borrowing GitCredentialInput, url: ServiceURL, to vault: Vault) throws {
        let name = try Self.freeName(input.request.entryName, in: vault)
        let kind = CredentialKind.pat
        let fields = EntryFields(kind: kind.rawValue, headerTemplate: kind.defaultHeaderTemplate, url: url.text,
                                 description: "stored by git")
        let unlocked = try unlockOptions.unlock(vault)
        let stored = try unlocked.add(name: name, fields: fields, secret: input.password)
        Output.info("stored \(name.debugDescription) for \(url.text) (pat, fingerprint \(stored.fingerprintHex.prefix(12))), read back and verified")
    }

    /// With --allow-store: removes the matching entry, but only when its
    /// secret is the password git sent (compared in constant time), so git
    /// can drop the PAT it was just refused and nothing else.
    func erase(_ input: borrowing GitCredentialInput) throws {
        guard input.password.count > 0, let url = input.request.url, GitCredentialRequest.mayReceiveCredential(url) else { return }
        let vault = try vaultOptions.open()
        guard let name = try Self.match(url, in: vault) else { return }
        let sealed = try vault.sealedEntry(named: name)
        let unlocked = try unlockOptions.unlock(vault)
        let entry = try unlocked.open(sealed)
        guard entry.secret.constantTimeEquals(input.password) else { return }
        // git erases after any refusal, even a passing outage: the entry is
        // kept in an automatic backup first, so nothing stored is lost.
        let saved = try vault.automaticBackup(reason: "before-git-erase")
        try unlocked.remove(name)
        Output.info("removed \(name.debugDescription): git erased its password; the vault as it was is kept at \(saved)")
    }

    /// The one entry whose URL serves `url` best (CredentialMatch). Bearer
    /// entries hold API keys that are only ever exchanged, so never match.
    static func match(_ url: ServiceURL, in vault: Vault) throws -> String? {
        let candidates = try vault.entries().compactMap { entry -> (name: String, url: ServiceURL)? in
            guard entry.fields.kind != CredentialKind.bearer.rawValue,
                  let text = entry.fields.url, let base = try? ServiceURL(text) else { return nil }
            return (entry.name, base)
        }
        switch CredentialMatch.best(for: url, among: candidates) {
        case .none:
            return nil
        case let .one(name):
            return name
        case let .ambiguous(names):
            let list = names.map(\.debugDescription).joined(separator: ", ")
            throw CLIError(.failure, "entries \(list) all serve \(url.text) equally; keyseal gives git none of them",
                           hint: "keep one: give the others another URL (keyseal edit NAME --url ...) or remove them")
        }
    }

    /// `base`, or base-2, base-3, ... if an entry already has that name.
    static func freeName(_ base: String, in vault: Vault) throws -> String {
        try EntryName.validate(base)
        let taken = Set(try vault.entries().map(\.name))
        var name = base
        var number = 2
        while taken.contains(name) {
            let suffix = "-\(number)"
            name = String(base.utf8.prefix(EntryName.maxUTF8Length - suffix.utf8.count)).map { $0 + suffix } ?? base + suffix
            number += 1
        }
        return name
    }
}
