import Sealing

/// What a user sets on an entry, apart from its name and secret.
public struct EntryFields: Equatable, Sendable {
    /// The credential kind (`api-key`, `pat`, `token`, ...); its meaning
    /// belongs to the Policy module, storage keeps it and binds it.
    public var kind: String
    /// How the secret is sent, with exactly one `{secret}`.
    public var headerTemplate: String
    public var url: String?
    public var description: String
    /// Seconds since the Unix epoch, UTC; nil means no expiration.
    public var expiresAt: Int64?
    /// A PEM file of CA certificates that TLS with the entry's URL is
    /// verified against instead of the system's (format 3). Bound into the
    /// seal: swapping in another CA would let a forged server take the key.
    public var caCertificates: String?

    public init(kind: String, headerTemplate: String, url: String? = nil, description: String = "", expiresAt: Int64? = nil,
                caCertificates: String? = nil) {
        self.kind = kind
        self.headerTemplate = headerTemplate
        self.url = url
        self.description = description
        self.expiresAt = expiresAt
        self.caCertificates = caCertificates
    }
}

/// An entry as listed: everything but the secret. Readable without unlocking.
public struct EntryMetadata: Equatable, Sendable {
    public let id: [UInt8]
    public let name: String
    public let fields: EntryFields
    public let createdAt: Int64
    public let updatedAt: Int64
    public let lastUsedAt: Int64?
    /// Keyed BLAKE2b of the secret: equal secrets in one vault have equal
    /// fingerprints; nobody without the vault key can test a guess.
    public let fingerprint: [UInt8]
    /// This entry's own expiry warning window in seconds, if it has one.
    /// Not bound into the seal: like `lastUsedAt`, it is policy metadata that
    /// `check` reads without the key.
    public let warnWithin: Int64?
    /// Counts the changes to the entry (0 when added): every edit, rename,
    /// rotation and window change adds one. Not bound; it orders revisions
    /// (a calendar's SEQUENCE) and lets a writer notice a concurrent change.
    public let revision: Int64
    /// A bearer entry's maximum token age in seconds, if it has one: a kept
    /// token older than this is exchanged anew before use. Not bound, like
    /// `warnWithin`.
    public let maxAge: Int64?
    /// The id the issuing server gave this token (an Immuta PAT's
    /// `tokenId`), set by `pat create`. Not bound: it names the token on the
    /// server, for listing and revoking it there.
    public let remoteID: String?
    /// What the issuing server last said of the token (`pat sync`,
    /// `pat revoke --keep`): active, inactive, revoked or missing; nil
    /// when never asked. Not bound, like `remoteID`.
    public let remoteState: RemoteState?

    public var fingerprintHex: String { Hex.encode(fingerprint) }

    var binding: EntryBinding {
        EntryBinding(name: name, fields: fields, createdAt: createdAt, updatedAt: updatedAt)
    }
}

/// A value an entry held before `rotate` replaced it. Readable without unlocking.
public struct PreviousValue: Equatable, Sendable {
    public let version: Int64
    /// The entry's `updated_at` when this value was replaced (bound into the
    /// seal; not shown, since edits also move it).
    public let setAt: Int64
    public let replacedAt: Int64
    public let fingerprint: [UInt8]

    public var fingerprintHex: String { Hex.encode(fingerprint) }
}

/// An entry as read from the vault, still sealed.
public struct SealedEntry {
    let stored: StoredEntry
    public var metadata: EntryMetadata { stored.metadata }
}

/// An opened entry: its metadata and its secret, which stays in guarded memory.
public struct OpenedEntry: ~Copyable {
    public let metadata: EntryMetadata
    public let secret: SecretBytes
}

/// Entry names are shown in lists, typed on command lines and bound into each
/// seal: one line of printable text.
public enum EntryName {
    public static let maxUTF8Length = 200

    public static func validate(_ name: String) throws(StorageError) {
        if name.isEmpty { throw .invalidName(name: name, reason: "a name cannot be empty") }
        if name.utf8.count > maxUTF8Length {
            throw .invalidName(name: name, reason: "a name is at most \(maxUTF8Length) bytes")
        }
        if !name.isPrintableASCII {
            for scalar in name.unicodeScalars {
                switch scalar.properties.generalCategory {
                case .control, .lineSeparator, .paragraphSeparator, .format, .surrogate:
                    throw .invalidName(name: name, reason: "a name cannot hold control characters, line breaks or invisible characters")
                default: continue
                }
            }
        }
        if name.first!.isWhitespace || name.last!.isWhitespace {
            throw .invalidName(name: name, reason: "a name cannot start or end with white space")
        }
    }
}

extension String {
    /// Every byte printable ASCII (U+0020 to U+007E), none of which is a
    /// control, format or separator character: the per-character Unicode
    /// lookup is skipped for such text (it was 8% of a 100,000-entry import).
    var isPrintableASCII: Bool { utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F } }
}

/// Metadata is printed on terminals: control characters could rewrite the
/// screen, so none are stored.
enum TextField {
    static func validate(_ value: String, field: String, maxUTF8Length: Int, allowEmpty: Bool) throws(StorageError) {
        if value.isEmpty && !allowEmpty { throw .invalidField(field: field, reason: "it cannot be empty") }
        if value.utf8.count > maxUTF8Length {
            throw .invalidField(field: field, reason: "it is at most \(maxUTF8Length) bytes")
        }
        if !value.isPrintableASCII {
            for scalar in value.unicodeScalars {
                switch scalar.properties.generalCategory {
                case .control, .lineSeparator, .paragraphSeparator, .surrogate:
                    throw .invalidField(field: field, reason: "it cannot hold control characters or line breaks")
                default: continue
                }
            }
        }
    }
}

extension EntryFields {
    func validate() throws(StorageError) {
        try TextField.validate(kind, field: "kind", maxUTF8Length: 64, allowEmpty: false)
        try TextField.validate(headerTemplate, field: "header template", maxUTF8Length: 1024, allowEmpty: false)
        if let url { try TextField.validate(url, field: "url", maxUTF8Length: 2048, allowEmpty: false) }
        try TextField.validate(description, field: "description", maxUTF8Length: 1024, allowEmpty: true)
        if let caCertificates { try TextField.validate(caCertificates, field: "CA certificates path", maxUTF8Length: 4096, allowEmpty: false) }
    }
}

/// A token's state on the server that issued it, as keyseal last saw it.
public enum RemoteState: String, Sendable, CaseIterable {
    case active
    /// Listed, but no longer active.
    case inactive
    /// Revoked through keyseal (`pat revoke --keep`).
    case revoked
    /// Not in the server's list any more.
    case missing

    /// Whether the server still accepts the token.
    public var isUsable: Bool { self == .active }
}
