#if canImport(Glibc)
import Glibc
#endif
import Sealing

/// The stop request of `requestStopFromSignalHandler()`: one byte in a pipe
/// that every run loop polls. write(2) is async-signal-safe, and the kernel
/// orders it with the loop's read, so unlike a plain global flag (this module
/// has no atomics: Glibc exports none to Swift) nothing is shared without
/// synchronisation. Made on the first AgentServer init; never closed.
private let signalPipe: (reader: Int32, writer: Int32) = {
    var ends: (Int32, Int32) = (-1, -1)
    let made = withUnsafeMutableBytes(of: &ends) { pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
    guard made == 0, UnixSocket.setNonBlockingAndCloseOnExec(ends.0),
          UnixSocket.setNonBlockingAndCloseOnExec(ends.1)
    else { return (-1, -1) }
    return (ends.0, ends.1)
}()

/// The unlock agent: holds the vault key and answers seal, open, fingerprint,
/// hello and lock requests (see Protocol.swift) from its own user, on one
/// thread, with one poll(2) loop over non-blocking sockets.
///
/// Every byte that may be a plaintext (each connection's incoming frame,
/// each outgoing answer, each opened secret) lives in guarded memory and is
/// zeroed as soon as its answer has been written. Nothing is logged.
// safety: every mutable property belongs to run(), which runs on one thread;
// stop() from any thread only writes a byte to a pipe that lives as long as
// the object.
public final class AgentServer: @unchecked Sendable {
    /// How much each client may take; fixed, but for tests.
    struct ClientLimits {
        var maxClients = 32
        /// A client must finish a frame it has started within this time...
        var frame: Duration = .seconds(2)
        /// ...and is dropped after this long without sending or receiving.
        var idle: Duration = .seconds(10)
    }

    /// The longest poll(2) wait: deadlines are rechecked at least this often.
    static let tick: Duration = .milliseconds(200)

    private let socketPath: String
    private var key: VaultKey?
    private let vaultID: [UInt8]
    private let idleTimeout: Duration
    private let allowedUID: UInt32
    private let limits: ClientLimits
    private var listener: Int32
    /// The socket file this server bound, so it unlinks only its own.
    private let socketIdentity: (device: UInt64, inode: UInt64)
    private let wakeReader: Int32
    private let wakeWriter: Int32
    private let clock = ContinuousClock()
    private var lastUse: ContinuousClock.Instant
    private var connections: [Connection] = []
    private var lockRequested = false
    private var started = false
    private var finished = false

    /// Binds the socket at `socketPath` (removing a stale socket file there first only if it is a socket owned by us and nobody answers on it), chmod 0600, listens. `idleTimeout` in seconds (> 0).
    public convenience init(socketPath: String, key: VaultKey, vaultID: [UInt8], idleTimeout: Int64) throws(AgentError) {
        try self.init(socketPath: socketPath, key: key, vaultID: vaultID, idleTimeout: idleTimeout, allowedUID: getuid())
    }

    /// `allowedUID`: the only uid whose connections are served (tests pass
    /// another to reach the refusal path without a second user).
    init(
        socketPath: String, key: VaultKey, vaultID: [UInt8], idleTimeout: Int64,
        allowedUID: UInt32, limits: ClientLimits = ClientLimits()
    ) throws(AgentError) {
        guard idleTimeout > 0 else { throw .io("the agent's idle timeout must be at least one second") }
        guard Wire.bodyLength(fieldLengths: [vaultID.count, 8, 4]) <= AgentProtocol.maxFrame else {
            throw .io("the vault id is too long for the agent protocol")
        }
        // Made here, so its lazy initialisation never first runs inside a
        // signal handler.
        guard signalPipe.reader >= 0 else { throw .io("cannot create the agent's signal pipe") }
        let address = try UnixSocket.address(socketPath)
        try Self.removeStaleSocket(at: socketPath, address: address, owner: allowedUID)

        let fd = try UnixSocket.streamSocket(nonBlocking: true)
        var bound = false
        var pipeEnds: [Int32] = [-1, -1]
        func fail(_ what: String) -> AgentError {
            let detail = UnixSocket.errnoText()
            Glibc.close(fd)
            if bound { _ = unlink(socketPath) }
            for end in pipeEnds where end >= 0 { Glibc.close(end) }
            return .io("\(what): \(detail)")
        }
        guard UnixSocket.bind(fd, to: address) else {
            if errno == EADDRINUSE {
                Glibc.close(fd)
                throw .io("\(socketPath) was created by another process meanwhile")
            }
            throw fail("cannot bind \(socketPath)")
        }
        bound = true
        // The private directory already keeps others out; 0600 as well, as
        // the design asks. chmod rather than a umask: the umask is per process.
        guard chmod(socketPath, 0o600) == 0 else { throw fail("cannot set mode 0600 on \(socketPath)") }
        var info = stat()
        guard lstat(socketPath, &info) == 0 else { throw fail("cannot inspect \(socketPath)") }
        guard listen(fd, SOMAXCONN) == 0 else { throw fail("cannot listen on \(socketPath)") }
        guard pipe(&pipeEnds) == 0 else { throw fail("cannot create a pipe") }
        guard UnixSocket.setNonBlockingAndCloseOnExec(pipeEnds[0]),
              UnixSocket.setNonBlockingAndCloseOnExec(pipeEnds[1])
        else { throw fail("cannot configure a pipe") }

        self.socketPath = socketPath
        self.key = key
        self.vaultID = vaultID
        self.idleTimeout = .seconds(idleTimeout)
        self.allowedUID = allowedUID
        self.limits = limits
        self.listener = fd
        self.socketIdentity = (UInt64(info.st_dev), UInt64(info.st_ino))
        self.wakeReader = pipeEnds[0]
        self.wakeWriter = pipeEnds[1]
        self.lastUse = clock.now
    }

    deinit {
        shutDown()
        Glibc.close(wakeReader)
        Glibc.close(wakeWriter)
    }

    /// Serves until lock, idle timeout or stop; then drops the key (VaultKey's guarded memory is freed and zeroed), closes and unlinks the socket, and returns why.
    ///
    /// The key is freed when the server's reference is the last one: give
    /// the server the only reference to it. Call `run()` once, on one thread.
    public func run() -> AgentExit {
        precondition(!started, "AgentServer.run() called twice")
        started = true
        lastUse = clock.now
        let reason = serve()
        shutDown()
        return reason
    }

    /// Thread-safe: asks `run()` to return `.stopped`.
    public func stop() {
        var byte: UInt8 = 1
        _ = write(wakeWriter, &byte, 1)
    }

    /// Async-signal-safe (one write(2), errno preserved): asks a running
    /// `run()` to return `.stopped`; it wakes at once. The loop that sees the
    /// request consumes it; one made while no loop runs stops the next.
    /// For SIGTERM, SIGINT and SIGHUP handlers, installed after an
    /// AgentServer has been created.
    public static func requestStopFromSignalHandler() {
        let saved = errno
        var byte: UInt8 = 1
        _ = write(signalPipe.writer, &byte, 1)
        errno = saved
    }

    // MARK: The loop

    private func socketStillOurs() -> Bool {
        var info = stat()
        guard lstat(socketPath, &info) == 0 else { return false }
        return (UInt64(info.st_dev), UInt64(info.st_ino)) == socketIdentity
    }

    /// When `socketStillOurs` last said yes.
    private var socketCheckedAt: ContinuousClock.Instant?

    private func serve() -> AgentExit {
        var pollSet: [pollfd] = []
        while true {
            if lockRequested { return .locked }
            let now = clock.now
            if now - lastUse >= idleTimeout { return .idle }
            // Its socket removed or replaced (the directory cleaned up), no
            // client can reach this agent again: it stops at once rather than
            // hold the key until the timeout.
            // Looked at once a tick, not on every turn of the loop: an lstat
            // per turn was a path walk per request (perf, docs/PERFORMANCE.md).
            if socketCheckedAt.map({ now - $0 >= Self.tick }) ?? true {
                if !socketStillOurs() { return .stopped }
                socketCheckedAt = now
            }
            dropExpired(now)

            pollSet.removeAll(keepingCapacity: true)
            pollSet.append(pollfd(fd: wakeReader, events: Int16(POLLIN), revents: 0))
            pollSet.append(pollfd(fd: signalPipe.reader, events: Int16(POLLIN), revents: 0))
            pollSet.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            for connection in connections {
                // One request at a time: nothing is read while an answer waits.
                let events = connection.output == nil ? POLLIN : POLLOUT
                pollSet.append(pollfd(fd: connection.fd, events: Int16(events), revents: 0))
            }
            let ready = poll(&pollSet, nfds_t(pollSet.count), waitMilliseconds(now))
            if ready < 0 {
                if errno == EINTR || errno == ENOMEM { continue }
                return .stopped
            }
            if ready == 0 { continue }
            if pollSet[0].revents != 0 { return .stopped }
            if pollSet[1].revents != 0 {
                // Another server may have taken it first.
                if Self.takeSignalRequests() { return .stopped }
            }

            let now2 = clock.now
            // The connections polled, before any accepted below joins them.
            let polled = connections
            for (index, connection) in polled.enumerated() {
                let revents = Int32(pollSet[index + Self.fixedPollEntries].revents)
                guard revents != 0, !connection.isClosed else { continue }
                if revents & POLLNVAL != 0 {
                    connection.close()
                } else if connection.output == nil, revents & (POLLIN | POLLHUP | POLLERR) != 0 {
                    // A read also finds the end of stream or the error.
                    readRequests(connection, now2)
                    // The answer goes out at once: the socket nearly always
                    // has room, and waiting for the next poll cost every
                    // request another turn of the loop. What does not fit
                    // waits for POLLOUT as before.
                    if connection.output != nil, !connection.isClosed { writeAnswer(connection, now2) }
                } else if revents & POLLOUT != 0 {
                    writeAnswer(connection, now2)
                } else if revents & (POLLHUP | POLLERR) != 0 {
                    connection.close()
                }
            }
            if Int32(pollSet[2].revents) & POLLIN != 0 { acceptClients(now2) }
            connections.removeAll { $0.isClosed }
        }
    }

    /// Stop pipe, signal pipe, listener; then one entry per connection.
    private static let fixedPollEntries = 3

    /// Empties the signal pipe; true if it held a request.
    private static func takeSignalRequests() -> Bool {
        var taken = false
        var buffer = [UInt8](repeating: 0, count: 64)
        while buffer.withUnsafeMutableBytes({ read(signalPipe.reader, $0.baseAddress!, $0.count) }) > 0 {
            taken = true
        }
        return taken
    }

    /// Until the nearest deadline, at most one tick; rounded up so a deadline
    /// a fraction of a millisecond away does not spin.
    private func waitMilliseconds(_ now: ContinuousClock.Instant) -> Int32 {
        var wait = Self.tick
        wait = min(wait, lastUse + idleTimeout - now)
        for connection in connections {
            wait = min(wait, deadline(of: connection) - now)
        }
        let (seconds, attoseconds) = wait.components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(max(0, min(milliseconds, 200)))
    }

    private func dropExpired(_ now: ContinuousClock.Instant) {
        for connection in connections where deadline(of: connection) <= now {
            connection.close()
        }
        connections.removeAll { $0.isClosed }
    }

    /// A frame under way must be finished within the frame limit, and so
    /// must the reading of a last answer; otherwise silence, or an answer the
    /// client does not read, lasts the idle limit.
    private func deadline(of connection: Connection) -> ContinuousClock.Instant {
        if let started = connection.frameStarted { return started + limits.frame }
        if connection.closeAfterAnswer { return connection.lastActivity + limits.frame }
        return connection.lastActivity + limits.idle
    }

    private func acceptClients(_ now: ContinuousClock.Instant) {
        // Bounded, so a flood of connections cannot starve the others.
        for _ in 0...limits.maxClients {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            // Before a byte is read: the peer must be our own user, and there
            // must be room for it.
            guard let peer = UnixSocket.peerCredentials(fd), peer.uid == allowedUID,
                  connections.count < limits.maxClients,
                  UnixSocket.setNonBlockingAndCloseOnExec(fd)
            else {
                Glibc.close(fd)
                continue
            }
            connections.append(Connection(fd: fd, now: now))
        }
    }

    /// Reads what has arrived of the current frame; once it is whole, answers it.
    private func readRequests(_ connection: Connection, _ now: ContinuousClock.Instant) {
        while !connection.isClosed, connection.output == nil {
            let count: Int
            if let body = connection.body {
                let filled = connection.bodyFilled
                count = body.bytes.withUnsafeMutableBytes { buffer in
                    recv(connection.fd, buffer.baseAddress! + filled, buffer.count - filled, 0)
                }
            } else {
                let filled = connection.prefixFilled
                count = connection.prefix.withUnsafeMutableBytes { buffer in
                    recv(connection.fd, buffer.baseAddress! + filled, buffer.count - filled, 0)
                }
            }
            if count == 0 {
                connection.close()
                return
            }
            if count < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { connection.close() }
                return
            }
            connection.lastActivity = now
            if connection.frameStarted == nil { connection.frameStarted = now }
            if let body = connection.body {
                connection.bodyFilled += count
                guard connection.bodyFilled == body.count else { continue }
                let answer = respond(to: body, now)
                // The request, perhaps a plaintext, is zeroed here.
                connection.body = nil
                connection.bodyFilled = 0
                connection.frameStarted = nil
                queue(answer, on: connection, now)
            } else {
                connection.prefixFilled += count
                guard connection.prefixFilled == Wire.prefixLength else { continue }
                let length = Int(Wire.u32(connection.prefix))
                connection.prefixFilled = 0
                guard length >= 1, length <= AgentProtocol.maxFrame else {
                    queue(Answer(.malformed, close: true), on: connection, now)
                    return
                }
                guard let body = try? SecretBytes(count: length) else {
                    queue(Answer(.internalError, close: true), on: connection, now)
                    return
                }
                connection.body = GuardedBuffer(body)
            }
        }
    }

    private func queue(_ answer: Answer, on connection: Connection, _ now: ContinuousClock.Instant) {
        guard let frame = answer.frame ?? (try? Wire.bare(code: answer.status.rawValue)) else {
            connection.close()
            return
        }
        connection.output = frame
        connection.outputSent = 0
        connection.closeAfterAnswer = answer.close
        writeAnswer(connection, now)
    }

    private func writeAnswer(_ connection: Connection, _ now: ContinuousClock.Instant) {
        guard let output = connection.output else { return }
        while connection.outputSent < output.count {
            let sent = connection.outputSent
            let count = output.bytes.withUnsafeBytes { frame in
                send(connection.fd, frame.baseAddress! + sent, frame.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                connection.outputSent += count
                connection.lastActivity = now
                continue
            }
            if count < 0, errno == EINTR { continue }
            if count < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            connection.close()
            return
        }
        // Written: the answer, perhaps an opened plaintext, is zeroed here.
        connection.output = nil
        connection.outputSent = 0
        if connection.closeAfterAnswer { connection.close() }
    }

    // MARK: Requests

    // Internal, not private: the agent fuzz target (Tests/FuzzTests) answers
    // frames through respond(to:_:) without a socket.
    struct Answer {
        let status: ResponseStatus
        /// nil: a bare frame of `status`, built when it is queued.
        let frame: GuardedBuffer?
        let close: Bool

        init(_ status: ResponseStatus, close: Bool = false) {
            self.status = status
            self.frame = nil
            self.close = close
        }

        init(ok frame: GuardedBuffer) {
            self.status = .ok
            self.frame = frame
            self.close = false
        }
    }

    func respond(to request: GuardedBuffer, _ now: ContinuousClock.Instant) -> Answer {
        request.bytes.withUnsafeBytes { body in
            guard body[0] == AgentProtocol.version else {
                return Answer(.unsupportedVersion, close: true)
            }
            guard body.count >= Wire.headerLength, let opcode = Opcode(rawValue: body[1]) else {
                return Answer(.malformed, close: true)
            }
            var fields = FieldReader(body: body)
            switch opcode {
            case .hello:
                guard fields.isAtEnd else { return Answer(.malformed, close: true) }
                return hello(now)
            case .seal:
                guard let plaintext = fields.next(), let associatedData = fields.next(), fields.isAtEnd else {
                    return Answer(.malformed, close: true)
                }
                lastUse = now
                return seal(plaintext, associatedData: Array(associatedData))
            case .open:
                guard let nonce = fields.next(), let ciphertext = fields.next(),
                      let associatedData = fields.next(), fields.isAtEnd
                else { return Answer(.malformed, close: true) }
                lastUse = now
                return open(SealedBox(nonce: Array(nonce), ciphertext: Array(ciphertext)),
                            associatedData: Array(associatedData))
            case .openVerified:
                guard let nonce = fields.next(), let ciphertext = fields.next(),
                      let associatedData = fields.next(), let fingerprint = fields.next(), fields.isAtEnd
                else { return Answer(.malformed, close: true) }
                lastUse = now
                return open(SealedBox(nonce: Array(nonce), ciphertext: Array(ciphertext)),
                            associatedData: Array(associatedData), fingerprint: Array(fingerprint))
            case .fingerprint:
                guard let plaintext = fields.next(), fields.isAtEnd else { return Answer(.malformed, close: true) }
                lastUse = now
                return fingerprint(plaintext)
            case .lock:
                guard fields.isAtEnd else { return Answer(.malformed, close: true) }
                // The key goes now, before the answer is even written.
                key = nil
                lockRequested = true
                return Answer(.ok, close: true)
            }
        }
    }

    private func hello(_ now: ContinuousClock.Instant) -> Answer {
        let left = lastUse + idleTimeout - now
        let secondsLeft = max(0, left.components.seconds)
        let fields = [vaultID, Wire.bigEndian(secondsLeft), Wire.bigEndian(getpid())]
        return okAnswer(fields.map(\.count)) { writer in
            for field in fields { writer.field(field) }
        }
    }

    private func seal(_ plaintext: UnsafeRawBufferPointer, associatedData: [UInt8]) -> Answer {
        guard let key else { return Answer(.internalError) }
        do {
            let secret = try SecretBytes(copying: plaintext)
            let box = try key.seal(secret, associatedData: associatedData)
            return okAnswer([box.nonce.count, box.ciphertext.count]) { writer in
                writer.field(box.nonce)
                writer.field(box.ciphertext)
            }
        } catch {
            return Answer(.internalError)
        }
    }

    /// With `fingerprint`, the value must also match it (open verified).
    private func open(_ box: SealedBox, associatedData: [UInt8], fingerprint: [UInt8]? = nil) -> Answer {
        guard let key else { return Answer(.internalError) }
        do {
            // Freed, and zeroed, when this function returns; its one copy
            // is the answer frame, freed once written.
            let plaintext = if let fingerprint {
                try key.openVerified(box, associatedData: associatedData, fingerprint: fingerprint)
            } else {
                try key.open(box, associatedData: associatedData)
            }
            return okAnswer([plaintext.count]) { writer in writer.field(plaintext) }
        } catch .authenticationFailed, .invalidLength {
            return Answer(.authenticationFailed)
        } catch {
            return Answer(.internalError)
        }
    }

    private func fingerprint(_ plaintext: UnsafeRawBufferPointer) -> Answer {
        guard let key else { return Answer(.internalError) }
        do {
            let secret = try SecretBytes(copying: plaintext)
            let digest = try key.fingerprint(secret)
            return okAnswer([digest.count]) { writer in writer.field(digest) }
        } catch {
            return Answer(.internalError)
        }
    }

    private func okAnswer(_ fieldLengths: [Int], write: (inout FrameWriter) -> Void) -> Answer {
        guard Wire.bodyLength(fieldLengths: fieldLengths) <= AgentProtocol.maxFrame,
              let frame = try? Wire.frame(code: ResponseStatus.ok.rawValue, fieldLengths: fieldLengths, write: write)
        else { return Answer(.internalError) }
        return Answer(ok: frame)
    }

    // MARK: Start and end

    /// Drops the key, every connection and its buffers, then the socket.
    private func shutDown() {
        key = nil
        for connection in connections { connection.close() }
        connections.removeAll()
        guard !finished else { return }
        finished = true
        // Unlinked first: from then on a client finds no agent rather than a
        // dead socket.
        var info = stat()
        if lstat(socketPath, &info) == 0,
           UInt64(info.st_dev) == socketIdentity.device, UInt64(info.st_ino) == socketIdentity.inode {
            _ = unlink(socketPath)
        }
        Glibc.close(listener)
        listener = -1
    }

    /// A socket file left by an agent that died without cleaning up is
    /// removed; anything else at the path is left alone and refused.
    private static func removeStaleSocket(at path: String, address: sockaddr_un, owner: UInt32) throws(AgentError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw .io("cannot inspect \(path): \(UnixSocket.errnoText())")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw .io("\(path) exists and is not a socket")
        }
        guard info.st_uid == owner else { throw .peerNotOwner(uid: info.st_uid) }
        let probe = try UnixSocket.streamSocket(nonBlocking: true)
        let failure = UnixSocket.connect(probe, to: address)
        Glibc.close(probe)
        switch failure {
        case ECONNREFUSED:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw .io("cannot remove the stale socket \(path): \(UnixSocket.errnoText())")
            }
        case 0, EAGAIN, EINPROGRESS:
            throw .io("another agent is already serving \(path)")
        default:
            throw .io("cannot probe the socket \(path): \(UnixSocket.errnoText(failure))")
        }
    }
}

/// One client: its socket, the frame it is sending, the answer it is owed.
private final class Connection {
    let fd: Int32
    private(set) var isClosed = false
    /// The frame's length prefix: not secret.
    var prefix = [UInt8](repeating: 0, count: Wire.prefixLength)
    var prefixFilled = 0
    /// The frame's body, in guarded memory: it may hold a plaintext.
    var body: GuardedBuffer?
    var bodyFilled = 0
    /// The answer being written, in guarded memory: it may hold a plaintext.
    var output: GuardedBuffer?
    var outputSent = 0
    var closeAfterAnswer = false
    var frameStarted: ContinuousClock.Instant?
    var lastActivity: ContinuousClock.Instant

    init(fd: Int32, now: ContinuousClock.Instant) {
        self.fd = fd
        self.lastActivity = now
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        body = nil
        output = nil
        Glibc.close(fd)
    }

    deinit {
        close()
    }
}
