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
        guard let colon = text.firstIndex(of: ":") else { throw .missingColon }
        let name = String(text[..<colon])
        guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenCharacter) else { throw .badFieldName(name) }
        let value = text[text.index(after: colon)...]
        // No tab either: storage keeps no control characters in metadata.
        guard value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw .badCharacter
        }
        let placeholders = value.split(separator: CredentialKind.secretPlaceholder, omittingEmptySubsequences: false).count - 1
        guard placeholders == 1 else { throw .placeholderCount(placeholders) }
        self.text = text
        fieldName = name
        let pieces = text.split(separator: CredentialKind.secretPlaceholder, omittingEmptySubsequences: false)
        prefix = String(pieces[0])
        suffix = String(pieces[1])
        valuePrefix = String(prefix[prefix.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" }))
    }

    /// RFC 9110 section 5.6.2: tchar.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default:
            Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}
