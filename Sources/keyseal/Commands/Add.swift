import ArgumentParser
import Policy
import Sealing
import Storage

struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
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

    @Option(help: ArgumentHelp("api-key (sent as it is), pat or token (sent as Bearer).", valueName: "kind"))
    var kind: String = CredentialKind.token.rawValue

    @Option(name: .customLong("header"), help: ArgumentHelp(
        "A header template with one {secret}, for example 'X-API-Key: {secret}' (default: the kind's).",
        valueName: "template"))
    var headerTemplate: String?

    @Option(help: ArgumentHelp("What the secret is for.", valueName: "text"))
    var description: String = ""

    func run() throws {
        try Failure.report {
            let kind = try parsedKind()
            let template = try headerTemplate.map { (text) throws -> String in
                do { return try HeaderTemplate(text).text } catch {
                    throw CLIError(.usage, "\(error)", hint: "for example --header 'X-API-Key: {secret}'")
                }
            } ?? kind.defaultHeaderTemplate
            try EntryName.validate(name)
            let vault = try vaultOptions.open()
            // Say so before the user pastes a secret and types a passphrase.
            if (try? vault.metadata(named: name)) != nil { throw StorageError.entryExists(name: name) }
            if unlockOptions.passphraseFD == 0 && !Output.isTerminal(0) {
                throw CLIError(.usage, "stdin cannot carry both the passphrase and the secret",
                               hint: "give the passphrase on another descriptor, for example --passphrase-fd 3 3<file")
            }
            let secret = try readSecret()
            let unlocked = try unlockOptions.unlock(vault)
            let fields = EntryFields(kind: kind.rawValue, headerTemplate: template, description: description)
            let stored = try unlocked.add(name: name, fields: fields, secret: secret)
            Output.info("stored \(name.debugDescription) (\(kind.rawValue), fingerprint \(stored.fingerprintHex.prefix(12))), read back and verified")
        }
    }

    private func parsedKind() throws -> CredentialKind {
        guard let kind = CredentialKind(rawValue: kind), CredentialKind.storable.contains(kind) else {
            let names = CredentialKind.storable.map(\.rawValue).joined(separator: ", ")
            throw CLIError(.usage, "unknown kind \(kind.debugDescription)", hint: "choose one of \(names)")
        }
        return kind
    }

    private func readSecret() throws -> SecretBytes {
        let secret: SecretBytes
        if Output.isTerminal(0) {
            secret = try Terminal.readHidden(fd: 0, prompt: "Secret for \(name) (input hidden): ", limit: Vault.maxSecretLength)
        } else {
            secret = try SecretReader.readToEnd(fd: 0, limit: Vault.maxSecretLength, what: "secret")
        }
        if secret.count == 0 {
            throw CLIError(.usage, "the secret is empty", hint: "pipe it in, for example: pbpaste | keyseal add \(name)")
        }
        if secret.containsAny(of: [0x0D, 0x0A, 0x00]) {
            throw CLIError(.usage, "the secret holds a carriage return, line feed or NUL byte",
                           hint: "a token is one line; check what was pasted (only one final newline is removed)")
        }
        return secret
    }
}
