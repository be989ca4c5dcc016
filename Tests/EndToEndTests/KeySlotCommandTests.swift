import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("other ways to unlock: key files, KEYSEAL_ASKPASS; and passwd")
struct KeySlotCommandTests {
    static let wrongPassphrase = """
        keyseal: error: the passphrase does not unlock this vault
        keyseal: hint: try again; if the passphrase is right, the vault's key slot was altered: restore it from a backup

        """

    @Test("key add --keyfile makes a 0600 file of 32 bytes (even under umask 000) that unlocks; key list; key rm")
    func keyFileSlot() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "keyfile-value")
        let keyFile = sandbox.root + "/vault.key"

        let added = try await sandbox.shell(#"umask 000; exec "$0" "$@""#, ["key", "add", "--keyfile", keyFile, "--vault", sandbox.vault])
        #expect(added.status == 0, "\(added)")
        #expect(added.stdout.isEmpty, "\(added)")
        #expect(added.err == "keyseal: added key slot 2; unlock with KEYSEAL_KEYFILE=\(keyFile)\n", "\(added)")
        var info = stat()
        #expect(lstat(keyFile, &info) == 0 && info.st_mode & S_IFMT == S_IFREG)
        #expect(info.st_mode & 0o7777 == 0o600, "mode \(String(info.st_mode & 0o7777, radix: 8))")
        let key = try #require(sandbox.bytes(keyFile))
        #expect(key.count == 32, "\(key.count) bytes")
        #expect(Set(key).count > 8, "the key file does not look random: \(Array(key))")

        // An existing path is refused and left alone.
        let existing = sandbox.root + "/existing.key"
        try sandbox.write("do not overwrite me\n", to: existing, mode: 0o640)
        let refused = try await sandbox.run(["key", "add", "--keyfile", existing, "--vault", sandbox.vault])
        #expect(refused.status == 73, "\(refused)")
        #expect(refused.stdout.isEmpty, "\(refused)")
        #expect(refused.err.hasPrefix("keyseal: error: \(existing) already exists; keyseal never overwrites a key file\n"), "\(refused)")
        #expect(sandbox.bytes(existing) == Data("do not overwrite me\n".utf8))
        #expect(sandbox.mode(existing) == 0o640)
        // Nor is a second key file made over the first.
        let again = try await sandbox.run(["key", "add", "--keyfile", keyFile, "--vault", sandbox.vault])
        #expect(again.status == 73, "\(again)")
        #expect(sandbox.bytes(keyFile) == key)

        let list = try await sandbox.run(["key", "list", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(list.status == 0, "\(list)")
        #expect(list.out == """
            SLOT  METHOD      COST
            1     passphrase  argon2id, 1 passes, 8 KiB
            2     keyfile     none (key file)

            """, "\(list)")
        #expect(list.stderr.isEmpty, "\(list)")
        let json = try await sandbox.run(["key", "list", "--json", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(json.status == 0, "\(json)")
        #expect(json.out == #"[{"id":1,"method":"passphrase","kdf_ops":1,"kdf_mem":8192},{"id":2,"method":"keyfile","kdf_ops":null,"kdf_mem":null}]"# + "\n",
                "\(json)")

        // The key file alone unlocks.
        let viaKey = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                           env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": keyFile])
        #expect(viaKey.status == 0 && viaKey.out == "Authorization: Bearer keyfile-value\n" && viaKey.stderr.isEmpty, "\(viaKey)")

        // A copy open to others is refused, with the chmod to run.
        let open = sandbox.root + "/open.key"
        try sandbox.write(key, to: open, mode: 0o644)
        let tooOpen = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                            env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": open])
        #expect(tooOpen.status == 77, "\(tooOpen)")
        #expect(tooOpen.stdout.isEmpty, "\(tooOpen)")
        #expect(tooOpen.err == "keyseal: error: the key file \(open) is open to other users (mode 0644)\nkeyseal: hint: run: chmod 600 \(open)\n",
                "\(tooOpen)")

        // A wrong key file fails exactly as a wrong passphrase does.
        let wrongKey = sandbox.root + "/wrong.key"
        try sandbox.write(Data((0..<32).map { _ in UInt8.random(in: 0...255) }), to: wrongKey)
        let viaWrongKey = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                                env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": wrongKey])
        let wrongPassphraseFile = sandbox.root + "/wrong-passphrase"
        try sandbox.write("not the passphrase\n", to: wrongPassphraseFile)
        let viaWrongPassphrase = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                                       env: ["KEYSEAL_PASSPHRASE_FILE": wrongPassphraseFile])
        #expect(viaWrongKey.status == 77, "\(viaWrongKey)")
        #expect(viaWrongPassphrase.status == 77, "\(viaWrongPassphrase)")
        #expect(viaWrongKey.stdout.isEmpty && viaWrongPassphrase.stdout.isEmpty)
        #expect(viaWrongKey.err == viaWrongPassphrase.err, "\(viaWrongKey)\n\(viaWrongPassphrase)")
        #expect(viaWrongPassphrase.err == Self.wrongPassphrase, "\(viaWrongPassphrase)")

        // A file of the wrong size is not a key file.
        let short = sandbox.root + "/short.key"
        try sandbox.write(key.prefix(31), to: short)
        let viaShort = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                             env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": short])
        #expect(viaShort.status == 77, "\(viaShort)")
        #expect(viaShort.err.hasPrefix("keyseal: error: \(short) is not a keyseal key file (32 bytes)\n"), "\(viaShort)")

        let noSlot = try await sandbox.run(["key", "rm", "99", "--vault", sandbox.vault])
        #expect(noSlot.status == 66, "\(noSlot)")
        #expect(noSlot.err.hasPrefix("keyseal: error: no key slot 99\n"), "\(noSlot)")

        // Without the passphrase slot, the passphrase opens nothing; the key file still does.
        let removed = try await sandbox.run(["key", "rm", "1", "--vault", sandbox.vault])
        #expect(removed.status == 0, "\(removed)")
        #expect(removed.stdout.isEmpty, "\(removed)")
        #expect(removed.err == "keyseal: removed key slot 1\n", "\(removed)")
        let viaPassphrase = try await sandbox.run(["header", "svc", "--vault", sandbox.vault])
        #expect(viaPassphrase.status == 77, "\(viaPassphrase)")
        #expect(viaPassphrase.err == Self.wrongPassphrase, "\(viaPassphrase)")
        let stillViaKey = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                                env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": keyFile])
        #expect(stillViaKey.status == 0 && stillViaKey.out == "Authorization: Bearer keyfile-value\n", "\(stillViaKey)")

        // The last slot stays.
        let last = try await sandbox.run(["key", "rm", "2", "--vault", sandbox.vault],
                                         env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": keyFile])
        #expect(last.status == 64, "\(last)")
        #expect(last.stdout.isEmpty, "\(last)")
        #expect(last.err == "keyseal: error: refusing to remove the last key slot: nothing could unlock the vault\nkeyseal: hint: add another slot first (keyseal key add --keyfile PATH)\n",
                "\(last)")
        let listAfter = try await sandbox.run(["key", "list", "--json", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(listAfter.out == #"[{"id":2,"method":"keyfile","kdf_ops":null,"kdf_mem":null}]"# + "\n", "\(listAfter)")
        let finalViaKey = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                                env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": keyFile])
        #expect(finalViaKey.status == 0 && finalViaKey.out == "Authorization: Bearer keyfile-value\n", "\(finalViaKey)")
    }

    @Test("a key file can unlock the agent too")
    func keyFileUnlocksAgent() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "keyfile-agent")
        let keyFile = sandbox.root + "/agent.key"
        let added = try await sandbox.run(["key", "add", "--keyfile", keyFile, "--vault", sandbox.vault])
        try #require(added.status == 0, "\(added)")
        let pid = try await sandbox.unlockAgent(env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_KEYFILE": keyFile])
        let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(header.status == 0 && header.out == "Authorization: Bearer keyfile-agent\n", "\(header)")
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))
    }

    /// An askpass program that records its argument and environment, then
    /// prints `passphrase` (or exits with `status`).
    static func askpass(_ sandbox: Sandbox, name: String, passphrase: String, status: Int = 0) throws -> String {
        let path = sandbox.root + "/" + name
        try sandbox.write("""
            #!/bin/sh
            env > '\(sandbox.root)/\(name).env'
            printf '%s' "$1" > '\(sandbox.root)/\(name).prompt'
            echo "$#" > '\(sandbox.root)/\(name).argc'
            printf '%s\\n' '\(passphrase)'
            exit \(status)

            """, to: path, mode: 0o700)
        return path
    }

    @Test("KEYSEAL_ASKPASS: the program's output unlocks; it gets the prompt as $1 and neither the passphrase file nor the key file")
    func askpassUnlocks() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "askpass-value")
        let program = try Self.askpass(sandbox, name: "askpass", passphrase: sandbox.passphrase)
        // Set but empty, so askpass is the source; they must not reach it.
        let env: [String: String?] = ["KEYSEAL_PASSPHRASE_FILE": "", "KEYSEAL_KEYFILE": "", "KEYSEAL_ASKPASS": program]

        let unlocked = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault], env: env)
        #expect(unlocked.status == 0, "\(unlocked)")
        #expect(unlocked.err.hasPrefix("keyseal: unlocked \(sandbox.vault) for 15m"), "\(unlocked)")
        let prompt = String(decoding: sandbox.bytes(sandbox.root + "/askpass.prompt") ?? Data(), as: UTF8.self)
        #expect(prompt == "Passphrase for \(sandbox.vault): ", "\(prompt)")
        #expect(sandbox.bytes(sandbox.root + "/askpass.argc") == Data("1\n".utf8))
        let variables = String(decoding: sandbox.bytes(sandbox.root + "/askpass.env") ?? Data(), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        #expect(variables.contains("KEYSEAL_ASKPASS=\(program)"), "the dump is not the askpass environment: \(variables)")
        #expect(!variables.contains { $0.hasPrefix("KEYSEAL_PASSPHRASE_FILE=") }, "\(variables)")
        #expect(!variables.contains { $0.hasPrefix("KEYSEAL_KEYFILE=") }, "\(variables)")
        let header = try await sandbox.run(["header", "svc", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(header.status == 0 && header.out == "Authorization: Bearer askpass-value\n", "\(header)")
        try await sandbox.lockAgent()

        // Without the agent, askpass unlocks a single command too.
        let direct = try await sandbox.run(["header", "svc", "--no-agent", "--vault", sandbox.vault], env: env)
        #expect(direct.status == 0 && direct.out == "Authorization: Bearer askpass-value\n" && direct.stderr.isEmpty, "\(direct)")
    }

    @Test("KEYSEAL_ASKPASS that fails, prints a wrong passphrase or does not exist: 77")
    func askpassFails() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("svc", secret: "askpass-value")
        let failing = try Self.askpass(sandbox, name: "cancel", passphrase: sandbox.passphrase, status: 1)
        let result = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                           env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_ASKPASS": failing])
        #expect(result.status == 77, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err.hasPrefix("keyseal: error: KEYSEAL_ASKPASS \(failing) did not give a passphrase (it failed or was cancelled)\n"),
                "\(result)")
        #expect(!result.err.contains(sandbox.passphrase), "\(result)")
        let unlock = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault],
                                           env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_ASKPASS": failing])
        #expect(unlock.status == 77, "\(unlock)")
        #expect(sandbox.agentPIDs().isEmpty)

        let wrong = try Self.askpass(sandbox, name: "wrong", passphrase: "not it")
        let wrongResult = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                                env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_ASKPASS": wrong])
        #expect(wrongResult.status == 77, "\(wrongResult)")
        #expect(wrongResult.err == Self.wrongPassphrase, "\(wrongResult)")

        let missing = try await sandbox.run(["header", "svc", "--vault", sandbox.vault],
                                            env: ["KEYSEAL_PASSPHRASE_FILE": nil, "KEYSEAL_ASKPASS": sandbox.root + "/no-such-program"])
        #expect(missing.status == 77, "\(missing)")
        #expect(missing.err.hasPrefix("keyseal: error: cannot run KEYSEAL_ASKPASS \(sandbox.root)/no-such-program: "), "\(missing)")
    }

    /// The hex of every wrapped key of `method` in the vault, read with python3's sqlite3.
    static func wrappedKeys(_ sandbox: Sandbox, method: String) async throws -> [String] {
        let query = """
            import json, sqlite3, sys
            db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
            rows = db.execute("SELECT hex(wrapped_key) FROM key_slots WHERE method = ?", (sys.argv[2],)).fetchall()
            print(json.dumps([row[0] for row in rows]))
            db.close()
            """
        let result = try await sandbox.python3(query, [sandbox.vault, method])
        try #require(result.status == 0, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String], "\(result)")
    }

    static func bytes(hex: String) -> Data {
        var data = Data()
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            data.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return data
    }

    @Test("passwd rewraps the key: every entry opens with the new passphrase, none with the old, the old wrapped key is gone from the file; a running agent keeps serving")
    func passwdRewraps() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let entries = ["alpha": "alpha-value", "beta": "beta-value", "gamma": "gamma-value"]
        for (name, value) in entries { try await sandbox.add(name, secret: value) }
        let pid = try await sandbox.unlockAgent()
        let old = try await Self.wrappedKeys(sandbox, method: "passphrase")
        try #require(old.count == 1, "\(old)")
        #expect(sandbox.bytes(sandbox.vault)?.range(of: Self.bytes(hex: old[0])) != nil, "the search cannot find the old key before")

        let newFile = sandbox.root + "/new-passphrase"
        let newPassphrase = "a new passphrase, several words long"
        try sandbox.write(newPassphrase + "\n", to: newFile)
        let changed = try await sandbox.shell(#"exec "$0" "$@" 3<"$KS_NEW""#,
                                              ["passwd", "--new-passphrase-fd", "3", "--kdf", "insecure-testing", "--vault", sandbox.vault],
                                              env: ["KS_NEW": newFile])
        #expect(changed.status == 0, "\(changed)")
        #expect(changed.stdout.isEmpty, "\(changed)")
        #expect(changed.err.hasPrefix("keyseal: changed the passphrase of \(sandbox.vault); the old one opens nothing in it\n"), "\(changed)")
        // The vault as it was is kept first, and the message says where.
        let kept = try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups")
        #expect(kept.count == 1 && kept[0].hasSuffix("-before-passwd.db"), "\(kept)")
        #expect(changed.err.contains(sandbox.vault + ".backups/" + (kept.first ?? "?")), "\(changed)")

        let new = try await Self.wrappedKeys(sandbox, method: "passphrase")
        #expect(new.count == 1 && new != old, "\(new)")
        let file = try #require(sandbox.bytes(sandbox.vault))
        #expect(file.range(of: Self.bytes(hex: old[0])) == nil, "the old wrapped key is still in the vault file")
        #expect(file.range(of: Self.bytes(hex: new.first ?? "")) != nil, "the search cannot find the new key")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: sandbox.work).filter { $0 != "vault.db" && $0 != "vault.db.backups" }
        #expect(leftovers.isEmpty, "left beside the vault: \(leftovers)")

        for (name, value) in entries {
            let withNew = try await sandbox.run(["get", "-n", name, "--no-agent", "--vault", sandbox.vault],
                                                env: ["KEYSEAL_PASSPHRASE_FILE": newFile])
            #expect(withNew.status == 0 && withNew.out == value, "\(withNew)")
            let withOld = try await sandbox.run(["get", "-n", name, "--no-agent", "--vault", sandbox.vault])
            #expect(withOld.status == 77, "\(withOld)")
            #expect(withOld.stdout.isEmpty, "\(withOld)")
            #expect(withOld.err == Self.wrongPassphrase, "\(withOld)")
            // The agent holds the same vault key, so it still opens every entry.
            let viaAgent = try await sandbox.run(["get", "-n", name, "--vault", sandbox.vault], env: noPassphraseSource)
            #expect(viaAgent.status == 0 && viaAgent.out == value, "\(viaAgent)")
        }
        #expect(try await sandbox.status().pid == pid)
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(pid, within: 2))

        // The new passphrase unlocks an agent too; the old one does not.
        let oldUnlock = try await sandbox.runDetached(["unlock", "--vault", sandbox.vault])
        #expect(oldUnlock.status == 77, "\(oldUnlock)")
        #expect(sandbox.agentPIDs().isEmpty)
        let second = try await sandbox.unlockAgent(env: ["KEYSEAL_PASSPHRASE_FILE": newFile])
        let header = try await sandbox.run(["header", "alpha", "--vault", sandbox.vault], env: noPassphraseSource)
        #expect(header.status == 0 && header.out == "Authorization: Bearer alpha-value\n", "\(header)")
        try await sandbox.lockAgent()
        #expect(await ProcessState.waitGone(second, within: 2))
    }

    @Test("passwd refuses one descriptor for both passphrases, and an empty new passphrase, with 64; the vault untouched")
    func passwdRefusals() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let before = try sandbox.snapshot(sandbox.work)
        let same = try await sandbox.shell(#"exec "$0" "$@" 3<"$KS_FILE""#,
                                           ["passwd", "--passphrase-fd", "3", "--new-passphrase-fd", "3", "--vault", sandbox.vault],
                                           env: ["KS_FILE": sandbox.passphraseFile])
        #expect(same.status == 64, "\(same)")
        #expect(same.err.hasPrefix("keyseal: error: the old and the new passphrase need two descriptors\n"), "\(same)")
        let empty = try await sandbox.shell(#"exec "$0" "$@" 3</dev/null"#,
                                            ["passwd", "--new-passphrase-fd", "3", "--kdf", "insecure-testing", "--vault", sandbox.vault])
        #expect(empty.status == 64, "\(empty)")
        #expect(empty.err.hasPrefix("keyseal: error: the passphrase is empty\n"), "\(empty)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
    }
}
