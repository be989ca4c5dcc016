import Agent
import Storage
#if canImport(Glibc)
import Glibc
#endif

/// Where the agent of a vault listens, and how to reach it.
enum AgentConnection {
    /// $XDG_RUNTIME_DIR/keyseal, else /tmp/keyseal-UID (checked: ours, 0700,
    /// not a symlink).
    static func directory() throws -> String {
        let path = directoryPath()
        do {
            return try SocketDirectory.prepare(path, uid: getuid())
        } catch {
            throw CLIError(.failure, "\(error)", hint: "remove or fix \(path); keyseal keeps its agent socket only in a private directory")
        }
    }

    static func directoryPath() -> String {
        if let runtime = Environment.value("XDG_RUNTIME_DIR"), runtime.hasPrefix("/") { return runtime + "/keyseal" }
        return "/tmp/keyseal-\(getuid())"
    }

    /// The socket path, with the directory checked (and created, for unlock).
    static func socketPath(for vault: Vault) throws -> String {
        SocketDirectory.socketPath(directory: try directory(), vaultID: vault.vaultID)
    }

    /// An agent of another protocol version (an older keyseal's) is ended
    /// with SIGTERM, so a new one can take its socket; its pid comes from
    /// SO_PEERCRED and is of our own uid.
    static func replaceIncompatible(for vault: Vault) throws {
        let path = try socketPath(for: vault)
        guard FileSystem.exists(path) else { return }
        do {
            _ = try AgentClient.connect(socketPath: path)
        } catch .versionMismatch {
            guard let pid = try? AgentClient.agentPID(socketPath: path), pid > 0 else { return }
            kill(pid, SIGTERM)
            for _ in 0..<40 where FileSystem.exists(path) { usleep(50_000) }
        } catch {
            return
        }
    }

    /// The running agent for this vault, if any. An agent of another
    /// protocol version, or holding another vault, is not used.
    static func find(for vault: Vault) throws -> AgentClient? {
        // Without a directory there is no agent; looking creates nothing.
        guard FileSystem.exists(directoryPath()) else { return nil }
        let path: String
        do {
            path = try socketPath(for: vault)
        } catch {
            // An unsafe directory is not used, but other ways to unlock are.
            Output.warning("not using the agent: \(Failure.message(for: error))")
            return nil
        }
        guard FileSystem.exists(path) else { return nil }
        do {
            let client = try AgentClient.connect(socketPath: path)
            guard client.greeting?.vaultID == vault.vaultID else { return nil }
            return client
        } catch .peerNotOwner(let uid) {
            throw CLIError(.failure, "the agent socket \(path) is served by another user (uid \(uid))",
                           hint: "remove it; keyseal talks only to its own user's agent")
        } catch {
            return nil
        }
    }
}
