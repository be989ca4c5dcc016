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
        guard case let .found(curl) = Launcher.find("curl") else {
            throw CLIError(.unavailable, "curl was not found on PATH; keyseal talks to the Request app through it",
                           hint: "install it (Debian: apt install curl)")
        }
        var fields: [(String, JSON)] = [("description", .string(description))]
        if let expiresAt { fields.append(("expirationDate", .string(Timestamp.iso8601(expiresAt)))) }
        let body = Array(JSON.object(fields).rendered.utf8)
        var request = try SecretBytes(count: body.count)
        request.withUnsafeMutableBytes { $0.copyBytes(from: body) }

        let descriptor = try ConfigPipe.fill(with: header)
        defer { close(descriptor) }
        var arguments = [
            "curl", "-q", "--silent", "--show-error", "--proto", "=http,https", "--max-time", String(timeout),
            "-K", "/dev/fd/\(descriptor)", "-X", "POST", "-H", "Content-Type: application/json", "-H", "Accept: application/json",
            "--data-binary", "@-", "--write-out", "\n%{http_code}",
        ]
        if base.scheme == "http" { arguments += ["--noproxy", "*"] }
        if let caCertificates { arguments += ["--cacert", caCertificates] }
        arguments.append(base.text + tokensPath)
        let result = try ChildProcess.run(
            curl, arguments: arguments, environment: Launcher.environment(droppingPrefix: "KEYSEAL_"),
            input: request, maxOutput: BearerExchange.maxAnswer)
        try BearerExchange.checkTransport(result.status, result.errorText, host: base.origin, timeout: timeout)
        if result.outputTruncated { throw notExpected(base, "it is over \(BearerExchange.maxAnswer / 1024) KiB") }
        return try result.output.withUnsafeBytes { bytes throws -> CreatedToken in
            guard let newline = bytes.lastIndex(of: 0x0A),
                  let status = Int(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(newline + 1)...]), as: UTF8.self))
            else { throw notExpected(base, "curl reported no HTTP status") }
            var answer = ExchangeAnswer.read(UnsafeRawBufferPointer(rebasing: bytes[..<newline]))
            if status == 401 || status == 403 {
                let regionHint = answer?.message == "Not authenticated."
                throw CLIError(.unlock, "\(base.origin) refused the credential \(credential.debugDescription) (HTTP \(status)) when asked for a PAT",
                               hint: regionHint
                                   ? "Immuta keeps PATs under one region's base path (na, eu, ap): check the URL of \(credential.debugDescription)"
                                   : "check that \(credential.debugDescription) is valid for this Immuta")
            }
            guard (200..<300).contains(status) else {
                throw CLIError(.protocolError, "\(base.origin) answered HTTP \(status) to the PAT request", hint: "try again later")
            }
            guard let tokenID = answer?.tokenID, !tokenID.isEmpty, tokenID.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }),
                  let token = answer?.token.take(), token.count > 0, !token.containsAny(of: [0x0A, 0x0D, 0x00])
            else { throw notExpected(base, "no {\"tokenId\": …, \"token\": …} in it") }
            return CreatedToken(tokenID: tokenID, token: token)
        }
    }

    private static func notExpected(_ base: ServiceURL, _ why: String) -> CLIError {
        CLIError(.protocolError, "the answer from \(base.origin)\(tokensPath) is not the expected JSON: \(why)",
                 hint: "check that the credential's URL is the Immuta base URL")
    }
}
