/// Every failure the agent module reports. No case carries request content.
public enum AgentError: Error, Equatable, CustomStringConvertible {
    /// No socket, or nobody answers on it.
    case notRunning
    /// The agent speaks another protocol version.
    case versionMismatch(found: UInt8)
    /// The socket is served by another user.
    case peerNotOwner(uid: UInt32)
    case unsafeSocketDirectory(path: String, reason: String)
    /// A malformed answer, or a connection closed early.
    case protocolError(String)
    /// open: the box did not authenticate.
    case authenticationFailed
    case io(String)

    public var description: String {
        switch self {
        case .notRunning: "no agent is running"
        case let .versionMismatch(found):
            "the agent speaks protocol version \(found), this keyseal speaks version \(AgentProtocol.version)"
        case let .peerNotOwner(uid): "the agent socket is served by another user (uid \(uid))"
        case let .unsafeSocketDirectory(path, reason): "unsafe agent socket directory \(path): \(reason)"
        case let .protocolError(detail): "agent protocol error: \(detail)"
        case .authenticationFailed: "authentication failed"
        case let .io(detail): detail
        }
    }
}

/// What `hello` reports about a running agent.
public struct AgentStatus: Sendable, Equatable {
    public let vaultID: [UInt8]
    /// Seconds until the agent's idle timeout, as of the request; never negative.
    public let secondsLeft: Int64
    public let pid: Int32
    public let protocolVersion: UInt8

    public init(vaultID: [UInt8], secondsLeft: Int64, pid: Int32, protocolVersion: UInt8) {
        self.vaultID = vaultID
        self.secondsLeft = secondsLeft
        self.pid = pid
        self.protocolVersion = protocolVersion
    }
}

/// Why `AgentServer.run()` returned. Each way, the key has been dropped.
public enum AgentExit: Equatable, Sendable {
    /// A client asked for `lock`.
    case locked
    /// No seal, open or fingerprint within the idle timeout.
    case idle
    /// `stop()`, or a signal through `requestStopFromSignalHandler()`.
    case stopped
}
