/// The user's time zone, as Policy needs it: the offset from UTC in force at
/// an instant. The CLI answers from the system (localtime_r); tests answer
/// with fixed offsets and hand-made DST rules. Policy reads no clock and no
/// environment itself.
public protocol LocalZone: Sendable {
    /// Seconds east of UTC in force at `utc` (Unix seconds).
    func utcOffset(at utc: Int64) -> Int64
}

/// A zone with one offset all year: UTC, or a test's `+05:30`.
public struct FixedOffsetZone: LocalZone {
    public let seconds: Int64
    public init(seconds: Int64) { self.seconds = seconds }
    public static let utc = FixedOffsetZone(seconds: 0)
    public func utcOffset(at utc: Int64) -> Int64 { seconds }
}

/// Calendar arithmetic on local wall-clock time, without a calendar library.
enum LocalCalendar {
    static let secondsPerDay: Int64 = 86_400

    struct DateTime: Equatable {
        var year: Int64, month: Int64, day: Int64
        var hour: Int64 = 0, minute: Int64 = 0, second: Int64 = 0
    }

    /// The wall-clock time at `utc` in `zone`.
    static func local(_ utc: Int64, in zone: LocalZone) -> DateTime {
        fields(utc + zone.utcOffset(at: utc))
    }

    /// The instant at which `zone`'s clocks show `time`. A time skipped by a
    /// DST change resolves to the instant one offset later, as most systems do.
    static func instant(_ time: DateTime, in zone: LocalZone) -> Int64 {
        let wall = seconds(time)
        let guess = wall - zone.utcOffset(at: wall)
        return wall - zone.utcOffset(at: guess)
    }

    /// Splits seconds counted on a wall clock (as if UTC) into fields.
    static func fields(_ wall: Int64) -> DateTime {
        let (days, secondOfDay) = Timestamp.floorDivide(wall, secondsPerDay)
        let (year, month, day) = Timestamp.civil(fromDays: days)
        return DateTime(year: year, month: month, day: day,
                        hour: secondOfDay / 3600, minute: secondOfDay % 3600 / 60, second: secondOfDay % 60)
    }

    static func seconds(_ time: DateTime) -> Int64 {
        days(year: time.year, month: time.month, day: time.day) * secondsPerDay
            + time.hour * 3600 + time.minute * 60 + time.second
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `time` moved by whole months, the day clamped to the month's end
    /// (Jan 31 + 1 month = Feb 28 or 29).
    static func adding(months: Int64, to time: DateTime) -> DateTime {
        let index = time.year * 12 + (time.month - 1) + months
        var moved = time
        moved.year = Timestamp.floorDivide(index, 12).0
        moved.month = Timestamp.floorDivide(index, 12).1 + 1
        moved.day = min(time.day, daysIn(month: moved.month, year: moved.year))
        return moved
    }

    /// `time` moved by whole days on the calendar, keeping the wall-clock time.
    static func adding(days: Int64, to time: DateTime) -> DateTime {
        var moved = fields(seconds(time) + days * secondsPerDay)
        moved.hour = time.hour
        moved.minute = time.minute
        moved.second = time.second
        return moved
    }
}
