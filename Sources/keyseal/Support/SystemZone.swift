import Policy
#if canImport(Glibc)
import Glibc
#endif

/// The user's time zone as the C library knows it (TZ, /etc/localtime).
struct SystemZone: LocalZone {
    init() { tzset() }

    func utcOffset(at utc: Int64) -> Int64 {
        var time = time_t(utc)
        var fields = tm()
        guard localtime_r(&time, &fields) != nil else { return 0 }
        return Int64(fields.tm_gmtoff)
    }
}
