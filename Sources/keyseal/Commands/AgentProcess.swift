import ArgumentParser
import Agent
import Sealing
#if canImport(Glibc)
import Glibc
#endif

/// The agent itself, started by `keyseal unlock`; not for people.
struct AgentProcess: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "The unlock agent (started by keyseal unlock).", shouldDisplay: false)

    @Option var socket: String
    @Option var vaultId: String
    @Option var timeout: Int64

    func run() throws {
        // The key arrives on descriptor 3; descriptor 4 reports readiness.
        let ready: Int32 = 4
        Self.detachFromLauncher()
        func report(_ text: String) {
            _ = text.withCString { Glibc.write(ready, $0, strlen($0)) }
        }
        guard timeout > 0, let vaultID = Self.bytes(fromHex: vaultId) else {
            report("bad arguments")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        let server: AgentServer
        do {
            let root = try SecretReader.readExactly(fd: 3, limit: VaultKey.length, what: "vault key")
            close(3)
            // Only the server holds the key, so it is freed (and zeroed) the
            // moment the server lets it go.
            server = try AgentServer(socketPath: socket, key: try VaultKey(root), vaultID: vaultID, idleTimeout: timeout)
        } catch {
            report("\(error)")
            throw ExitCode(ExitStatus.failure.rawValue)
        }
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] {
            signal(signalNumber) { _ in AgentServer.requestStopFromSignalHandler() }
        }
        signal(SIGPIPE, SIG_IGN)
        report("ready\n")
        close(ready)
        _ = server.run()
    }

    /// The agent outlives the command that started it, so it keeps nothing of
    /// that command's: every descriptor above 4 is closed (a caller waiting
    /// for a pipe to close would otherwise wait for the agent's timeout), and
    /// the signal mask inherited from the launching thread is cleared, so
    /// SIGTERM reaches the handlers.
    static func detachFromLauncher() {
        let limit = min(Int32(clamping: sysconf(Int32(_SC_OPEN_MAX))), 65_536)
        if limit > 5 { for fd in 5..<limit { close(fd) } }
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
    }

    static func bytes(fromHex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count == 32 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
