/// When a credential stops working: an instant (Unix seconds, UTC) or never.
public enum Expiry: Equatable, Hashable, Sendable {
    case never
    case at(Int64)

    public var instant: Int64? {
        if case let .at(seconds) = self { return seconds }
        return nil
    }

    public init(instant: Int64?) {
        self = instant.map(Expiry.at) ?? .never
    }
}

/// Reads what a user types after `--expires`: a date, a date-time with an
/// offset, a duration from now, or `never`. Rejects what could mean two
/// things, and says what it accepts.
public struct ExpiryParser: Sendable {
    public let now: Int64
    public let zone: LocalZone

    public static let examples = "a date (2027-01-31), a date-time with offset (2027-01-31T17:00:00+01:00), "
        + "a duration (30d, 12w, 6mo, 1y, \"90 days\") or never"
    /// The latest instant accepted: 9999-12-31T23:59:59Z.
    public static let latest: Int64 = 253_402_300_799
    static let maxInputLength = 64

    public init(now: Int64, zone: LocalZone) {
        self.now = now
        self.zone = zone
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unreadable(String)
        case ambiguous(String, why: String)
        case outOfRange(String)
        case notPositive(String)
        case inThePast(String, instant: Int64)

        public var description: String {
            switch self {
            case let .unreadable(text):
                "cannot read \(text.debugDescription) as an expiry; expected \(ExpiryParser.examples)"
            case let .ambiguous(text, why):
                "\(text.debugDescription) is ambiguous: \(why)"
            case let .outOfRange(text):
                "\(text.debugDescription) is out of range; expected a time before the year 10000, for example 1y"
            case let .notPositive(text):
                "\(text.debugDescription) is not a positive duration; for example 30d"
            case let .inThePast(text, instant):
                "\(text.debugDescription) is in the past (\(Timestamp.iso8601(instant))); for example 30d"
            }
        }
    }

    /// The expiry `text` names. A past instant is refused unless `allowPast`
    /// (recording a token that has already expired).
    public func parse(_ text: String, allowPast: Bool = false) throws(Failure) -> Expiry {
        let trimmed = String(text.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
        guard !trimmed.isEmpty, trimmed.utf8.count <= Self.maxInputLength else { throw .unreadable(text) }
        if trimmed.lowercased() == "never" { return .never }
        let instant: Int64
        if let first = trimmed.utf8.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first),
           trimmed.utf8.count >= 10, Array(trimmed.utf8)[4] == UInt8(ascii: "-") {
            instant = try parseDate(trimmed, original: text)
        } else {
            instant = try parseDuration(trimmed, original: text)
        }
        guard instant <= Self.latest else { throw .outOfRange(text) }
        if !allowPast && instant <= now { throw .inThePast(text, instant: instant) }
        return .at(instant)
    }

    // MARK: Dates

    private func parseDate(_ text: String, original: String) throws(Failure) -> Int64 {
        let bytes = Array(text.utf8)
        var reader = DigitReader(bytes: bytes)
        guard let year = reader.number(digits: 4), reader.skip("-"),
              let month = reader.number(digits: 2), reader.skip("-"),
              let day = reader.number(digits: 2)
        else { throw .unreadable(original) }
        guard (1...12).contains(month), (1...LocalCalendar.daysIn(month: month, year: year)).contains(day) else {
            throw .unreadable(original)
        }
        if reader.atEnd {
            // A bare date means the end of that day where the user is.
            let endOfDay = LocalCalendar.DateTime(year: year, month: month, day: day, hour: 23, minute: 59, second: 59)
            return LocalCalendar.instant(endOfDay, in: zone)
        }
        guard reader.skip("T") || reader.skip("t") || reader.skip(" "),
              let hour = reader.number(digits: 2), reader.skip(":"),
              let minute = reader.number(digits: 2)
        else { throw .unreadable(original) }
        var second: Int64 = 0
        if reader.skip(":") {
            guard let value = reader.number(digits: 2) else { throw .unreadable(original) }
            second = value
        }
        guard hour <= 23, minute <= 59, second <= 59 else { throw .unreadable(original) }
        let wall = LocalCalendar.seconds(.init(year: year, month: month, day: day, hour: hour, minute: minute, second: second))
        if reader.atEnd {
            throw .ambiguous(original, why: "a time needs Z or an offset, for example \(text)Z or \(text)+01:00")
        }
        if reader.skip("Z") || reader.skip("z") {
            guard reader.atEnd else { throw .unreadable(original) }
            return wall
        }
        let sign: Int64
        if reader.skip("+") { sign = 1 } else if reader.skip("-") { sign = -1 } else { throw .unreadable(original) }
        guard let offsetHours = reader.number(digits: 2), reader.skip(":"),
              let offsetMinutes = reader.number(digits: 2), reader.atEnd,
              offsetHours <= 18, offsetMinutes <= 59
        else { throw .unreadable(original) }
        return wall - sign * (offsetHours * 3600 + offsetMinutes * 60)
    }

    // MARK: Durations

    enum Unit {
        case hours, days, weeks, months, years
    }

    static let units: [String: Unit] = [
        "h": .hours, "hour": .hours, "hours": .hours,
        "d": .days, "day": .days, "days": .days,
        "w": .weeks, "week": .weeks, "weeks": .weeks,
        "mo": .months, "month": .months, "months": .months,
        "y": .years, "year": .years, "years": .years,
    ]

    private func parseDuration(_ text: String, original: String) throws(Failure) -> Int64 {
        var bytes = Array(text.utf8)[...]
        if bytes.first == UInt8(ascii: "-") { throw .notPositive(original) }
        if bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        let digits = bytes.prefix(while: { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        guard !digits.isEmpty else { throw .unreadable(original) }
        // Six digits (a million hours) is far past year 9999 for every unit
        // but hours; more could overflow, so it is refused as out of range.
        guard digits.count <= 6 else { throw .outOfRange(original) }
        let count = digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
        let unitText = String(decoding: bytes.dropFirst(digits.count).drop(while: { $0 == UInt8(ascii: " ") }), as: UTF8.self)
            .lowercased()
        if unitText == "m" || unitText == "min" || unitText == "mins" || unitText == "minutes" {
            throw .ambiguous(original, why: "write mo for months, for example 6mo; minutes are too short for an expiry")
        }
        guard let unit = Self.units[unitText] else { throw .unreadable(original) }
        guard count > 0 else { throw .notPositive(original) }
        let start = LocalCalendar.local(now, in: zone)
        switch unit {
        case .hours: return now + count * 3600
        case .days: return LocalCalendar.instant(LocalCalendar.adding(days: count, to: start), in: zone)
        case .weeks: return LocalCalendar.instant(LocalCalendar.adding(days: count * 7, to: start), in: zone)
        case .months: return LocalCalendar.instant(LocalCalendar.adding(months: count, to: start), in: zone)
        case .years: return LocalCalendar.instant(LocalCalendar.adding(months: count * 12, to: start), in: zone)
        }
    }
}

/// Reads fixed-width ASCII digit groups and separators.
private struct DigitReader {
    let bytes: [UInt8]
    var index = 0

    var atEnd: Bool { index == bytes.count }

    mutating func number(digits: Int) -> Int64? {
        guard index + digits <= bytes.count else { return nil }
        var value: Int64 = 0
        for byte in bytes[index..<index + digits] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        index += digits
        return value
    }

    mutating func skip(_ character: Unicode.Scalar) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
        index += 1
        return true
    }
}
