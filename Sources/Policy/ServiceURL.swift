/// A credential's base URL, and the rule that keeps a token on its host:
/// a path is joined to the base; a full URL must have the base's scheme,
/// host and port.
public struct ServiceURL: Equatable, Sendable {
    public let scheme: String
    public let host: String
    public let port: Int?
    /// The base path without a trailing slash ("" for the root).
    public let path: String

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case notHTTP(String)
        case hasCredentials(String)
        case hasQueryOrFragment(String)
        case badHost(String)
        case relative(String)
        case otherHost(url: String, expected: String)
        case noBase

        public var description: String {
            switch self {
            case let .notHTTP(text): "\(text.debugDescription) is not an http:// or https:// URL"
            case let .hasCredentials(text): "\(text.debugDescription) holds a user name or password; keyseal sends the credential itself"
            case let .hasQueryOrFragment(text): "a base URL cannot hold a query or fragment: \(text.debugDescription)"
            case let .badHost(text): "\(text.debugDescription) has no valid host"
            case let .relative(text): "\(text.debugDescription) is neither a path starting with / nor a full URL"
            case let .otherHost(url, expected):
                "\(url.debugDescription) is not on \(expected), the host this credential was stored for"
            case .noBase: "the entry has no base URL to join a path to"
            }
        }
    }

    /// Parses a URL such as `https://immuta.example.com/api` (query and
    /// fragment allowed only when `allowQuery`, i.e. for a request URL).
    public init(_ text: String, allowQuery: Bool = false) throws(Invalid) {
        let lowered = text.lowercased()
        let rest: Substring
        if lowered.hasPrefix("https://") {
            scheme = "https"
            rest = text.dropFirst(8)
        } else if lowered.hasPrefix("http://") {
            scheme = "http"
            rest = text.dropFirst(7)
        } else {
            throw .notHTTP(text)
        }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { throw .badHost(text) }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        if authority.contains("@") { throw .hasCredentials(text) }
        var pathAndMore = rest[authorityEnd...]
        if !allowQuery, pathAndMore.contains(where: { $0 == "?" || $0 == "#" }) { throw .hasQueryOrFragment(text) }
        if let queryStart = pathAndMore.firstIndex(where: { $0 == "?" || $0 == "#" }), !allowQuery {
            pathAndMore = pathAndMore[..<queryStart]
        }
        var hostPart = authority
        var port: Int?
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            let digits = authority[authority.index(after: colon)...]
            guard !digits.isEmpty, digits.count <= 5, let number = Int(digits), (1...65535).contains(number) else {
                throw .badHost(text)
            }
            port = number
            hostPart = authority[..<colon]
        }
        guard !hostPart.isEmpty,
              hostPart.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "[" || $0 == "]" || $0 == ":" })
        else { throw .badHost(text) }
        host = hostPart.lowercased()
        // The default port names the same origin as no port.
        self.port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80) ? nil : port
        var path = String(pathAndMore)
        while path.hasSuffix("/") { path.removeLast() }
        self.path = path
    }

    /// 127.0.0.0/8, ::1 or localhost: where plain http stays on this machine.
    public var isLoopback: Bool {
        if host == "localhost" || host == "[::1]" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// scheme://host[:port], the origin a token is bound to.
    public var origin: String { "\(scheme)://\(host)" + (port.map { ":\($0)" } ?? "") }

    public var text: String { origin + path }

    /// The URL to request for `target`: nil means the base itself, a path
    /// starting with "/" is appended to the base, a full URL must be on the
    /// base's origin unless `anyHost`.
    public static func resolve(_ target: String?, base: ServiceURL?, anyHost: Bool) throws(Invalid) -> String {
        guard let target else {
            guard let base else { throw .noBase }
            return base.text
        }
        if target.hasPrefix("/") {
            guard let base else { throw .noBase }
            return base.origin + base.path + target
        }
        let lowered = target.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { throw .relative(target) }
        let url = try ServiceURL(target, allowQuery: true)
        if !anyHost {
            guard let base else { throw .noBase }
            guard url.origin == base.origin else { throw .otherHost(url: target, expected: base.origin) }
        }
        return target
    }
}
