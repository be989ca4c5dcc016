import ArgumentParser
import Agent
import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Unlock the vault once; an agent keeps the key until lock or the idle timeout.",
        discussion: """
            Later commands (header, curl, get, run, add, …) use the agent and ask \
            for nothing. The agent never hands the key out: it seals and opens \
            on request, for this user only. It exits, wiping the key, on \
            keyseal lock, after --timeout without use (default: the vault's \
            agent-timeout setting, else 15m), or on SIGTERM.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Option(help: ArgumentHelp("Lock after this long without use: 15m, 2h, 1d.", valueName: "duration"))
    var timeout: String?

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let idle = try timeoutSeconds(vault)
            if let running = try AgentConnection.find(for: vault) {
                let status = try running.status()
                Output.info("already unlocked: \(vault.path), \(AgentTime.describe(status.secondsLeft)) left (agent pid \(status.pid)); keyseal lock to end it")
                return
            }
            try AgentConnection.replaceIncompatible(for: vault)
            let unlocked = try unlockOptions.unlockLocally(vault)
            guard let key = unlocked.localKey else { throw StorageError.needsVaultKey }
            let socket = try AgentConnection.socketPath(for: vault)
            let pid = try AgentLauncher.start(key: key, vaultID: vault.vaultID, socket: socket, idleTimeout: idle)
            Output.info("unlocked \(vault.path) for \(AgentTime.describe(idle)) without use (agent pid \(pid)); keyseal lock to end it")
        }
    }

    private func timeoutSeconds(_ vault: Vault) throws -> Int64 {
        if let timeout { return try AgentTime.parse(timeout) }
        if let stored = try vault.setting(VaultSetting.agentTimeout.rawValue), let seconds = Int64(stored), seconds > 0 {
            return seconds
        }
        return AgentTime.defaultTimeout
    }
}

enum AgentTime {
    static let defaultTimeout: Int64 = 15 * 60

    /// 15m, 2h, 1d, 90s: minutes are allowed here, unlike for expiries.
    static func parse(_ text: String) throws -> Int64 {
        let trimmed = text.filter { $0 != " " }.lowercased()
        let digits = trimmed.prefix(while: \.isNumber)
        let unit = trimmed.dropFirst(digits.count)
        if !digits.isEmpty, digits.allSatisfy({ $0 == "0" }) {
            throw CLIError(.usage, "an agent timeout of 0 would lock at once", hint: "for example --timeout 15m")
        }
        let scale: Int64? = switch unit {
        case "s", "sec", "secs", "second", "seconds": 1
        case "m", "min", "mins", "minute", "minutes": 60
        case "h", "hour", "hours": 3600
        case "d", "day", "days": 86_400
        default: nil
        }
        guard !digits.isEmpty, digits.count <= 7, let count = Int64(digits), let scale else {
            throw CLIError(.usage, "\(text.debugDescription) is not a timeout", hint: "for example 15m, 2h or 1d")
        }
        return count * scale
    }

    static func describe(_ seconds: Int64) -> String {
        if seconds >= 3600 && seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds >= 60 { return "\(seconds / 60)m" + (seconds % 60 == 0 ? "" : " \(seconds % 60)s") }
        return "\(seconds)s"
    }
}

/// POSIX_SPAWN_SETSID from glibc's <spawn.h> (a _GNU_SOURCE name the Glibc
/// module does not export).
private let posixSpawnSetSID: Int32 = 0x80

/// Starts the agent: this same binary, `keyseal agent`, in a new session
/// with no terminal, given the key through a pipe (never argv or the
/// environment); returns once it listens.
enum AgentLauncher {
    static func start(key: VaultKey, vaultID: [UInt8], socket: String, idleTimeout: Int64) throws -> Int32 {
        guard let executable = selfExecutable() else { throw CLIError(.failure, "cannot find keyseal's own executable") }
        var keyPipe: [Int32] = [0, 0]
        var readyPipe: [Int32] = [0, 0]
        guard pipe(&keyPipe) == 0, pipe(&readyPipe) == 0 else {
            throw CLIError(.failure, "cannot make a pipe for the agent: \(String(cString: strerror(errno)))")
        }
        for fd in keyPipe + readyPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, keyPipe[0], 3)
        posix_spawn_file_actions_adddup2(&actions, readyPipe[1], 4)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own: no controlling terminal, no hang-up from ours.
        posix_spawnattr_setflags(&attributes, Int16(posixSpawnSetSID))
        let arguments = ["keyseal", "agent", "--socket", socket, "--vault-id", Hex.encode(vaultID), "--timeout", String(idleTimeout)]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        var envp: [UnsafeMutablePointer<CChar>?] = Launcher.environment(droppingPrefix: "KEYSEAL_").map { strdup($0) }
        envp.append(nil)
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(keyPipe[0])
        close(readyPipe[1])
        defer { close(readyPipe[0]) }
        guard status == 0 else {
            close(keyPipe[1])
            throw CLIError(.failure, "cannot start the agent: \(String(cString: strerror(status)))")
        }
        let sent = key.withRootKeyBytes { bytes in
            Glibc.write(keyPipe[1], bytes.baseAddress!, bytes.count) == bytes.count
        }
        close(keyPipe[1])
        guard sent else { throw CLIError(.failure, "cannot hand the key to the agent") }
        // The agent writes "ready" once it listens, or a reason and exits.
        var answer = [UInt8](repeating: 0, count: 512)
        let got = Glibc.read(readyPipe[0], &answer, answer.count)
        let text = got > 0 ? String(decoding: answer[..<got], as: UTF8.self) : ""
        guard text.hasPrefix("ready") else {
            var ignored: Int32 = 0
            waitpid(pid, &ignored, 0)
            throw CLIError(.failure, "the agent did not start" + (text.isEmpty ? "" : ": \(text.trimmingTrailingSpaces())"))
        }
        return pid
    }

    static func selfExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

}
