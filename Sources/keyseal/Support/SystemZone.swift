import Policy
import Synchronization
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

/// A zone with its last few answers remembered. `list` and `check` ask for
/// the same instants several times per entry (now, for every "days left";
/// an entry's expiry for its date, its days and its message), and each
/// answer of the system zone takes a lock and a search of the zone's
/// transitions. An offset depends only on the instant, so a remembered
/// answer is the answer.
final class RememberingZone: LocalZone {
    private let zone: LocalZone
    /// Most recently used first.
    private let recent = Mutex<(instants: [Int64], offsets: [Int64])>(([], []))
    private static let size = 4

    init(_ zone: LocalZone) { self.zone = zone }

    func utcOffset(at utc: Int64) -> Int64 {
        if let offset = recent.withLock({ recent -> Int64? in
            guard let index = recent.instants.firstIndex(of: utc) else { return nil }
            let offset = recent.offsets[index]
            if index > 0 {
                recent.instants.remove(at: index)
                recent.offsets.remove(at: index)
                recent.instants.insert(utc, at: 0)
                recent.offsets.insert(offset, at: 0)
            }
            return offset
        }) {
            return offset
        }
        let offset = zone.utcOffset(at: utc)
        recent.withLock { recent in
            if recent.instants.count == Self.size {
                recent.instants.removeLast()
                recent.offsets.removeLast()
            }
            recent.instants.insert(utc, at: 0)
            recent.offsets.insert(offset, at: 0)
        }
        return offset
    }
}
