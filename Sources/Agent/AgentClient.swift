#if canImport(Glibc)
import Glibc
#endif
import Sealing

/// A connection to a running agent. It is an `EntrySealer`: storage seals,
/// opens and fingerprints through it exactly as through a `VaultKey`, while
/// the key stays in the agent.
///
/// One connection serves one request at a time; use it from one thread.
public final class AgentClient: EntrySealer {
    /// Receive and send timeouts on the socket.
    static let ioTimeoutSeconds = 5

    private let fd: Int32
    /// The agent's pid, as the kernel reported it when the connection was made.
    public let peerPID: Int32
    /// Set once a request failed mid-frame: the stream can no longer be trusted.
    private var broken = false
    /// The agent failure behind the `SealingError` the last seal, open or
    /// fingerprint threw; nil when it succeeded or failed before reaching the
    /// agent. `EntrySealer` speaks only `SealingError`, and a dead agent is
    /// not a tampered entry.
    public private(set) var lastError: AgentError?
    /// The status the agent gave when this client connected (the hello that
    /// checks its version), so a caller needs no second round trip for it.
    public private(set) var greeting: AgentStatus?

    private init(fd: Int32, peerPID: Int32) {
        self.fd = fd
        self.peerPID = peerPID
    }

    deinit {
        Glibc.close(fd)
    }

    /// Connects (AF_UNIX, SOCK_STREAM, path socket; never abstract), checks the peer's uid with SO_PEERCRED equals getuid() (else peerNotOwner), sends a hello and checks the version (else versionMismatch, keeping the peer pid available). Receive/send timeouts of a few seconds (SO_RCVTIMEO/SO_SNDTIMEO).
    ///
    /// On `versionMismatch`, `agentPID(socketPath:)` gives the pid of the agent
    /// to replace.
    public static func connect(socketPath: String) throws(AgentError) -> AgentClient {
        try connect(socketPath: socketPath, expectedUID: getuid())
    }

    /// The pid of the process serving `socketPath`, from SO_PEERCRED, after
    /// the same owner check as `connect`; nothing is sent. For replacing an
    /// agent that speaks another protocol version.
    public static func agentPID(socketPath: String) throws(AgentError) -> Int32 {
        let (fd, credentials) = try open(socketPath, expectedUID: getuid())
        Glibc.close(fd)
        return credentials.pid
    }

    static func connect(socketPath: String, expectedUID: UInt32) throws(AgentError) -> AgentClient {
        let (fd, credentials) = try open(socketPath, expectedUID: expectedUID)
        let client = AgentClient(fd: fd, peerPID: credentials.pid)
        client.greeting = try client.status()
        return client
    }

    private static func open(_ socketPath: String, expectedUID: UInt32) throws(AgentError) -> (Int32, UnixSocket.PeerCredentials) {
        let address = try UnixSocket.address(socketPath)
        let fd = try UnixSocket.streamSocket(nonBlocking: false)
        // Set before connect: a blocking connect to a full backlog waits for
        // the send timeout, not forever.
        guard UnixSocket.setTimeouts(fd, seconds: ioTimeoutSeconds) else {
            let code = errno
            Glibc.close(fd)
            throw .io("cannot set socket timeouts: \(UnixSocket.errnoText(code))")
        }
        let failure = UnixSocket.connect(fd, to: address)
        guard failure == 0 else {
            Glibc.close(fd)
            switch failure {
            case ENOENT, ECONNREFUSED, ENOTDIR: throw .notRunning
            case EAGAIN, ETIMEDOUT: throw .io("the agent at \(socketPath) does not accept connections")
            default: throw .io("cannot connect to the agent at \(socketPath): \(UnixSocket.errnoText(failure))")
            }
        }
        guard let credentials = UnixSocket.peerCredentials(fd) else {
            let code = errno
            Glibc.close(fd)
            throw .io("cannot read the agent's credentials: \(UnixSocket.errnoText(code))")
        }
        guard credentials.uid == expectedUID else {
            Glibc.close(fd)
            throw .peerNotOwner(uid: credentials.uid)
        }
        return (fd, credentials)
    }

    /// Does not extend the agent's idle timer.
    public func status() throws(AgentError) -> AgentStatus {
        let reply = try exchange(Self.request(.hello))
        return try reply.bytes.withUnsafeBytes { body throws(AgentError) -> AgentStatus in
            var fields = FieldReader(body: body)
            guard let vaultID = fields.next(),
                  let secondsLeft = fields.next(), secondsLeft.count == 8,
                  let pid = fields.next(), pid.count == 4,
                  fields.isAtEnd
            else { throw malformedReply("hello") }
            return AgentStatus(
                vaultID: Array(vaultID), secondsLeft: Wire.int64(secondsLeft),
                pid: Wire.int32(pid), protocolVersion: body[0])
        }
    }

    /// The agent wipes its key and exits.
    public func lock() throws(AgentError) {
        let reply = try exchange(Self.request(.lock))
        guard reply.count == Wire.headerLength else { throw malformedReply("lock") }
    }

    // MARK: EntrySealer

    public func seal(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> SealedBox {
        lastError = nil
        let request = try sealRequest(plaintext, associatedData: associatedData)
        return try mapped { () throws(AgentError) -> SealedBox in try sealedBox(in: try exchange(request)) }
    }

    /// Both requests sent at once, then both replies read.
    public func sealWithFingerprint(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> (box: SealedBox, fingerprint: [UInt8]) {
        lastError = nil
        let seal = try sealRequest(plaintext, associatedData: associatedData)
        let digest = try fingerprintRequest(plaintext)
        guard seal.count + digest.count <= Self.pipelineBudget else {
            return (try self.seal(plaintext, associatedData: associatedData), try fingerprint(plaintext))
        }
        return try mapped { () throws(AgentError) -> (box: SealedBox, fingerprint: [UInt8]) in
            let replies = try exchangeAll([seal, digest])
            return (try sealedBox(in: try replies[0].get()), try fingerprintValue(in: try replies[1].get()))
        }
    }

    private func sealRequest(_ plaintext: borrowing SecretBytes, associatedData: [UInt8]) throws(SealingError) -> GuardedBuffer {
        let fieldLengths = [plaintext.count, associatedData.count]
        // Not only this request and its answer: the open request the box
        // will need later must fit as well.
        let box = [AEAD.nonceLength, plaintext.count + AEAD.tagLength]
        try Self.checkFits(request: fieldLengths, reply: box, then: box + [associatedData.count],
                           what: "plaintext", count: plaintext.count)
        return try Wire.frame(code: Opcode.seal.rawValue, fieldLengths: fieldLengths) { writer in
            writer.field(plaintext)
            writer.field(associatedData)
        }
    }

    private func sealedBox(in reply: GuardedBuffer) throws(AgentError) -> SealedBox {
        try reply.bytes.withUnsafeBytes { body throws(AgentError) -> SealedBox in
            var fields = FieldReader(body: body)
            guard let nonce = fields.next(), let ciphertext = fields.next(), fields.isAtEnd else {
                throw malformedReply("seal")
            }
            return SealedBox(nonce: Array(nonce), ciphertext: Array(ciphertext))
        }
    }

    /// Sent in groups under `pipelineBudget` bytes; each value the agent
    /// sends back is dropped (its guarded reply zeroed) as soon as it is read.
    public func verifyAll(_ items: [SealedCheck]) -> [Bool] {
        var results: [Bool] = []
        results.reserveCapacity(items.count)
        var group: [GuardedBuffer] = []
        var groupBytes = 0
        func flush() -> Bool {
            defer { group.removeAll(keepingCapacity: true); groupBytes = 0 }
            guard !group.isEmpty else { return true }
            do throws(AgentError) {
                for reply in try exchangeAll(group) {
                    if case .success = reply { results.append(true) } else { results.append(false) }
                }
                return true
            } catch {
                lastError = error
                return false
            }
        }
        for item in items {
            guard let request = try? openRequest(item.box, associatedData: item.associatedData, fingerprint: item.fingerprint) else {
                // Refused before it could be sent (a malformed box): a failure of its own.
                guard flush() else { break }
                results.append(false)
                continue
            }
            if groupBytes + request.count > Self.pipelineBudget, !flush() { break }
            group.append(request)
            groupBytes += request.count
        }
        _ = flush()
        // After a broken connection, the rest could not be checked.
        while results.count < items.count { results.append(false) }
        return results
    }

    public func open(_ box: SealedBox, associatedData: [UInt8]) throws(SealingError) -> SecretBytes {
        try open(box, associatedData: associatedData, fingerprint: nil)
    }

    /// One round trip: the agent opens the box and compares the value's
    /// fingerprint with `fingerprint` itself.
    public func openVerified(_ box: SealedBox, associatedData: [UInt8], fingerprint: [UInt8]) throws(SealingError) -> SecretBytes {
        try open(box, associatedData: associatedData, fingerprint: fingerprint)
    }

    private func open(_ box: SealedBox, associatedData: [UInt8], fingerprint: [UInt8]?) throws(SealingError) -> SecretBytes {
        lastError = nil
        let request = try openRequest(box, associatedData: associatedData, fingerprint: fingerprint)
        let reply = try mapped { () throws(AgentError) -> GuardedBuffer in try exchange(request) }
        let range = try mapped { () throws(AgentError) -> Range<Int> in
            try reply.bytes.withUnsafeBytes { body throws(AgentError) -> Range<Int> in
                var fields = FieldReader(body: body)
                guard let plaintext = fields.next(), fields.isAtEnd else { throw malformedReply("open") }
                let start = plaintext.baseAddress.map { $0 - body.baseAddress! } ?? 0
                return start..<(start + plaintext.count)
            }
        }
        // From the guarded reply straight into the plaintext's own guarded
        // buffer; the reply is zeroed when this function returns.
        var plaintext = try SecretBytes(count: range.count)
        plaintext.withUnsafeMutableBytes { out in
            reply.bytes.withUnsafeBytes { body in
                out.copyMemory(from: UnsafeRawBufferPointer(rebasing: body[range]))
            }
        }
        return plaintext
    }

    private func openRequest(_ box: SealedBox, associatedData: [UInt8], fingerprint: [UInt8]?) throws(SealingError) -> GuardedBuffer {
        // The same refusal a VaultKey gives, before anything is sent.
        guard box.nonce.count == AEAD.nonceLength else {
            throw .invalidLength(what: "nonce", expected: AEAD.nonceLength, actual: box.nonce.count)
        }
        guard box.ciphertext.count >= AEAD.tagLength else { throw .authenticationFailed }
        var fieldLengths = [box.nonce.count, box.ciphertext.count, associatedData.count]
        if let fingerprint { fieldLengths.append(fingerprint.count) }
        try Self.checkFits(request: fieldLengths, reply: [box.ciphertext.count - AEAD.tagLength],
                           what: "ciphertext", count: box.ciphertext.count)
        let opcode = fingerprint == nil ? Opcode.open : Opcode.openVerified
        return try Wire.frame(code: opcode.rawValue, fieldLengths: fieldLengths) { writer in
            writer.field(box.nonce)
            writer.field(box.ciphertext)
            writer.field(associatedData)
            if let fingerprint { writer.field(fingerprint) }
        }
    }

    public func fingerprint(_ plaintext: borrowing SecretBytes) throws(SealingError) -> [UInt8] {
        lastError = nil
        let request = try fingerprintRequest(plaintext)
        return try mapped { () throws(AgentError) -> [UInt8] in try fingerprintValue(in: try exchange(request)) }
    }

    private func fingerprintRequest(_ plaintext: borrowing SecretBytes) throws(SealingError) -> GuardedBuffer {
        let fieldLengths = [plaintext.count]
        try Self.checkFits(request: fieldLengths, reply: [VaultKey.fingerprintLength],
                           what: "plaintext", count: plaintext.count)
        return try Wire.frame(code: Opcode.fingerprint.rawValue, fieldLengths: fieldLengths) { writer in
            writer.field(plaintext)
        }
    }

    private func fingerprintValue(in reply: GuardedBuffer) throws(AgentError) -> [UInt8] {
        try reply.bytes.withUnsafeBytes { body throws(AgentError) -> [UInt8] in
            var fields = FieldReader(body: body)
            guard let digest = fields.next(), fields.isAtEnd else { throw malformedReply("fingerprint") }
            return Array(digest)
        }
    }

    /// Runs an agent request for `EntrySealer`, whose callers understand only
    /// `SealingError`: a box that does not authenticate stays
    /// `.authenticationFailed`; an agent that cannot be reached or answers
    /// wrongly becomes `.sealerUnavailable`, never `.authenticationFailed`,
    /// which storage reports as tampering. The agent's own error is kept in
    /// `lastError`.
    private func mapped<R>(_ body: () throws(AgentError) -> R) throws(SealingError) -> R {
        do {
            return try body()
        } catch {
            lastError = error
            throw error == .authenticationFailed ? .authenticationFailed : .sealerUnavailable(error.description)
        }
    }

    /// Refuses, before building it, a request or a reply over the frame limit.
    private static func checkFits(
        request: [Int], reply: [Int], then later: [Int] = [], what: String, count: Int
    ) throws(SealingError) {
        let largest = [request, reply, later].map { Wire.bodyLength(fieldLengths: $0) }.max()!
        guard largest <= AgentProtocol.maxFrame else {
            throw .invalidLength(what: what, expected: count - (largest - AgentProtocol.maxFrame), actual: count)
        }
    }

    private static func request(_ opcode: Opcode) throws(AgentError) -> GuardedBuffer {
        do {
            return try Wire.bare(code: opcode.rawValue)
        } catch {
            throw .io("could not allocate guarded memory")
        }
    }

    // MARK: Transport

    /// Sends one request frame and reads its reply; returns the reply body
    /// (version, status, fields) when its status is ok. No arrays and no
    /// `Result` here: `header` makes two of these, and instantiating those
    /// generic types at start-up cost it 157k instructions (callgrind).
    private func exchange(_ request: GuardedBuffer) throws(AgentError) -> GuardedBuffer {
        guard !broken else { throw .protocolError("the connection to the agent was lost") }
        // Any failure below leaves the stream mid-frame.
        broken = true
        try request.bytes.withUnsafeBytes { frame throws(AgentError) in try sendAll(frame) }
        return try receiveReply()
    }

    /// Sends every request, then reads every reply, in order: the agent
    /// answers one request after another on a connection, so requests sent
    /// together cost one wait for the agent instead of one each (a wait is
    /// two context switches, most of a round trip here). A reply's status
    /// (ok, authentication failed, internal error) is its element; a broken
    /// stream throws. The caller keeps the requests small enough together
    /// (`pipelineBudget`) that neither side can block on a full socket.
    private func exchangeAll(_ requests: [GuardedBuffer]) throws(AgentError) -> [Result<GuardedBuffer, AgentError>] {
        guard !broken else { throw .protocolError("the connection to the agent was lost") }
        broken = true
        for request in requests {
            try request.bytes.withUnsafeBytes { frame throws(AgentError) in try sendAll(frame) }
        }
        var replies: [Result<GuardedBuffer, AgentError>] = []
        replies.reserveCapacity(requests.count)
        for _ in requests {
            broken = true
            do {
                replies.append(.success(try receiveReply()))
            } catch {
                // Still in step after a failure status: that reply's alone.
                if broken { throw error }
                replies.append(.failure(error))
            }
        }
        broken = false
        return replies
    }

    /// Requests sent together stay under this many bytes, far below a Unix
    /// socket's buffer, so the agent's answers always have room.
    static let pipelineBudget = 32 * 1024

    /// Reads one reply frame and returns its body when its status is ok. A
    /// failure status that leaves the stream in step (authentication failed,
    /// internal error) is thrown with `broken` cleared; anything else is
    /// thrown with the connection left broken.
    private func receiveReply() throws(AgentError) -> GuardedBuffer {
        var prefix = [UInt8](repeating: 0, count: Wire.prefixLength)
        // Array's withUnsafeMutableBytes rethrows untyped: carry the error out as a value.
        let failure = prefix.withUnsafeMutableBytes { buffer -> AgentError? in
            do throws(AgentError) {
                try receiveAll(buffer)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        let length = Int(Wire.u32(prefix))
        guard length >= Wire.headerLength, length <= AgentProtocol.maxFrame else {
            throw .protocolError("the agent sent a frame of \(length) bytes")
        }
        let reply: GuardedBuffer
        do {
            reply = GuardedBuffer(try SecretBytes(count: length))
        } catch {
            throw .io("could not allocate guarded memory")
        }
        try reply.bytes.withUnsafeMutableBytes { buffer throws(AgentError) in try receiveAll(buffer) }
        let (version, status) = reply.bytes.withUnsafeBytes { ($0[0], $0[1]) }
        guard version == AgentProtocol.version else { throw .versionMismatch(found: version) }
        switch ResponseStatus(rawValue: status) {
        case .ok:
            broken = false
            return reply
        case .authenticationFailed:
            guard length == Wire.headerLength else { throw malformedReply("authentication failure") }
            broken = false
            throw .authenticationFailed
        case .internalError:
            broken = false
            throw .protocolError("the agent could not complete the request")
        case .malformed:
            throw .protocolError("the agent refused the request as malformed")
        case .unsupportedVersion:
            throw .protocolError("the agent refused protocol version \(AgentProtocol.version) though it speaks it")
        case nil:
            throw .protocolError("the agent answered with unknown status \(status)")
        }
    }

    private func malformedReply(_ what: String) -> AgentError {
        broken = true
        return .protocolError("malformed \(what) reply from the agent")
    }

    private func sendAll(_ frame: UnsafeRawBufferPointer) throws(AgentError) {
        var sent = 0
        while sent < frame.count {
            let count = send(fd, frame.baseAddress! + sent, frame.count - sent, Int32(MSG_NOSIGNAL))
            if count > 0 {
                sent += count
                continue
            }
            let code = errno
            if count < 0, code == EINTR { continue }
            throw transportError(code)
        }
    }

    private func receiveAll(_ buffer: UnsafeMutableRawBufferPointer) throws(AgentError) {
        var received = 0
        while received < buffer.count {
            let count = recv(fd, buffer.baseAddress! + received, buffer.count - received, 0)
            if count > 0 {
                received += count
                continue
            }
            if count == 0 { throw .protocolError("the agent closed the connection") }
            let code = errno
            if code == EINTR { continue }
            throw transportError(code)
        }
    }

    private func transportError(_ code: Int32) -> AgentError {
        switch code {
        case EAGAIN, EWOULDBLOCK: .io("the agent did not answer within \(Self.ioTimeoutSeconds) s")
        case EPIPE, ECONNRESET: .protocolError("the agent closed the connection")
        default: .io("talking to the agent failed: \(UnixSocket.errnoText(code))")
        }
    }
}
