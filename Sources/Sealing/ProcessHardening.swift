internal import CSodium
#if canImport(Glibc)
import Glibc
#endif

/// Keeps secrets out of core files and away from same-user debuggers. Every
/// command that will hold a secret calls `apply()` before it reads one.
public enum ProcessHardening {
    public static func apply() throws(SealingError) {
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        guard setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore) == 0 else {
            throw .hardeningFailed(call: "setrlimit(RLIMIT_CORE)", errno: errno)
        }
        // Not dumpable also means: no ptrace attach by the same uid, and
        // /proc/PID/mem, environ and the like owned by root.
        guard keyseal_set_dumpable(0) == 0 else {
            throw .hardeningFailed(call: "prctl(PR_SET_DUMPABLE)", errno: errno)
        }
    }

    public static var isDumpable: Bool { keyseal_get_dumpable() != 0 }
}
