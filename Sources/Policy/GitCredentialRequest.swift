/// What git sends a credential helper on stdin (gitcredentials(7),
/// git-credential(1)): `key=value` lines, each ending in LF, up to a blank
/// line or the end of input. Parsed over bytes the caller owns (guarded
/// memory in keyseal): the password is never made a String, only located.
public struct GitCredentialRequest: Equatable, Sendable {
    public var `protocol`: String?
    public var host: String?
    /// As git sends it: no leading slash; only with credential.useHttpPath.
    public var path: String?
    public var username: String?
    /// Where the `password=` value lies in the parsed bytes (the last one
    /// sent wins, as in git's own reader).
    public var passwordRange: Range<Int>?

    /// Values that are secrets, or may be (newer gits send OAuth refresh
    /// tokens and pre-encoded credentials): never turned into text.
    static let secretKeys: Set<String> = ["password", "oauth_refresh_token", "credential"]
    /// The only other keys kept; the rest (capability[], wwwauth[], ...) are ignored unread.
    static let keptKeys: Set<String> = ["protocol", "host", "path", "username"]

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case nul(line: Int)
        case noEquals(line: Int)
        case notUTF8(key: String)
        case emptyKey(line: Int)

        public var description: String {
            switch self {
            case let .nul(line): "line \(line) of the credential request holds a NUL byte"
            case let .noEquals(line): "line \(line) of the credential request is not key=value"
            case let .notUTF8(key): "the credential request's \(key) is not UTF-8 text"
            case let .emptyKey(line): "line \(line) of the credential request has an empty key"
            }
        }
    }

    public init(protocol: String? = nil, host: String? = nil, path: String? = nil, username: String? = nil,
                passwordRange: Range<Int>? = nil) {
        self.protocol = `protocol`
        self.host = host
        self.path = path
        self.username = username
        self.passwordRange = passwordRange
    }

    /// Parses `bytes` up to the first blank line. A NUL anywhere, or a line
    /// without `=`, is refused, as git refuses them; a final line without
    /// LF is taken as it is.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(Invalid) -> GitCredentialRequest {
        var request = GitCredentialRequest()
        // A NUL after the blank line is refused too: nothing git sends has one.
        if bytes.contains(0) {
            let upTo = bytes.firstIndex(of: 0)!
            throw .nul(line: bytes[..<upTo].count(where: { $0 == 0x0A }) + 1)
        }
        var start = 0
        var line = 0
        while start < bytes.count {
            line += 1
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            defer { start = end + 1 }
            if end == start { break }
            guard let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) else { throw .noEquals(line: line) }
            guard equals > start else { throw .emptyKey(line: line) }
            // Keys are ASCII words; one that is not UTF-8 cannot be one we know.
            guard let key = String(validating: bytes[start..<equals], as: UTF8.self) else { continue }
            let valueRange = (equals + 1)..<end
            if key == "password" { request.passwordRange = valueRange; continue }
            guard keptKeys.contains(key), !secretKeys.contains(key) else { continue }
            guard let value = String(validating: bytes[valueRange], as: UTF8.self) else { throw .notUTF8(key: key) }
            switch key {
            case "protocol": request.protocol = value
            case "host": request.host = value
            case "path": request.path = value
            default: request.username = value
            }
        }
        return request
    }
}
