import Sealing
import Storage

/// One entry of an export, as JSON (docs/FORMAT.md, "Exports"): written
/// and read in guarded memory, since it holds the entry's secrets.
///
///     {"name":…,"kind":…,"header_template":…,"url":…|null,"description":…,
///      "created_at":N,"updated_at":N,"expires_at":N|null,"last_used_at":N|null,
///      "warn_within":N|null,"max_age":N|null,"ca_certificates":…|null,
///      "remote_id":…|null,"remote_state":…|null,"secret":"…",
///      "previous":[{"version":N,"set_at":N,"replaced_at":N,"secret":"…"}]}
///
/// Times are Unix seconds (UTC). A secret that is not UTF-8 text is
/// written as "secret_base64" instead of "secret".
enum ExportRecord {
    /// Starts an entry's object, up to the opening of its "previous" array.
    static func begin(_ entry: TransferEntry, secret: borrowing SecretBytes, into out: inout GuardedText) throws {
        let fields = entry.fields
        func optional(_ value: Int64?) -> String { value.map(String.init) ?? "null" }
        try out.append("{\"name\":\(JSON.quote(entry.name)),\"kind\":\(JSON.quote(fields.kind)),")
        try out.append("\"header_template\":\(JSON.quote(fields.headerTemplate)),\"url\":\(JSON.optional(fields.url).rendered),")
        try out.append("\"description\":\(JSON.quote(fields.description)),\"created_at\":\(entry.createdAt),")
        try out.append("\"updated_at\":\(entry.updatedAt),\"expires_at\":\(optional(fields.expiresAt)),")
        try out.append("\"last_used_at\":\(optional(entry.lastUsedAt)),\"warn_within\":\(optional(entry.warnWithin)),")
        try out.append("\"max_age\":\(optional(entry.maxAge)),\"ca_certificates\":\(JSON.optional(fields.caCertificates).rendered),")
        try out.append("\"remote_id\":\(JSON.optional(entry.remoteID).rendered),")
        try out.append("\"remote_state\":\(JSON.optional(entry.remoteState?.rawValue).rendered),")
        try appendSecret(secret, into: &out)
        try out.append(",\"previous\":[")
    }

    static func previous(_ value: TransferPrevious, secret: borrowing SecretBytes, first: Bool, into out: inout GuardedText) throws {
        try out.append("\(first ? "" : ","){\"version\":\(value.version),\"set_at\":\(value.setAt),\"replaced_at\":\(value.replacedAt),")
        try appendSecret(secret, into: &out)
        try out.append("}")
    }

    static func end(into out: inout GuardedText) throws {
        try out.append("]}")
    }

    private static func appendSecret(_ secret: borrowing SecretBytes, into out: inout GuardedText) throws {
        try out.append("\"secret\":")
        if try out.appendJSONString(secret) { return }
        out.removeLast(9)
        try out.append("\"secret_base64\":")
        try out.appendBase64String(secret)
    }

    // MARK: Reading

    struct Malformed: Error {
        let reason: String
    }

    /// Reads one entry object and hands it, then its previous values, to
    /// `session`. Unknown members are skipped, so a later keyseal may add some.
    static func read(_ bytes: UnsafeRawBufferPointer, into session: CheckedImport) throws {
        var reader = JSONReader(bytes: bytes)
        guard reader.consume(UInt8(ascii: "{")) else { throw Malformed(reason: "an entry is not a JSON object") }
        var texts: [String: String] = [:]
        var numbers: [String: Int64] = [:]
        var secret: SecretBytes?
        var previousStart: Int?
        if !reader.consume(UInt8(ascii: "}")) {
            repeat {
                guard let key = reader.readText(limit: 64), reader.consume(UInt8(ascii: ":")) else {
                    throw Malformed(reason: "an entry holds a malformed member")
                }
                switch key {
                case "name", "kind", "header_template", "description", "url", "ca_certificates", "remote_id", "remote_state":
                    if reader.readNull() { continue }
                    guard let text = reader.readText(limit: 8192) else { throw Malformed(reason: "\"\(key)\" is not a string") }
                    texts[key] = text
                case "created_at", "updated_at", "expires_at", "last_used_at", "warn_within", "max_age":
                    if reader.readNull() { continue }
                    guard let number = reader.readInteger() else { throw Malformed(reason: "\"\(key)\" is not a whole number") }
                    numbers[key] = number
                case "secret", "secret_base64":
                    guard secret == nil else { throw Malformed(reason: "an entry has two secrets") }
                    secret = try readSecret(&reader, base64: key == "secret_base64")
                case "previous":
                    previousStart = reader.index
                    guard reader.skipValue(depth: 0) else { throw Malformed(reason: "\"previous\" is malformed") }
                default:
                    guard reader.skipValue(depth: 0) else { throw Malformed(reason: "\"\(key)\" is malformed") }
                }
            } while reader.consume(UInt8(ascii: ","))
            guard reader.consume(UInt8(ascii: "}")) else { throw Malformed(reason: "an entry is not a closed JSON object") }
        }
        guard reader.atEnd else { throw Malformed(reason: "text follows an entry") }
        guard let name = texts["name"] else { throw Malformed(reason: "an entry has no \"name\"") }
        guard let kind = texts["kind"], let template = texts["header_template"],
              let created = numbers["created_at"], let updated = numbers["updated_at"] else {
            throw Malformed(reason: "entry \(name.debugDescription) lacks kind, header_template, created_at or updated_at")
        }
        guard let value = secret.take() else { throw Malformed(reason: "entry \(name.debugDescription) has no secret") }
        var remoteState: RemoteState?
        if let state = texts["remote_state"] {
            guard let known = RemoteState(rawValue: state) else { throw Malformed(reason: "entry \(name.debugDescription) has an unknown remote_state") }
            remoteState = known
        }
        let entry = TransferEntry(
            name: name,
            fields: EntryFields(kind: kind, headerTemplate: template, url: texts["url"], description: texts["description"] ?? "",
                                expiresAt: numbers["expires_at"], caCertificates: texts["ca_certificates"]),
            createdAt: created, updatedAt: updated, lastUsedAt: numbers["last_used_at"],
            warnWithin: numbers["warn_within"], maxAge: numbers["max_age"], remoteID: texts["remote_id"], remoteState: remoteState)
        try session.add(entry, secret: value)
        guard let previousStart else { return }
        reader.index = previousStart
        try readPrevious(&reader, of: name, into: session)
    }

    private static func readPrevious(_ reader: inout JSONReader, of name: String, into session: CheckedImport) throws {
        if reader.readNull() { return }
        guard reader.consume(UInt8(ascii: "[")) else { throw Malformed(reason: "\"previous\" of \(name.debugDescription) is not an array") }
        if reader.consume(UInt8(ascii: "]")) { return }
        repeat {
            guard reader.consume(UInt8(ascii: "{")) else { throw Malformed(reason: "a previous value of \(name.debugDescription) is not an object") }
            var numbers: [String: Int64] = [:]
            var secret: SecretBytes?
            repeat {
                guard let key = reader.readText(limit: 64), reader.consume(UInt8(ascii: ":")) else {
                    throw Malformed(reason: "a previous value of \(name.debugDescription) is malformed")
                }
                switch key {
                case "version", "set_at", "replaced_at":
                    guard let number = reader.readInteger() else { throw Malformed(reason: "\"\(key)\" is not a whole number") }
                    numbers[key] = number
                case "secret", "secret_base64":
                    secret = try readSecret(&reader, base64: key == "secret_base64")
                default:
                    guard reader.skipValue(depth: 0) else { throw Malformed(reason: "\"\(key)\" is malformed") }
                }
            } while reader.consume(UInt8(ascii: ","))
            guard reader.consume(UInt8(ascii: "}")),
                  let version = numbers["version"], let setAt = numbers["set_at"], let replacedAt = numbers["replaced_at"],
                  let value = secret.take() else {
                throw Malformed(reason: "a previous value of \(name.debugDescription) lacks version, set_at, replaced_at or secret")
            }
            try session.addPrevious(TransferPrevious(version: version, setAt: setAt, replacedAt: replacedAt), secret: value)
        } while reader.consume(UInt8(ascii: ","))
        guard reader.consume(UInt8(ascii: "]")) else { throw Malformed(reason: "\"previous\" of \(name.debugDescription) is not closed") }
    }

    private static func readSecret(_ reader: inout JSONReader, base64: Bool) throws -> SecretBytes {
        var malformed = false
        guard let text = reader.readSecret(malformed: &malformed) else { throw Malformed(reason: "a secret is not a JSON string") }
        guard base64 else { return text }
        var decoded = try GuardedText(capacity: max(1, text.count))
        let valid = try text.withUnsafeBytes { (bytes) throws in try Base64.decode(bytes, into: &decoded) }
        guard valid else { throw Malformed(reason: "a secret_base64 is not base64") }
        return try decoded.secret()
    }
}
