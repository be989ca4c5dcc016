import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Immuta's Request app PAT API: `POST <base>/api/auth/tokens` with
/// `{"description": …, "expirationDate": "<ISO 8601>"}` (no date: no
/// expiration) answers `{"tokenId": "<uuid>", "token": "<pat>"}`.
///
/// Like the bearer exchange, it runs the system curl: the credential's header
/// reaches curl as a config on an inherited pipe (as `keyseal curl` passes
/// it), the JSON body on stdin, and the answer, which holds the new token,
/// comes back into guarded memory.
enum RequestApp {
    static let tokensPath = "/api/auth/tokens"

    struct CreatedToken: ~Copyable {
        let tokenID: String
        let token: SecretBytes
    }

    /// Creates a PAT with the credential whose curl config line is `header`.
    static func createToken(
        header: borrowing SecretBytes, credential: String, base: ServiceURL, caCertificates: String?,
        description: String, expiresAt: Int64?, timeout: Int64
    ) throws -> CreatedToken {
        var fields: [(String, JSON)] = [("description", .string(description))]
        if let expiresAt { fields.append(("expirationDate", .string(Timestamp.iso8601(expiresAt)))) }
        return try call("POST", tokensPath, header: header, credential: credential, base: base, caCertificates: caCertificates,
                        body: Array(JSON.object(fields).rendered.utf8), timeout: timeout) { status, body throws -> CreatedToken in
            try checkStatus(status, body, base: base, credential: credential, what: "the PAT request")
            var answer = ExchangeAnswer.read(body)
            guard let tokenID = answer?.tokenID, isTokenID(tokenID),
                  let token = answer?.token.take(), token.count > 0, !token.containsAny(of: [0x0A, 0x0D, 0x00])
            else { throw notExpected(base, "no {\"tokenId\": …, \"token\": …} in it") }
            return CreatedToken(tokenID: tokenID, token: token)
        }
    }

    /// The server's PATs of the credential's user: `GET <base>/api/auth/tokens`.
    static func listTokens(
        header: borrowing SecretBytes, credential: String, base: ServiceURL, caCertificates: String?, timeout: Int64
    ) throws -> [RemoteToken] {
        try call("GET", tokensPath, header: header, credential: credential, base: base, caCertificates: caCertificates,
                 body: nil, timeout: timeout) { status, body throws -> [RemoteToken] in
            try checkStatus(status, body, base: base, credential: credential, what: "the PAT list")
            guard let tokens = RemoteToken.readList(body) else {
                throw notExpected(base, "not a list of {\"tokenId\", \"active\", \"expirationDate\", …}")
            }
            return tokens
        }
    }

    /// Revokes a PAT: `DELETE <base>/api/auth/tokens/<tokenId>`. False when
    /// the server does not know it (404): already gone.
    static func revokeToken(
        _ tokenID: String, header: borrowing SecretBytes, credential: String, base: ServiceURL, caCertificates: String?,
        timeout: Int64
    ) throws -> Bool {
        guard isTokenID(tokenID) else { throw CLIError(.data, "the stored token id \(tokenID.debugDescription) is not one a server gives") }
        return try call("DELETE", tokensPath + "/" + tokenID, header: header, credential: credential, base: base,
                        caCertificates: caCertificates, body: nil, timeout: timeout) { status, body throws -> Bool in
            if status == 404 { return false }
            try checkStatus(status, body, base: base, credential: credential, what: "the revocation")
            return true
        }
    }

    /// A server's token id goes into a URL path and a terminal: letters,
    /// digits and dashes only (a UUID).
    static func isTokenID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 128
            && text.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }

    /// One request through curl: the credential's header in a config on an
    /// inherited pipe, `body` (not secret) on stdin; `handle` gets the HTTP
    /// status and the answer, which is in guarded memory.
    private static func call<R: ~Copyable>(
        _ method: String, _ path: String, header: borrowing SecretBytes, credential: String, base: ServiceURL,
        caCertificates: String?, body: [UInt8]?, timeout: Int64,
        _ handle: (Int, UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        guard case let .found(curl) = Launcher.find("curl") else {
            throw CLIError(.unavailable, "curl was not found on PATH; keyseal talks to the Request app through it",
                           hint: "install it (Debian: apt install curl)")
        }
        var request = try SecretBytes(count: body?.count ?? 0)
        if let body { request.withUnsafeMutableBytes { $0.copyBytes(from: body) } }
        let descriptor = try ConfigPipe.fill(with: header)
        defer { close(descriptor) }
        var arguments = [
            "curl", "-q", "--silent", "--show-error", "--proto", "=http,https", "--max-time", String(timeout),
            "-K", "/dev/fd/\(descriptor)", "-X", method, "-H", "Accept: application/json", "--write-out", "\n%{http_code}",
        ]
        if body != nil { arguments += ["-H", "Content-Type: application/json", "--data-binary", "@-"] }
        if base.scheme == "http" { arguments += ["--noproxy", "*"] }
        if let caCertificates { arguments += ["--cacert", caCertificates] }
        arguments.append(base.text + path)
        let result = try ChildProcess.run(
            curl, arguments: arguments, environment: Launcher.environment(droppingPrefix: "KEYSEAL_"),
            input: request, maxOutput: BearerExchange.maxAnswer)
        try BearerExchange.checkTransport(result.status, result.errorText, host: base.origin, timeout: timeout)
        if result.outputTruncated { throw notExpected(base, "it is over \(BearerExchange.maxAnswer / 1024) KiB") }
        return try result.output.withUnsafeBytes { bytes throws -> R in
            guard let newline = bytes.lastIndex(of: 0x0A),
                  let status = Int(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(newline + 1)...]), as: UTF8.self))
            else { throw notExpected(base, "curl reported no HTTP status") }
            return try handle(status, UnsafeRawBufferPointer(rebasing: bytes[..<newline]))
        }
    }

    /// 401 and 403: the credential was refused (77); any other status but
    /// 2xx: an unexpected answer (76).
    private static func checkStatus(_ status: Int, _ body: UnsafeRawBufferPointer, base: ServiceURL, credential: String, what: String) throws {
        if status == 401 || status == 403 {
            let regionHint = ExchangeAnswer.read(body)?.message == "Not authenticated."
            throw CLIError(.unlock, "\(base.origin) refused the credential \(credential.debugDescription) (HTTP \(status)) for \(what)",
                           hint: regionHint
                               ? "Immuta keeps PATs under one region's base path (na, eu, ap): check the URL of \(credential.debugDescription)"
                               : "check that \(credential.debugDescription) is valid for this Immuta (a bearer entry: keyseal login --refresh)")
        }
        guard (200..<300).contains(status) else {
            throw CLIError(.protocolError, "\(base.origin) answered HTTP \(status) to \(what)", hint: "try again later")
        }
    }

    private static func notExpected(_ base: ServiceURL, _ why: String) -> CLIError {
        CLIError(.protocolError, "the answer from \(base.origin)\(tokensPath) is not the expected JSON: \(why)",
                 hint: "check that the credential's URL is the Immuta base URL")
    }
}
