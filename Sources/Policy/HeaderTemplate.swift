/// A header template such as `Authorization: Bearer {secret}`: a field name
/// per RFC 9110 (a token), a colon, and a value with exactly one `{secret}`.
/// No CR, LF or NUL anywhere, so a template can never inject a header.
public struct HeaderTemplate: Equatable, Sendable {
    public let text: String
    public let fieldName: String
    /// The text before and after `{secret}`.
    public let prefix: String
    public let suffix: String
    /// Where the field value starts in `prefix`: after the colon and any
    /// spaces or tabs (RFC 9110's optional white space).
    public let valuePrefix: String

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case missingColon
        case badFieldName(String)
        case placeholderCount(Int)
        case badCharacter

        public var description: String {
            switch self {
            case .missingColon: "a header template needs a name, a colon and a value"
            case let .badFieldName(name): "\(name.debugDescription) is not a valid header name"
            case let .placeholderCount(count):
                "a header template needs exactly one {secret}, this one has \(count)"
            case .badCharacter: "a header template can hold only printable ASCII and spaces"
            }
        }
    }

    public init(_ text: String) throws(Invalid) {
        // Plain byte scans: this runs on every `keyseal header`, and the
        // generic String algorithms cost more to set up than to run.
        let bytes = Array(text.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { throw .missingColon }
        let name = bytes[..<colon]
        guard !name.isEmpty, name.allSatisfy(Self.isTokenCharacter) else {
            throw .badFieldName(String(decoding: name, as: UTF8.self))
        }
        // No tab either: storage keeps no control characters in metadata.
        guard bytes[(colon + 1)...].allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw .badCharacter
        }
        // The name has no braces, so every placeholder is in the value.
        let placeholders = Self.occurrences(of: Array(CredentialKind.secretPlaceholder.utf8), in: bytes)
        guard placeholders.count == 1, let start = placeholders.first else { throw .placeholderCount(placeholders.count) }
        let end = start + CredentialKind.secretPlaceholder.utf8.count
        var valueStart = colon + 1
        while valueStart < start, bytes[valueStart] == UInt8(ascii: " ") || bytes[valueStart] == UInt8(ascii: "\t") {
            valueStart += 1
        }
        self.text = text
        fieldName = String(decoding: name, as: UTF8.self)
        prefix = String(decoding: bytes[..<start], as: UTF8.self)
        suffix = String(decoding: bytes[end...], as: UTF8.self)
        valuePrefix = String(decoding: bytes[valueStart..<start], as: UTF8.self)
    }

    /// Where `needle` starts in `haystack`, left to right, not overlapping.
    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
        var found: [Int] = []
        var index = 0
        while index + needle.count <= haystack.count {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) {
                found.append(index)
                index += needle.count
            } else {
                index += 1
            }
        }
        return found
    }

    /// RFC 9110 section 5.6.2: tchar.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
