import Policy
import Sealing
import Storage

/// Immuta's bearer token method: `POST <base>/bim/apikey/authenticate` with
/// `{"apikey": "<key>"}` answers `{"authenticated": true, "token": "…"}`.
///
/// The transport is the system curl, run only for an exchange, so no network
/// code is linked into keyseal and `header` of every other kind costs what
/// it did. The request body (the API key) reaches curl on stdin, never in
/// argv; the answer (the token) comes back on a pipe into guarded memory.
/// TLS is curl's, verified against the system CAs or the entry's own CA
/// file (--cacert); plain http:// only to a loopback address; no redirect is
/// followed.
enum BearerExchange {
    static let path = "/bim/apikey/authenticate"
    /// Seconds for the whole exchange, unless the vault's exchange-timeout says otherwise.
    static let defaultTimeout: Int64 = 10
    static let timeoutRange: ClosedRange<Int64> = 1...300
    /// Larger answers are not an exchange's.
    static let maxAnswer = 65_536

    /// A new bearer token for `entry`, whose secret is the API key.
    static func token(for entry: borrowing OpenedEntry, timeout: Int64) throws -> SecretBytes {
        let name = entry.metadata.name
        let base = try baseURL(of: entry.metadata)
        guard case let .found(curl) = Launcher.find("curl") else {
            throw CLIError(.unavailable, "curl was not found on PATH; keyseal exchanges API keys through it",
                           hint: "install it (Debian: apt install curl)")
        }
        var body = try SecretBuilder(capacity: SecretBuilder.capacity(secret: entry.secret, texts: ["{\"apikey\":\"\"}"]))
        body.append("{\"apikey\":\"")
        body.append(entry.secret, escaping: .json)
        body.append("\"}")
        let request = try body.finish()

        var arguments = [
            "curl", "-q", "--silent", "--show-error", "--proto", "=http,https", "--max-time", String(timeout),
            "-X", "POST", "-H", "Content-Type: application/json", "-H", "Accept: application/json",
            "--data-binary", "@-", "--write-out", "\n%{http_code}",
        ]
        // A proxy would see a plain-http body; loopback needs none.
        if base.scheme == "http" { arguments += ["--noproxy", "*"] }
        if let caCertificates = entry.metadata.fields.caCertificates { arguments += ["--cacert", caCertificates] }
        arguments.append(base.text + path)
        let result = try ChildProcess.run(
            curl, arguments: arguments, environment: Launcher.environment(droppingPrefix: "KEYSEAL_"),
            input: request, maxOutput: maxAnswer)
        try checkTransport(result.status, result.errorText, host: base.origin, timeout: timeout)
        if result.outputTruncated {
            throw notExpected(base, "it is over \(maxAnswer / 1024) KiB")
        }
        return try result.output.withUnsafeBytes { bytes throws -> SecretBytes in
            // curl's --write-out puts "\n<status>" after the body.
            guard let newline = bytes.lastIndex(of: 0x0A),
                  let status = Int(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(newline + 1)...]), as: UTF8.self))
            else { throw notExpected(base, "curl reported no HTTP status") }
            let answer = ExchangeAnswer.read(UnsafeRawBufferPointer(rebasing: bytes[..<newline]))
            return try interpret(status: status, answer: answer, base: base, name: name)
        }
    }

    /// The entry's base URL, which must be https, or http to a loopback address.
    static func baseURL(of metadata: EntryMetadata) throws -> ServiceURL {
        let name = metadata.name
        guard let text = metadata.fields.url, let base = try? ServiceURL(text) else {
            throw CLIError(.usage, "\(name.debugDescription) has no base URL to exchange its API key at",
                           hint: "set it: keyseal edit \(ShellQuote.quote(name)) --url https://immuta.example.com")
        }
        guard base.scheme == "https" || base.isLoopback else {
            throw CLIError(.usage, "\(base.origin) is plain http: keyseal sends an API key over http only to a loopback address",
                           hint: "use https://")
        }
        return base
    }

    /// curl's own failures: the host unreachable, TLS, the timeout.
    static func checkTransport(_ status: Int32, _ errorText: String, host: String, timeout: Int64) throws {
        let detail = errorText.split(separator: "\n").last.map { ": " + TextTable.printable(String($0)) } ?? ""
        switch status {
        case 0:
            return
        case 6, 7:
            throw CLIError(.unavailable, "cannot reach \(host)\(detail)", hint: "check the entry's URL and your network")
        case 28:
            throw CLIError(.unavailable, "\(host) did not answer within \(timeout) s",
                           hint: "try again, or allow longer: keyseal config set exchange-timeout 30s")
        case 35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91:
            throw CLIError(.unavailable, "TLS with \(host) failed\(detail)",
                           hint: "keyseal verifies the server against the system's CA certificates")
        case 52, 55, 56:
            throw CLIError(.unavailable, "the connection to \(host) broke off\(detail)", hint: "try again")
        default:
            throw CLIError(.failure, "curl failed talking to \(host) (exit \(status))\(detail)")
        }
    }

    private static func interpret(status: Int, answer: consuming ExchangeAnswer?, base: ServiceURL, name: String) throws -> SecretBytes {
        let host = base.origin
        if status == 401, let message = answer?.message, message == "Not authenticated." {
            throw CLIError(.unlock, "\(host) answered 401 \"Not authenticated.\" to the API key of \(name.debugDescription)",
                           hint: "Immuta keeps each region's data under its own base path (na, eu, ap): check the entry's URL, then the key")
        }
        if status == 401 || status == 403 || answer?.authenticated == false {
            throw CLIError(.unlock, "the API key was refused by \(host)",
                           hint: "check the key; store a new one with keyseal rotate \(ShellQuote.quote(name))")
        }
        guard (200..<300).contains(status) else {
            throw CLIError(.protocolError, "\(host) answered HTTP \(status) to the API key exchange", hint: "try again later")
        }
        guard var answer, answer.authenticated == true, let token = answer.token.take() else {
            throw notExpected(base, "no {\"authenticated\": true, \"token\": …} in it")
        }
        guard token.count > 0, !token.containsAny(of: [0x0A, 0x0D, 0x00]) else {
            throw notExpected(base, "the token is empty or holds a line break")
        }
        return token
    }

    private static func notExpected(_ base: ServiceURL, _ why: String) -> CLIError {
        CLIError(.protocolError, "the answer from \(base.origin)\(path) is not the expected JSON: \(why)",
                 hint: "check that the entry's URL is the Immuta base URL")
    }
}

/// The value an entry is used with: its secret, or for a `bearer` entry a
/// token: the one kept from an earlier exchange while it is younger than the
/// entry's max age (then `body` gets its `obtained_at` too), else one the
/// exchange obtains now (and keeps). The key itself is never sent anywhere
/// but the exchange.
enum EntryValue {
    static func use<R: ~Copyable>(
        _ entry: borrowing OpenedEntry, read sealed: SealedEntry, in unlocked: UnlockedVault, refresh: Bool = false,
        _ body: (borrowing SecretBytes, _ keptSince: Int64?) throws -> R
    ) throws -> R {
        guard entry.metadata.fields.kind == CredentialKind.bearer.rawValue else { return try body(entry.secret, nil) }
        let vault = unlocked.vault
        let now = Vault.currentTime()
        if !refresh, let kept = try vault.keptToken(of: sealed),
           !TokenAge.isStale(obtainedAt: kept.obtainedAt, maxAge: entry.metadata.maxAge, now: now) {
            return try body(try unlocked.open(kept, of: sealed), kept.obtainedAt)
        }
        let token = try BearerExchange.token(for: entry, timeout: try exchangeTimeout(vault))
        do {
            try unlocked.keep(token, for: sealed, obtainedAt: now)
        } catch {
            // The token still works for this call; the next one exchanges again.
            Output.warning("could not keep the new token of \(entry.metadata.name.debugDescription): \(Failure.message(for: error))")
        }
        return try body(token, nil)
    }

    static func exchangeTimeout(_ vault: Vault) throws -> Int64 {
        guard let stored = try vault.setting(VaultSetting.exchangeTimeout.rawValue) else { return BearerExchange.defaultTimeout }
        guard let seconds = Int64(stored), BearerExchange.timeoutRange.contains(seconds) else {
            Output.warning("ignoring the vault setting exchange-timeout=\(stored.debugDescription); fix it with keyseal config set exchange-timeout 10s")
            return BearerExchange.defaultTimeout
        }
        return seconds
    }
}
