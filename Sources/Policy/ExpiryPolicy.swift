/// Where a credential stands, given its expiry, the warning window and now.
public enum ExpiryState: String, Equatable, Sendable, CaseIterable {
    case ok
    /// Expires within the warning window.
    case expiring
    case expired
    /// No expiration: its own state, which `check --strict` treats as a risk.
    case never
    /// A cached bearer token kept past its maximum age (the exchange uses it).
    case stale
    /// Its issuing server no longer accepts it (revoked, inactive, or gone
    /// from the server's list): as good as expired, whatever its date.
    case revoked
}

/// The decisions about expiry, in one place: given `now` and the user's
/// time zone, what state each entry is in and what to tell the user.
public struct ExpiryPolicy: Sendable {
    public let now: Int64
    public let zone: LocalZone

    /// The default warning window: 14 days.
    public static let defaultWindow: Int64 = 14 * 86_400

    public init(now: Int64, zone: LocalZone) {
        self.now = now
        self.zone = zone
    }

    /// `window` is in seconds; an expiry exactly at the window's end counts
    /// as expiring, one exactly at `now` as expired.
    public func state(expiresAt: Int64?, window: Int64) -> ExpiryState {
        guard let expiresAt else { return .never }
        if expiresAt <= now { return .expired }
        return expiresAt - now <= window ? .expiring : .ok
    }

    /// Whole calendar days from today to the expiry's date, in the user's
    /// time zone: 0 today, 1 tomorrow, -1 yesterday. Counted on dates, not in
    /// 86,400-second steps, so a DST change does not shift it.
    public func daysLeft(until expiresAt: Int64) -> Int64 {
        func dayNumber(_ instant: Int64) -> Int64 {
            let local = LocalCalendar.local(instant, in: zone)
            return LocalCalendar.days(year: local.year, month: local.month, day: local.day)
        }
        return dayNumber(expiresAt) - dayNumber(now)
    }

    /// One line for a person: `expires in 3 days (2027-01-31)`,
    /// `expires today at 17:00`, `expired 2 days ago (2027-01-29)`, `never expires`.
    public func describe(expiresAt: Int64?) -> String {
        guard let expiresAt else { return "never expires" }
        let days = daysLeft(until: expiresAt)
        // Only what the sentence shows is formatted: `check --json` says this of every entry.
        func date() -> String { Timestamp.localDate(expiresAt, in: zone) }
        func time() -> String {
            let local = LocalCalendar.local(expiresAt, in: zone)
            return "\(Timestamp.pad(local.hour, 2)):\(Timestamp.pad(local.minute, 2))"
        }
        if expiresAt > now {
            switch days {
            case 0: return "expires today at \(time())"
            case 1: return "expires tomorrow (\(date()))"
            default: return "expires in \(days) days (\(date()))"
            }
        }
        switch days {
        case 0: return "expired today at \(time())"
        case -1: return "expired yesterday (\(date()))"
        default: return "expired \(-days) days ago (\(date()))"
        }
    }

    /// The window a call uses: the call's, else the entry's, else the vault's,
    /// else the default.
    public static func window(call: Int64?, entry: Int64?, vault: Int64?) -> Int64 {
        call ?? entry ?? vault ?? defaultWindow
    }
}

/// Reads a warning window such as `7d`, `2w`, `36h` or `1mo`: a duration
/// from now, measured as the expiry parser measures it.
public struct WindowParser: Sendable {
    public let now: Int64
    public let zone: LocalZone

    public init(now: Int64, zone: LocalZone) {
        self.now = now
        self.zone = zone
    }

    /// The window in seconds.
    public func parse(_ text: String) throws(ExpiryParser.Failure) -> Int64 {
        let trimmed = text.filter { $0 != " " }
        guard let first = trimmed.first, first.isNumber else { throw .unreadable(text) }
        // A date would parse as an instant; a window must be a duration.
        if trimmed.count >= 10, trimmed.dropFirst(4).first == "-" { throw .unreadable(text) }
        guard case let .at(end) = try ExpiryParser(now: now, zone: zone).parse(text) else { throw .unreadable(text) }
        return end - now
    }
}

/// When a kept bearer token is too old to use: the server never says how
/// long a token lives, so the entry's max age (if set) decides; a token
/// that claims to come from the future (a clock set back) is not trusted.
public enum TokenAge {
    public static func isStale(obtainedAt: Int64, maxAge: Int64?, now: Int64) -> Bool {
        if now < obtainedAt { return true }
        guard let maxAge else { return false }
        return now - obtainedAt >= maxAge
    }
}
