/// Formats Unix seconds as ISO 8601 in UTC, with no calendar library: the
/// civil-from-days conversion of Howard Hinnant's date algorithms.
public enum Timestamp {
    /// `2026-11-29T16:25:24Z`
    public static func iso8601(_ seconds: Int64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        appendISO8601(seconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `iso8601(seconds)`'s bytes appended to `out`, with no string built
    /// on the way (list --json writes a few per entry).
    public static func appendISO8601(_ seconds: Int64, to out: inout [UInt8]) {
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        guard (0...9999).contains(year) else {
            out.append(contentsOf: paddedISO8601(seconds).utf8)
            return
        }
        appendDigits(year, month, day, to: &out)
        out.append(UInt8(ascii: "T"))
        appendTwoDigits(secondOfDay / 3600, to: &out)
        out.append(UInt8(ascii: ":"))
        appendTwoDigits(secondOfDay % 3600 / 60, to: &out)
        out.append(UInt8(ascii: ":"))
        appendTwoDigits(secondOfDay % 60, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// `date(seconds)`'s bytes appended to `out`.
    public static func appendDate(_ seconds: Int64, to out: inout [UInt8]) {
        let (year, month, day) = civil(fromDays: floorDivide(seconds, 86_400).0)
        guard (0...9999).contains(year) else {
            out.append(contentsOf: paddedISO8601(seconds).utf8.prefix(while: { $0 != UInt8(ascii: "T") }))
            return
        }
        appendDigits(year, month, day, to: &out)
    }

    /// `2026-11-29` for a year of four digits.
    private static func appendDigits(_ year: Int64, _ month: Int64, _ day: Int64, to out: inout [UInt8]) {
        appendTwoDigits(year / 100, to: &out)
        appendTwoDigits(year % 100, to: &out)
        out.append(UInt8(ascii: "-"))
        appendTwoDigits(month, to: &out)
        out.append(UInt8(ascii: "-"))
        appendTwoDigits(day, to: &out)
    }

    private static func appendTwoDigits(_ value: Int64, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "0") + UInt8(value / 10))
        out.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// The general form, for years outside 0 to 9999 (as `pad` writes them).
    static func paddedISO8601(_ seconds: Int64) -> String {
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))Z"
    }

    /// `2026-11-29`
    public static func date(_ seconds: Int64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(10)
        appendDate(seconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

extension Timestamp {
    /// `2027-01-31 23:59:59 +01:00`: wall-clock time in `zone`, with its offset.
    public static func local(_ seconds: Int64, in zone: LocalZone) -> String {
        let offset = zone.utcOffset(at: seconds)
        let wall = String(iso8601(seconds + offset).dropLast().map { $0 == "T" ? " " : $0 })
        let sign = offset < 0 ? "-" : "+"
        let magnitude = abs(offset)
        return "\(wall) \(sign)\(pad(magnitude / 3600, 2)):\(pad(magnitude % 3600 / 60, 2))"
    }

    /// `2027-01-31`: the date in `zone`.
    public static func localDate(_ seconds: Int64, in zone: LocalZone) -> String {
        date(seconds + zone.utcOffset(at: seconds))
    }

    /// `localDate(seconds, in: zone)`'s bytes appended to `out`.
    public static func appendLocalDate(_ seconds: Int64, in zone: LocalZone, to out: inout [UInt8]) {
        appendDate(seconds + zone.utcOffset(at: seconds), to: &out)
    }
}
