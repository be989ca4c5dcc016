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
        guard timeout > 0, let vaultID = Hex.decode(vaultId), vaultID.count == 16 else {
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
}
