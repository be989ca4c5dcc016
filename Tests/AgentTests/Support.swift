import Foundation
import Testing
@testable import Agent
import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// Every agent test in one serialized tree: one test sends the process-wide
/// signal stop request, which would stop any server running beside it, and
/// another sets the umask for a moment.
@Suite(.serialized) struct AgentTests {}

func secret(_ text: String) -> SecretBytes {
    let bytes = Array(text.utf8)
    var secret = try! SecretBytes(count: bytes.count)
    secret.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
    return secret
}

func text(_ secret: borrowing SecretBytes) -> String {
    secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
}

/// A private directory under /tmp, short enough for socket paths; removed on deinit.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/ksagent-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        path = String(cString: made)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func socket(_ vaultID: [UInt8] = testVaultID) -> String {
        SocketDirectory.socketPath(directory: path, vaultID: vaultID)
    }
}

let testVaultID: [UInt8] = Array(0..<16)

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An AgentServer running `run()` on its own thread.
final class RunningAgent: @unchecked Sendable {
    // safety: `result` is written once by the server thread before `done` is
    // signalled and read only after waiting on `done`.
    let server: AgentServer
    let socketPath: String
    private let done = DispatchSemaphore(value: 0)
    private var result: AgentExit?
    private var collected: AgentExit??

    init(_ server: AgentServer, socketPath: String) {
        self.server = server
        self.socketPath = socketPath
        let thread = Thread { [self] in
            result = server.run()
            done.signal()
        }
        thread.start()
    }

    /// The value `run()` returned, or nil if it has not within `seconds`.
    func exit(within seconds: Double) -> AgentExit? {
        if let collected { return collected }
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        collected = .some(result)
        return result
    }

    /// Stops the server if it still runs; for the end of every test.
    func finish() {
        server.stop()
        _ = exit(within: 5)
    }
}

/// Starts an agent for `key` in `directory`.
func startAgent(
    in directory: TemporaryDirectory, key: VaultKey, idleTimeout: Int64 = 60,
    allowedUID: UInt32 = getuid(), limits: AgentServer.ClientLimits = .init()
) throws -> RunningAgent {
    let path = directory.socket()
    let server = try AgentServer(
        socketPath: path, key: key, vaultID: testVaultID, idleTimeout: idleTimeout,
        allowedUID: allowedUID, limits: limits)
    return RunningAgent(server, socketPath: path)
}

func fileExists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o7777
}

func frame(_ body: [UInt8]) -> [UInt8] {
    lengthPrefix(body.count) + body
}

func lengthPrefix(_ length: Int) -> [UInt8] {
    let value = UInt32(length)
    return [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
}

func field(_ bytes: [UInt8]) -> [UInt8] {
    lengthPrefix(bytes.count) + bytes
}

/// A client that speaks raw bytes, to send what AgentClient never would.
final class RawConnection {
    let fd: Int32

    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            close(fd)
            throw TestFailure("connect failed: errno \(errno)")
        }
    }

    deinit {
        close(fd)
    }

    /// Sends what the socket takes; false once the agent has closed its end.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    /// Everything received until the agent closes the connection or
    /// `seconds` pass; `closed` says which.
    func readUntilClosed(within seconds: Double) -> (bytes: [UInt8], closed: Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return (received, false) }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(left * 1000) + 1) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
            } else if count == 0 || errno == ECONNRESET {
                return (received, true)
            }
        }
    }
}

/// A stand-in agent of the test's making: accepts one connection, reads one
/// frame, writes `reply` and closes. For the client's handling of answers a
/// real agent never gives.
final class FakeAgent: @unchecked Sendable {
    // safety: `listener` is set in init and only read afterwards.
    let path: String
    private let listener: Int32
    private let finished = DispatchSemaphore(value: 0)

    init(path: String, reply: [UInt8]) throws {
        self.path = path
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0, listen(listener, 8) == 0 else { throw TestFailure("fake agent cannot listen") }
        let finished = finished
        Thread {
            let fd = accept(listener, nil, nil)
            if fd >= 0 {
                var prefix = [UInt8](repeating: 0, count: 4)
                _ = recv(fd, &prefix, 4, Int32(MSG_WAITALL))
                let length = Int(prefix[0]) << 24 | Int(prefix[1]) << 16 | Int(prefix[2]) << 8 | Int(prefix[3])
                var body = [UInt8](repeating: 0, count: min(length, 1 << 20))
                _ = recv(fd, &body, body.count, Int32(MSG_WAITALL))
                _ = reply.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                close(fd)
            }
            finished.signal()
        }.start()
    }

    deinit {
        close(listener)
        unlink(path)
    }

    func waitUntilServed() -> Bool {
        finished.wait(timeout: .now() + 5) == .success
    }
}
