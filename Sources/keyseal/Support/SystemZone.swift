import Policy
#if canImport(Glibc)
import Glibc
#endif

/// The user's time zone as the C library knows it (TZ, /etc/localtime).
/// localtime_r loads the zone on its first call, so a command that never
/// shows or compares a date (header of an entry without expiry) reads no
/// zone file at all.
struct SystemZone: LocalZone {
    func utcOffset(at utc: Int64) -> Int64 {
        var time = time_t(utc)
        var fields = tm()
        guard localtime_r(&time, &fields) != nil else { return 0 }
        return Int64(fields.tm_gmtoff)
    }
}
