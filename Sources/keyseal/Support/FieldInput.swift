import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Parses what users type for an entry's fields, each failure a usage error
/// with an example that works.
enum FieldInput {
    static func kind(_ text: String) throws -> CredentialKind {
        guard let kind = CredentialKind(rawValue: text), CredentialKind.storable.contains(kind) else {
            let names = CredentialKind.storable.map(\.rawValue).joined(separator: ", ")
            throw CLIError(.usage, "unknown kind \(text.debugDescription)", hint: "choose one of \(names)")
        }
        return kind
    }

    /// A bearer entry's API key is exchanged at its base URL: it needs one,
    /// https, or http to a loopback address.
    static func checkKind(_ fields: EntryFields, name: String) throws {
        if fields.caCertificates != nil, fields.url.flatMap({ try? ServiceURL($0) })?.scheme != "https" {
            throw CLIError(.usage, "--cacert is for an entry whose URL is https://", hint: "give --url https://… as well")
        }
        guard fields.kind == CredentialKind.bearer.rawValue else { return }
        guard let text = fields.url, let base = try? ServiceURL(text) else {
            throw CLIError(.usage, "a bearer entry needs the base URL its API key is exchanged at",
                           hint: "add --url https://immuta.example.com")
        }
        guard base.scheme == "https" || base.isLoopback else {
            throw CLIError(.usage, "\(base.origin) is plain http: keyseal sends an API key over http only to a loopback address",
                           hint: "use https://")
        }
    }

    /// A CA certificates file for TLS with the entry's URL: stored as an
    /// absolute path, and it must be a readable file now.
    static func caCertificates(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else {
            throw CLIError(.usage, "cannot use \(path.debugDescription) as CA certificates: \(String(cString: strerror(errno)))",
                           hint: "give a PEM file, for example --cacert /etc/ssl/private-ca.pem")
        }
        defer { free(resolved) }
        var info = stat()
        guard stat(resolved, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(resolved, R_OK) == 0 else {
            throw CLIError(.usage, "\(path.debugDescription) is not a readable file of CA certificates",
                           hint: "give a PEM file, for example --cacert /etc/ssl/private-ca.pem")
        }
        return String(cString: resolved)
    }

    static func headerTemplate(_ text: String) throws -> String {
        do {
            return try HeaderTemplate(text).text
        } catch {
            throw CLIError(.usage, "\(error)", hint: "for example --header 'X-API-Key: {secret}'")
        }
    }

    /// A base URL, stored in its normal form (lowercase host, no default port,
    /// no trailing slash).
    static func url(_ text: String) throws -> String {
        do {
            return try ServiceURL(text).text
        } catch {
            throw CLIError(.usage, "\(error)", hint: "for example --url https://immuta.example.com")
        }
    }

    static func expiry(_ text: String, allowPast: Bool) throws -> Int64? {
        do {
            return try ExpiryParser(now: Vault.currentTime(), zone: SystemZone()).parse(text, allowPast: allowPast).instant
        } catch {
            let hint = if case .inThePast = error { "to record a token that has already expired, add --allow-past" }
                else { "for example --expires 2027-01-31, --expires 90d or --expires never" }
            throw CLIError(.usage, "\(error)", hint: hint)
        }
    }
}

/// Reads a new secret for `add` and `rotate`: a hidden prompt on a terminal,
/// else stdin to its end less one final newline. One line, 1 to 65536 bytes.
enum NewSecret {
    static func read(for name: String, unlockOptions: UnlockOptions) throws -> SecretBytes {
        if unlockOptions.passphraseFD == 0 && !Output.isTerminal(0) {
            throw CLIError(.usage, "stdin cannot carry both the passphrase and the secret",
                           hint: "give the passphrase on another descriptor, for example --passphrase-fd 3 3<file")
        }
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
