#if canImport(Glibc)
import Glibc
#endif

/// The few socket calls both ends share, with Glibc's quirks handled once.
enum UnixSocket {
    /// sun_path holds 108 bytes, the terminating NUL included.
    static let maxPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// `struct ucred` from <sys/socket.h>, which Glibc's Swift module hides
    /// behind _GNU_SOURCE: pid_t, uid_t, gid_t, in that order.
    struct PeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    static func address(_ path: String) throws(AgentError) -> sockaddr_un {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.first != 0 else {
            // A leading NUL would select the abstract namespace.
            throw .io("the agent socket path is empty")
        }
        guard !bytes.contains(0) else { throw .io("the agent socket path contains a NUL byte") }
        guard bytes.count <= maxPathLength else {
            throw .io("the agent socket path \(path) is \(bytes.count) bytes long, over the limit of \(maxPathLength)")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { out in
            out.copyBytes(from: bytes)
        }
        return address
    }

    static func streamSocket(nonBlocking: Bool) throws(AgentError) -> Int32 {
        var type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        if nonBlocking { type |= Int32(SOCK_NONBLOCK.rawValue) }
        let fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { throw .io("cannot create a socket: \(errnoText())") }
        return fd
    }

    /// connect(2), retried on EINTR; returns 0 or the errno.
    static func connect(_ fd: Int32, to address: sockaddr_un) -> Int32 {
        var address = address
        while true {
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if status == 0 { return 0 }
            if errno != EINTR { return errno }
        }
    }

    static func bind(_ fd: Int32, to address: sockaddr_un) -> Bool {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        } == 0
    }

    /// The credentials the kernel recorded for the other end when it connected.
    static func peerCredentials(_ fd: Int32) -> PeerCredentials? {
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
              length == socklen_t(MemoryLayout<PeerCredentials>.size)
        else { return nil }
        return credentials
    }

    static func setTimeouts(_ fd: Int32, seconds: Int) -> Bool {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        let size = socklen_t(MemoryLayout<timeval>.size)
        return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, size) == 0
            && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, size) == 0
    }

    static func setNonBlockingAndCloseOnExec(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
            && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
    }

    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }
}
