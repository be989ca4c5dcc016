import Sealing

/// What an exchange endpoint answered, read from the JSON object in guarded
/// memory: `{"authenticated": true, "token": "…"}`, a new PAT
/// (`{"tokenId": "…", "token": "…"}`), or a refusal such as
/// `{"message": "Not authenticated."}`. The token is decoded straight into
/// guarded memory; it never becomes a Swift string.
struct ExchangeAnswer: ~Copyable {
    var authenticated: Bool?
    var token: SecretBytes?
    var message: String?
    /// A created PAT's id (`{"tokenId": …, "token": …}`).
    var tokenID: String?

    /// nil when `bytes` are not one JSON object (other values, nested to at
    /// most 32 levels, are skipped).
    static func read(_ bytes: UnsafeRawBufferPointer) -> ExchangeAnswer? {
        var reader = JSONReader(bytes: bytes)
        var answer = ExchangeAnswer()
        guard reader.consume(UInt8(ascii: "{")) else { return nil }
        if !reader.consume(UInt8(ascii: "}")) {
            repeat {
                guard let key = reader.readText(limit: 256), reader.consume(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "token" where reader.peek == UInt8(ascii: "\""):
                    var malformed = false
                    answer.token = reader.readSecret(malformed: &malformed)
                    if malformed { return nil }
                case "authenticated" where reader.peek == UInt8(ascii: "t") || reader.peek == UInt8(ascii: "f"):
                    guard let value = reader.readBool() else { return nil }
                    answer.authenticated = value
                case "message" where reader.peek == UInt8(ascii: "\""):
                    guard let text = reader.readText(limit: 200) else { return nil }
                    answer.message = text
                case "tokenId" where reader.peek == UInt8(ascii: "\""):
                    guard let text = reader.readText(limit: 256) else { return nil }
                    answer.tokenID = text
                default:
                    guard reader.skipValue(depth: 0) else { return nil }
                }
            } while reader.consume(UInt8(ascii: ","))
            guard reader.consume(UInt8(ascii: "}")) else { return nil }
        }
        guard reader.atEnd else { return nil }
        return answer
    }
}

/// One PAT in the Request app's list (`GET /api/auth/tokens`); nothing in
/// it is secret.
struct RemoteToken: Equatable {
    var tokenID: String
    var active: Bool?
    /// ISO 8601 as the server wrote it; nil when it has none (no expiry).
    var expirationDate: String?

    /// nil when `bytes` are not a JSON array of objects that each have a
    /// string `tokenId`.
    static func readList(_ bytes: UnsafeRawBufferPointer) -> [RemoteToken]? {
        var reader = JSONReader(bytes: bytes)
        var tokens: [RemoteToken] = []
        guard reader.consume(UInt8(ascii: "[")) else { return nil }
        if reader.consume(UInt8(ascii: "]")) { return reader.atEnd ? [] : nil }
        repeat {
            guard reader.consume(UInt8(ascii: "{")) else { return nil }
            var tokenID: String?
            var active: Bool?
            var expirationDate: String?
            if !reader.consume(UInt8(ascii: "}")) {
                repeat {
                    guard let key = reader.readText(limit: 256), reader.consume(UInt8(ascii: ":")) else { return nil }
                    switch key {
                    case "tokenId" where reader.peek == UInt8(ascii: "\""):
                        tokenID = reader.readText(limit: 256)
                        if tokenID == nil { return nil }
                    case "active" where reader.peek == UInt8(ascii: "t") || reader.peek == UInt8(ascii: "f"):
                        active = reader.readBool()
                        if active == nil { return nil }
                    case "expirationDate" where reader.peek == UInt8(ascii: "\""):
                        expirationDate = reader.readText(limit: 64)
                        if expirationDate == nil { return nil }
                    default:
                        guard reader.skipValue(depth: 1) else { return nil }
                    }
                } while reader.consume(UInt8(ascii: ","))
                guard reader.consume(UInt8(ascii: "}")) else { return nil }
            }
            guard let tokenID else { return nil }
            tokens.append(RemoteToken(tokenID: tokenID, active: active, expirationDate: expirationDate))
        } while reader.consume(UInt8(ascii: ","))
        guard reader.consume(UInt8(ascii: "]")), reader.atEnd else { return nil }
        return tokens
    }
}

/// A minimal JSON reader over bytes (RFC 8259), enough to pick a few members
/// out of one object. Every read skips the white space before it.
struct JSONReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    var peek: UInt8? {
        mutating get {
            skipSpace()
            return index < bytes.count ? bytes[index] : nil
        }
    }

    var atEnd: Bool { mutating get { peek == nil } }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    /// `null`, consumed; false (and nothing consumed) for anything else.
    mutating func readNull() -> Bool {
        consumeWord("null")
    }

    /// A JSON number that is a whole number fitting in 64 bits.
    mutating func readInteger() -> Int64? {
        skipSpace()
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        let digits = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Int64(digits) else {
            index = start
            return nil
        }
        return value
    }

    mutating func readBool() -> Bool? {
        if consumeWord("true") { return true }
        if consumeWord("false") { return false }
        return nil
    }

    private mutating func consumeWord(_ word: String) -> Bool {
        skipSpace()
        let utf8 = Array(word.utf8)
        guard bytes.count - index >= utf8.count, bytes[index..<(index + utf8.count)].elementsEqual(utf8) else { return false }
        index += utf8.count
        return true
    }

    /// A string's decoded bytes, each handed to `emit`; nil when it is not a
    /// well-formed string. Leaves `index` after the closing quote.
    private mutating func decodeString(_ emit: (UInt8) -> Void) -> Bool {
        guard consume(UInt8(ascii: "\"")) else { return false }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return true
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { return false }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): emit(escape)
                case UInt8(ascii: "b"): emit(0x08)
                case UInt8(ascii: "f"): emit(0x0C)
                case UInt8(ascii: "n"): emit(0x0A)
                case UInt8(ascii: "r"): emit(0x0D)
                case UInt8(ascii: "t"): emit(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = readHex4() else { return false }
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard consumeRaw("\\u"), let low = readHex4(), (0xDC00...0xDFFF).contains(low) else { return false }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        return false
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { return false }
                    for unit in UTF8.encode(unicode)! { emit(unit) }
                default:
                    return false
                }
            case 0..<0x20:
                return false
            default:
                emit(byte)
            }
        }
        return false
    }

    private mutating func consumeRaw(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard bytes.count - index >= utf8.count, bytes[index..<(index + utf8.count)].elementsEqual(utf8) else { return false }
        index += utf8.count
        return true
    }

    private mutating func readHex4() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            index += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// A string as Swift text, for keys and messages; nil when malformed or
    /// longer than `limit` bytes.
    mutating func readText(limit: Int) -> String? {
        var out: [UInt8] = []
        guard decodeString({ out.append($0) }), out.count <= limit else { return nil }
        return String(decoding: out, as: UTF8.self)
    }

    /// A string into guarded memory: measured first, then decoded again into
    /// a buffer of exactly that size. nil, with `malformed` set, when it is not
    /// a well-formed string.
    mutating func readSecret(malformed: inout Bool) -> SecretBytes? {
        malformed = true
        let start = index
        var length = 0
        guard decodeString({ _ in length += 1 }) else { return nil }
        let end = index
        index = start
        guard var secret = try? SecretBytes(count: length) else { return nil }
        var written = 0
        let decoded = secret.withUnsafeMutableBytes { out in
            decodeString { byte in
                out[written] = byte
                written += 1
            }
        }
        guard decoded, index == end else { return nil }
        malformed = false
        return secret
    }

    mutating func skipValue(depth: Int) -> Bool {
        guard depth < 32, let first = peek else { return false }
        switch first {
        case UInt8(ascii: "\""):
            return decodeString { _ in }
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let isObject = first == UInt8(ascii: "{")
            index += 1
            let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
            if consume(close) { return true }
            repeat {
                if isObject {
                    guard decodeString({ _ in }), consume(UInt8(ascii: ":")) else { return false }
                }
                guard skipValue(depth: depth + 1) else { return false }
            } while consume(UInt8(ascii: ","))
            return consume(close)
        case UInt8(ascii: "t"): return consumeWord("true")
        case UInt8(ascii: "f"): return consumeWord("false")
        case UInt8(ascii: "n"): return consumeWord("null")
        default:
            // A number: its characters, checked loosely (skipped, never used).
            let start = index
            while index < bytes.count, "+-.0123456789eE".utf8.contains(bytes[index]) { index += 1 }
            return index > start
        }
    }
}
