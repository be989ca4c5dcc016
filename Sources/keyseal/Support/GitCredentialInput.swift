import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// A credential request from git, read from stdin into guarded memory: the
/// password git sends to `store` and `erase` stays there, never a String.
struct GitCredentialInput: ~Copyable {
    let request: GitCredentialRequest
    /// Empty when git sent none (an empty password is never stored anyway).
    let password: SecretBytes

    /// The whole request: a password of the longest value the vault takes, and room for the other lines.
    static let maxLength = Vault.maxSecretLength + 16 * 1024

    static func read(fd: Int32 = STDIN_FILENO) throws -> GitCredentialInput {
        let raw: SecretBytes
        do {
            raw = try SecretReader.readToEnd(fd: fd, limit: maxLength, what: "credential request")
        } catch let error as CLIError where error.status == .usage {
            throw CLIError(.usage, error.message, hint: "git sends a few short key=value lines; check what runs this helper")
        }
        return try raw.withUnsafeBytes { bytes in
            let request: GitCredentialRequest
            do {
                request = try GitCredentialRequest.parse(bytes)
            } catch {
                throw CLIError(.usage, "\(error)", hint: "git sends key=value lines (git-credential(1)); check what runs this helper")
            }
            let range = request.passwordRange ?? 0..<0
            let password = try SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[range]))
            return GitCredentialInput(request: request, password: password)
        }
    }
}

extension GitCredentialRequest {
    /// The URL git asks about, as a ServiceURL, or nil when it is not an
    /// http(s) URL keyseal can read (git then asks its other helpers).
    var url: ServiceURL? {
        guard let scheme = self.protocol?.lowercased(), scheme == "https" || scheme == "http",
              let host, !host.isEmpty else { return nil }
        let encodedPath = path.map { "/" + Self.percentEncoded($0) } ?? ""
        return try? ServiceURL("\(scheme)://\(host)\(encodedPath)")
    }

    /// Whether a credential may go to this URL at all: https, or plain http
    /// only to this machine (as for a bearer entry's exchange).
    static func mayReceiveCredential(_ url: ServiceURL) -> Bool {
        url.scheme == "https" || url.isLoopback
    }

    /// git sends the path percent-decoded; entry URLs keep the encoded form
    /// (ServiceURL takes printable ASCII only), so bytes outside it, and the
    /// characters that would end a path, are encoded again.
    static func percentEncoded(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "%") && byte != UInt8(ascii: "?") && byte != UInt8(ascii: "#") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// The name `store` gives a new entry: git/<host>/<path>, made a valid
    /// entry name (control characters replaced, at most 200 bytes).
    var entryName: String {
        var name = "git/" + (host ?? "")
        if let path, !path.isEmpty { name += "/" + path }
        while name.hasSuffix("/") { name.removeLast() }
        var cleaned = ""
        for scalar in name.unicodeScalars {
            let category = scalar.properties.generalCategory
            let bad = [.control, .lineSeparator, .paragraphSeparator, .format, .surrogate].contains(category)
            let next = bad ? "-" : String(scalar)
            if cleaned.utf8.count + next.utf8.count > EntryName.maxUTF8Length { break }
            cleaned += next
        }
        while let last = cleaned.last, last.isWhitespace { cleaned.removeLast() }
        return cleaned
    }
}
