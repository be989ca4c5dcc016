import Sealing

/// The associated data bound into every seal (docs/FORMAT.md, "Associated
/// data"). Each variable-length field is length-prefixed, so no two different
/// field lists encode to the same bytes.
struct AssociatedDataWriter {
    private(set) var bytes: [UInt8] = []

    init(context: String) {
        appendText(context)
    }

    mutating func appendRaw(_ value: [UInt8]) { bytes += value }

    mutating func appendUInt8(_ value: UInt8) { bytes.append(value) }

    mutating func appendUInt64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func appendInt64(_ value: Int64) { appendUInt64(UInt64(bitPattern: value)) }

    mutating func appendBytes(_ value: [UInt8]) {
        appendUInt64(UInt64(value.count))
        bytes += value
    }

    mutating func appendText(_ value: String) { appendBytes(Array(value.utf8)) }

    mutating func appendOptionalText(_ value: String?) {
        guard let value else { return appendUInt8(0) }
        appendUInt8(1)
        appendText(value)
    }

    mutating func appendOptionalInt64(_ value: Int64?) {
        guard let value else { return appendUInt8(0) }
        appendUInt8(1)
        appendInt64(value)
    }
}

enum AssociatedData {
    /// The slot layout's version is the context string, not the file's
    /// format version, so a later format can migrate without re-wrapping.
    static func keySlot(
        vaultID: [UInt8], slotID: Int64, method: String,
        kdf: String, parameters: KDFParameters?, salt: [UInt8]
    ) -> [UInt8] {
        var writer = AssociatedDataWriter(context: "keyseal key slot v1")
        writer.appendBytes(vaultID)
        writer.appendInt64(slotID)
        writer.appendText(method)
        writer.appendText(kdf)
        writer.appendUInt64(parameters?.opsLimit ?? 0)
        writer.appendUInt64(parameters?.memLimit ?? 0)
        writer.appendBytes(salt)
        return writer.bytes
    }

    /// Binds every field of the row but `last_used_at`, which is updated
    /// without the key, and the fingerprint, which is checked against the
    /// opened value instead. An edit outside keyseal fails when the entry is
    /// opened.
    static func entry(vaultID: [UInt8], entryID: [UInt8], fields: EntryBinding) -> [UInt8] {
        var writer = AssociatedDataWriter(context: "keyseal entry v1")
        writer.appendBytes(vaultID)
        writer.appendBytes(entryID)
        writer.appendText(fields.name)
        writer.appendText(fields.kind)
        writer.appendText(fields.headerTemplate)
        writer.appendOptionalText(fields.url)
        writer.appendText(fields.description)
        writer.appendInt64(fields.createdAt)
        writer.appendInt64(fields.updatedAt)
        writer.appendOptionalInt64(fields.expiresAt)
        // Format 3: appended only when set, so every entry sealed before has
        // the same bytes as it had.
        if let caCertificates = fields.caCertificates {
            writer.appendUInt8(1)
            writer.appendText(caCertificates)
        }
        return writer.bytes
    }
}

extension AssociatedData {
    /// A value an entry held before a rotation: bound to the entry's id (not
    /// its name, which may change later), its version and its dates.
    static func previousValue(vaultID: [UInt8], entryID: [UInt8], version: Int64, setAt: Int64, replacedAt: Int64) -> [UInt8] {
        var writer = AssociatedDataWriter(context: "keyseal previous value v1")
        writer.appendBytes(vaultID)
        writer.appendBytes(entryID)
        writer.appendInt64(version)
        writer.appendInt64(setAt)
        writer.appendInt64(replacedAt)
        return writer.bytes
    }
}

extension AssociatedData {
    /// A bearer entry's kept token: bound to the entry's id and the time it
    /// was obtained, so it cannot be moved to another entry or made to look
    /// younger. Any change to the entry deletes it instead.
    static func bearerToken(vaultID: [UInt8], entryID: [UInt8], obtainedAt: Int64) -> [UInt8] {
        var writer = AssociatedDataWriter(context: "keyseal bearer token v1")
        writer.appendBytes(vaultID)
        writer.appendBytes(entryID)
        writer.appendInt64(obtainedAt)
        return writer.bytes
    }
}

/// The fields of an entry that its seal is bound to.
struct EntryBinding {
    var name: String
    var kind: String
    var headerTemplate: String
    var url: String?
    var description: String
    var createdAt: Int64
    var updatedAt: Int64
    var expiresAt: Int64?
    var caCertificates: String?

    init(name: String, fields: EntryFields, createdAt: Int64, updatedAt: Int64) {
        self.name = name
        kind = fields.kind
        headerTemplate = fields.headerTemplate
        url = fields.url
        description = fields.description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        expiresAt = fields.expiresAt
        caCertificates = fields.caCertificates
    }
}
