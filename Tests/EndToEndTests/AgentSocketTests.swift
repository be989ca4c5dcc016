import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A pre-created agent socket directory that unlock must refuse.
struct UnsafeDirectory: Sendable, CustomTestStringConvertible {
    let label: String
    /// The reason unlock gives.
    let reason: String
    let make: @Sendable (_ path: String, _ sandbox: String) throws -> Void

    var testDescription: String { label }

    static let all: [UnsafeDirectory] = [
        UnsafeDirectory(label: "a symlink to a private directory", reason: "it is a symbolic link") { path, root in
            try FileManager.default.createDirectory(atPath: root + "/elsewhere", withIntermediateDirectories: false)
            try #require(chmod(root + "/elsewhere", 0o700) == 0)
            try #require(symlink(root + "/elsewhere", path) == 0)
        },
        UnsafeDirectory(label: "mode 0755", reason: "group or others have access (mode 0755, expected 0700)") { path, _ in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            try #require(chmod(path, 0o755) == 0)
        },
        UnsafeDirectory(label: "mode 0710", reason: "group or others have access (mode 0710, expected 0700)") { path, _ in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            try #require(chmod(path, 0o710) == 0)
        },
        UnsafeDirectory(label: "owned by nobody", reason: "it is owned by uid 65534, not 0") { path, _ in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            try #require(chmod(path, 0o700) == 0)
            try #require(chown(path, 65534, 65534) == 0)
        },
        UnsafeDirectory(label: "a regular file", reason: "it is not a directory") { path, _ in
            try #require(FileManager.default.createFile(atPath: path, contents: Data()))
        },
    ]
}

@Suite("the agent socket: only its own user gets an answer; bad frames and slow clients harm nobody")
struct AgentSocketTests {
    static let clean = "Authorization: Bearer socket-value\n"

    /// `header svc` through the agent, with no passphrase source.
    static func expectServes(_ sandbox: Sandbox, pid: Int32, after what: String,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(!ProcessState.isGone(pid), "the agent died after \(what)", sourceLocation: sourceLocation)
        let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(header.status == 0 && header.out == clean && header.stderr.isEmpty, "after \(what): \(header)",
                sourceLocation: sourceLocation)
        #expect(try await sandbox.status().pid == pid, "after \(what)", sourceLocation: sourceLocation)
    }

    @Test("a client running as nobody never gets a byte: the directory, the socket's mode and SO_PEERCRED each stop it")
    func otherUserGetsNothing() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "socket-value")
        let pid = try await sandbox.unlockAgent()
        let name = try #require(sandbox.agentSockets().first)
        let socket = sandbox.agentDirectory + "/" + name
        let hello = AgentScripts.hex(AgentScripts.hello)
        #expect(sandbox.mode(sandbox.agentDirectory) == 0o700)
        var info = stat()
        #expect(lstat(socket, &info) == 0 && info.st_mode & 0o7777 == 0o600 && info.st_mode & S_IFMT == S_IFSOCK,
                "the socket's mode is \(String(info.st_mode, radix: 8))")

        // The client works: as root, the owner, it gets hello's answer
        // (our version, status ok) and the connection stays open.
        let own = try Sandbox.json(try await sandbox.python3(AgentScripts.client, [socket, hello]))
        #expect(own["connect"] as? String == "ok", "\(own)")
        #expect(own["end"] as? String == "frame", "\(own)")
        #expect((own["received"] as? String)?.dropFirst(8).hasPrefix(AgentScripts.hex([AgentScripts.version, 0])) == true, "\(own)")
        #expect(own["closed"] as? Bool == false, "\(own)")

        // 1. As set up: the 0700 directories keep nobody from the socket.
        let blocked = try Sandbox.json(try await sandbox.python3(AgentScripts.client, [socket, hello], asNobody: true))
        #expect(blocked["connect"] as? String == "EACCES", "\(blocked)")
        #expect(blocked["received"] as? String == "", "\(blocked)")

        // 2. The directories opened to search (0711): the 0600 socket still refuses.
        let directories = [sandbox.root, sandbox.runtime, sandbox.agentDirectory]
        let modes = directories.map { sandbox.mode($0) ?? 0o700 }
        defer {
            for (directory, mode) in zip(directories, modes) { chmod(directory, mode) }
            chmod(socket, 0o600)
        }
        for directory in directories { try #require(chmod(directory, 0o711) == 0) }
        let modeOnly = try Sandbox.json(try await sandbox.python3(AgentScripts.client, [socket, hello], asNobody: true))
        #expect(modeOnly["connect"] as? String == "EACCES", "\(modeOnly)")
        #expect(modeOnly["received"] as? String == "", "\(modeOnly)")

        // 3. The socket opened as well (0666): connect succeeds, and the
        // agent's SO_PEERCRED check closes the connection unanswered.
        try #require(chmod(socket, 0o666) == 0)
        let peer = try Sandbox.json(try await sandbox.python3(AgentScripts.client, [socket, hello], asNobody: true))
        #expect(peer["connect"] as? String == "ok", "\(peer)")
        #expect(peer["received"] as? String == "", "nobody got an answer: \(peer)")
        #expect(["eof", "ECONNRESET", "EPIPE"].contains(peer["end"] as? String ?? ""), "\(peer)")
        #expect(peer["closed"] as? Bool == true, "\(peer)")

        for (directory, mode) in zip(directories, modes) { chmod(directory, mode) }
        chmod(socket, 0o600)
        try await Self.expectServes(sandbox, pid: pid, after: "the connections from nobody")
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))
    }

    @Test("a pre-created socket directory that is unsafe makes unlock refuse, naming it, and no agent starts",
          arguments: UnsafeDirectory.all)
    func unsafeDirectoryRefused(_ unsafe: UnsafeDirectory) async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "unsafe-dir")
        try unsafe.make(sandbox.agentDirectory, sandbox.root)
        var before = stat()
        #expect(lstat(sandbox.agentDirectory, &before) == 0)

        let result = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault])
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.contains("keyseal: error: unsafe agent socket directory \(sandbox.agentDirectory): \(unsafe.reason)\n"),
                "\(result)")
        #expect(result.err.hasSuffix("keyseal: hint: remove or fix \(sandbox.agentDirectory); keyseal keeps its agent socket only in a private directory\n"),
                "\(result)")
        #expect(!result.err.contains("keyseal: unlocked"), "\(result)")
        #expect(sandbox.agentPIDs().isEmpty, "an agent started: \(sandbox.agentPIDs())")
        // Left as it was: not fixed, not replaced, no socket inside.
        var after = stat()
        #expect(lstat(sandbox.agentDirectory, &after) == 0)
        #expect(after.st_mode == before.st_mode && after.st_uid == before.st_uid && after.st_ino == before.st_ino)
        let inside = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.agentDirectory)) ?? []
        #expect(inside.isEmpty, "\(inside)")
        if FileManager.default.fileExists(atPath: sandbox.root + "/elsewhere") {
            #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox.root + "/elsewhere").isEmpty)
        }
        let state = try await sandbox.run(["status", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(state.status != 0, "\(state)")
        #expect(state.out.isEmpty || state.out == "locked: \(sandbox.vault)\n", "\(state)")
        // Other ways to unlock still work, with a word about the directory.
        let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault])
        #expect(header.status == 0 && header.out == "Authorization: Bearer unsafe-dir\n", "\(header)")
        #expect(header.err.contains(sandbox.agentDirectory), "\(header)")
        #expect(sandbox.agentPIDs().isEmpty)
    }

    /// A request, the exact answer it must get (hex, nil for none), and
    /// whether the agent must then close the connection.
    private static let v = AgentScripts.version
    /// A bare answer: our version and `status`, in hex.
    private static func refusal(_ status: UInt8) -> String { AgentScripts.hex(AgentScripts.frame([v, status])) }

    static let badFrames: [(label: String, request: [UInt8], answer: String?, closed: Bool)] = [
        ("garbage bytes", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), refusal(2), true),
        ("a length of 0", [0, 0, 0, 0], refusal(2), true),
        ("a length of 2^31", [0x80, 0, 0, 0, 1, 1], refusal(2), true),
        ("a length of 2^32-1", [0xff, 0xff, 0xff, 0xff], refusal(2), true),
        ("one byte over the 256 KiB limit", [0x00, 0x04, 0x00, 0x01, 1, 1], refusal(2), true),
        ("an older version byte", AgentScripts.frame([v - 1, 1]), refusal(3), true),
        ("a newer version byte", AgentScripts.frame([v + 1, 1]), refusal(3), true),
        ("version 0", AgentScripts.frame([0, 1]), refusal(3), true),
        ("an unknown opcode", AgentScripts.frame([v, 0x63]), refusal(2), true),
        ("opcode 0", AgentScripts.frame([v, 0]), refusal(2), true),
        ("a one-byte body", AgentScripts.frame([v]), refusal(2), true),
        ("hello with a trailing byte", AgentScripts.frame([v, 1, 0]), refusal(2), true),
        ("open with a field running past the end", AgentScripts.frame([v, 3, 0, 0, 0, 200, 1, 2]), refusal(2), true),
        ("lock with a field", AgentScripts.frame([v, 5, 0, 0, 0, 0]), refusal(2), true),
        ("open verified without its fingerprint",
         AgentScripts.frame([v, 6] + [0, 0, 0, 24] + [UInt8](repeating: 7, count: 24)
             + [0, 0, 0, 17] + [UInt8](repeating: 9, count: 17) + [0, 0, 0, 0]),
         refusal(2), true),
        ("seal with one field of two", AgentScripts.frame([v, 2, 0, 0, 0, 1, 0x41]), refusal(2), true),
        ("open of a box that does not authenticate",
         AgentScripts.frame([v, 3] + [0, 0, 0, 24] + [UInt8](repeating: 7, count: 24)
             + [0, 0, 0, 17] + [UInt8](repeating: 9, count: 17) + [0, 0, 0, 0]),
         refusal(1), false),
        ("open verified of a box that does not authenticate",
         AgentScripts.frame([v, 6] + [0, 0, 0, 24] + [UInt8](repeating: 7, count: 24)
             + [0, 0, 0, 17] + [UInt8](repeating: 9, count: 17) + [0, 0, 0, 0] + [0, 0, 0, 16] + [UInt8](repeating: 1, count: 16)),
         refusal(1), false),
    ]

    @Test("malformed and oversized frames get a refusal, never crash the agent; it serves the next client after each")
    func malformedFrames() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "socket-value")
        let pid = try await sandbox.unlockAgent()
        let socket = sandbox.agentDirectory + "/" + (try #require(sandbox.agentSockets().first))

        for frame in Self.badFrames {
            let reply = try Sandbox.json(try await sandbox.python3(AgentScripts.client, [socket, AgentScripts.hex(frame.request)]))
            #expect(reply["connect"] as? String == "ok", "\(frame.label): \(reply)")
            if let answer = frame.answer {
                #expect(reply["received"] as? String == answer, "\(frame.label): \(reply)")
            }
            #expect(reply["closed"] as? Bool == frame.closed, "\(frame.label): \(reply)")
            try await Self.expectServes(sandbox, pid: pid, after: frame.label)
        }

        // Half a frame, then the client closes.
        let halfFrame = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            s.sendall(bytes([0, 0, 0, 40, 1, 2, 0, 0, 0, 30, 65, 65]))
            s.close()
            """
        for _ in 0..<3 {
            let sent = try await sandbox.python3(halfFrame, [socket])
            #expect(sent.status == 0, "\(sent)")
        }
        // Half a length prefix, then the client closes.
        let halfPrefix = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            s.sendall(bytes([0, 0]))
            s.close()
            """
        let sent = try await sandbox.python3(halfPrefix, [socket])
        #expect(sent.status == 0, "\(sent)")
        try await Self.expectServes(sandbox, pid: pid, after: "half frames")

        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))
    }

    @Test("a client that stalls mid-frame does not hold up others, and is dropped after about 2 s")
    func slowClient() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "socket-value")
        let pid = try await sandbox.unlockAgent()
        let socket = sandbox.agentDirectory + "/" + (try #require(sandbox.agentSockets().first))
        // Holds half a frame open, runs `keyseal header` meanwhile, then
        // waits for the agent to drop it.
        let stall = """
            import json, socket, subprocess, sys, time
            path, keyseal, vault = sys.argv[1:4]
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.sendall(bytes([0, 0, 0, 40, 1, 2, 0, 0]))
            start = time.monotonic()
            header = subprocess.run([keyseal, "header", "svc", "--vault", vault], capture_output=True, timeout=10)
            took = time.monotonic() - start
            s.settimeout(6)
            data, end = b"", "eof"
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                end = "timeout"
            except OSError as e:
                end = "error"
            print(json.dumps({"header_status": header.returncode, "header_out": header.stdout.decode(),
                              "header_err": header.stderr.decode(), "header_seconds": took,
                              "received": data.hex(), "end": end, "dropped_after": time.monotonic() - start}))
            """
        let result = try await sandbox.python3(stall, [socket, sandbox.keyseal, sandbox.vault], env: noPassphraseSource)
        let reply = try Sandbox.json(result)
        #expect(reply["header_status"] as? Int == 0, "\(reply)")
        #expect(reply["header_out"] as? String == Self.clean, "\(reply)")
        #expect(reply["header_err"] as? String == "", "\(reply)")
        #expect(reply["end"] as? String == "eof", "the stalled client was not dropped: \(reply)")
        #expect(reply["received"] as? String == "", "\(reply)")
        let dropped = (reply["dropped_after"] as? Double) ?? 99
        // Served while the stalled client still held its connection.
        #expect(((reply["header_seconds"] as? Double) ?? 99) < dropped, "header waited for the stalled client: \(reply)")
        #expect(dropped > 1.5 && dropped < 4, "dropped after \(dropped) s")
        try await Self.expectServes(sandbox, pid: pid, after: "the stalled client")
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))
    }
}
