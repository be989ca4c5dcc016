/// A small JSON writer for `--json` output: the schema is documented in
/// docs/keyseal.1.md and keys are written in a fixed order.
indirect enum JSON {
    case string(String)
    case number(Int64)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    static func optional(_ value: String?) -> JSON { value.map(JSON.string) ?? .null }

    var rendered: String {
        var out = OutputBuffer(fd: nil)
        write(into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    func write(into out: inout OutputBuffer) {
        switch self {
        case let .string(text): Self.quote(text, into: &out)
        case let .number(value): out.append(decimal: value)
        case let .bool(value): out.append(value ? "true" : "false")
        case .null: out.append("null")
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(pairs):
            out.append(UInt8(ascii: "{"))
            for (index, pair) in pairs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.quote(pair.0, into: &out)
                out.append(UInt8(ascii: ":"))
                pair.1.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func quote(_ text: String) -> String {
        var out = OutputBuffer(fd: nil)
        quote(text, into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// `"key":` for a key of ours (plain ASCII, nothing to escape).
    static func key(_ name: StaticString, into out: inout OutputBuffer) {
        out.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    static func quote(_ text: String, into out: inout OutputBuffer) {
        out.append(UInt8(ascii: "\""))
        // Most text is printable ASCII with no quote or backslash: its bytes as they are.
        func plain(_ byte: UInt8) -> Bool { byte >= 0x20 && byte <= 0x7E && byte != 0x22 && byte != 0x5C }
        if text.utf8.withContiguousStorageIfAvailable({ $0.allSatisfy(plain) }) ?? text.utf8.allSatisfy(plain) {
            out.append(contentsOf: text.utf8)
        } else {
            for scalar in text.unicodeScalars { escape(scalar, into: &out) }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func escape(_ scalar: Unicode.Scalar, into out: inout OutputBuffer) {
        switch scalar {
        case "\"": out.append("\\\"")
        case "\\": out.append("\\\\")
        case "\n": out.append("\\n")
        case "\r": out.append("\\r")
        case "\t": out.append("\\t")
        case " "..."~": out.append(UInt8(scalar.value))
        // C0 and C1 controls, and invisible format characters such as
        // U+202E, escaped so no terminal acts on them.
        case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
            || scalar.properties.generalCategory == .format
            || scalar.properties.generalCategory == .lineSeparator
            || scalar.properties.generalCategory == .paragraphSeparator:
            // Above U+FFFF (tag characters), JSON wants a UTF-16 surrogate pair.
            for unit in String(scalar).utf16 {
                let hex = String(unit, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            }
        default: out.append(contentsOf: UTF8.encode(scalar)!)
        }
    }
}
