// export and import, end to end: round trips with metadata and previous
// values, an independent decryption of the sealed file (PyNaCl, not
// keyseal's own reader), byte flips, conflicts, dotenv and pass stores, file
// modes, bounded memory and progress.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("export and import")
struct ExportImportTests {
    /// The export passphrase, in a 0600 file, given with --export-passphrase-fd 4.
    static func exportPassphrase(_ sandbox: Sandbox, _ text: String = "export passphrase one") throws -> String {
        let path = sandbox.root + "/export-passphrase-\(abs(text.hashValue))"
        try sandbox.write(text + "\n", to: path)
        return path
    }

    /// `keyseal ARGS --export-passphrase-fd 4 4<FILE`, under umask 000 (what
    /// it writes must be 0600 all the same).
    static func withExportPassphrase(_ sandbox: Sandbox, _ arguments: [String], file: String, stdin: String = "") async throws -> RunResult {
        try await sandbox.shell("umask 000; exec \"$0\" \"$@\" --export-passphrase-fd 4 4<\"$EXPORT_PASSPHRASE\"", arguments, stdin: stdin,
                                env: ["EXPORT_PASSPHRASE": file, "KEYSEAL_TEST_ALLOW_WEAK_KDF": "1"])
    }

    /// Each entry's `show --json`, less what belongs to one vault (ids, fingerprints, revision).
    static func described(_ sandbox: Sandbox, _ vault: String) async throws -> [String: [String: String]] {
        let listed = try await sandbox.run(["list", "--json", "--vault", vault])
        try #require(listed.status == 0, "\(listed)")
        let document = try #require(try JSONSerialization.jsonObject(with: listed.stdout) as? [String: Any])
        var result: [String: [String: String]] = [:]
        for entry in try #require(document["entries"] as? [[String: Any]]) {
            var fields: [String: String] = [:]
            for (key, value) in entry where key != "fingerprint" { fields[key] = "\(value)" }
            result[entry["name"] as! String] = fields
        }
        return result
    }

    /// A vault with varied entries: expiry, URL, description, warning window,
    /// a rotation (so a previous value), and secrets that need JSON escapes
    /// or are not UTF-8 at all.
    static func populate(_ sandbox: Sandbox, tag: String) async throws -> [String: Data] {
        var secrets: [String: Data] = [:]
        try await sandbox.initVault()
        secrets["plain"] = Data(Sentinel.make("\(tag)-plain").utf8)
        try await sandbox.add("plain", secret: Sentinel.make("\(tag)-plain"))
        secrets["pat"] = Data(Sentinel.make("\(tag)-pat").utf8)
        try await sandbox.add("pat", secret: Sentinel.make("\(tag)-pat"), options: [
            "--kind", "pat", "--expires", "2031-05-01", "--url", "https://api.example.com/v1", "--description", "CI token \"quoted\"",
        ])
        let window = try await sandbox.run(["edit", "pat", "--warn-within", "10d", "--vault", sandbox.vault])
        try #require(window.status == 0, "\(window)")
        let binary = Data([0xFF, 0xFE, 0x01, 0x41, 0x7F, 0xC3])
        secrets["binary"] = binary
        let added = try await sandbox.run(["add", "binary", "--kind", "token", "--vault", sandbox.vault], stdin: binary)
        try #require(added.status == 0, "\(added)")
        secrets["rotated-old"] = Data(Sentinel.make("\(tag)-old").utf8)
        try await sandbox.add("rotated", secret: Sentinel.make("\(tag)-old"))
        let rotated = try await sandbox.run(["rotate", "rotated", "--vault", sandbox.vault], stdin: Sentinel.make("\(tag)-new") + "\n")
        try #require(rotated.status == 0, "\(rotated)")
        secrets["rotated"] = Data(Sentinel.make("\(tag)-new").utf8)
        return secrets
    }

    @Test("a sealed export imported into a new vault gives the same entries, metadata, values and previous values")
    func sealedRoundTrip() async throws {
        let sandbox = try Sandbox()
        let secrets = try await Self.populate(sandbox, tag: "rt-sealed")
        let passphrase = try Self.exportPassphrase(sandbox)
        let exported = try await Self.withExportPassphrase(
            sandbox, ["export", "--to", sandbox.work + "/all.kse", "--kdf", "insecure-testing", "--vault", sandbox.vault], file: passphrase)
        #expect(exported.status == 0, "\(exported)")
        #expect(exported.err.contains("exported 4 entries and 1 previous value"), "\(exported)")
        #expect(sandbox.mode(sandbox.work + "/all.kse") == 0o600)
        let sealedBytes = try #require(sandbox.bytes(sandbox.work + "/all.kse"))
        for (_, secret) in secrets { #expect(sealedBytes.range(of: secret) == nil, "a secret is in the sealed file") }

        // With no descriptor and no terminal to ask on, nothing is written.
        let unasked = try await sandbox.run(["export", "--to", sandbox.work + "/unasked.kse", "--vault", sandbox.vault])
        #expect(unasked.status == 64 && unasked.err.contains("--export-passphrase-fd"), "\(unasked)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.work + "/unasked.kse"))
        let again = try await Self.withExportPassphrase(
            sandbox, ["export", "--to", sandbox.work + "/all.kse", "--kdf", "insecure-testing", "--vault", sandbox.vault], file: passphrase)
        #expect(again.status == 73, "export replaced a file: \(again)")

        let other = sandbox.work + "/other.db"
        try await sandbox.initVault(other)
        let dry = try await Self.withExportPassphrase(sandbox, ["import", sandbox.work + "/all.kse", "--vault", other], file: passphrase)
        #expect(dry.status == 0, "\(dry)")
        #expect(dry.out == "add binary\nadd pat\nadd plain\nadd rotated\n", "\(dry)")
        #expect(try await Self.described(sandbox, other).isEmpty, "a dry run wrote")

        let applied = try await Self.withExportPassphrase(sandbox, ["import", sandbox.work + "/all.kse", "--apply", "--vault", other], file: passphrase)
        #expect(applied.status == 0, "\(applied)")
        #expect(try await Self.described(sandbox, other) == (try await Self.described(sandbox, sandbox.vault)))
        for name in ["plain", "pat", "binary", "rotated"] {
            let got = try await sandbox.run(["get", name, "--no-newline", "--vault", other])
            #expect(got.stdout == secrets[name], "\(name): \(got)")
        }
        let previous = try await sandbox.run(["get", "rotated", "--previous", "--no-newline", "--vault", other])
        #expect(previous.stdout == secrets["rotated-old"], "\(previous)")
        let shown = try await sandbox.run(["show", "rotated", "--vault", other])
        #expect(shown.out.contains("version 1"), "\(shown)")
        let verified = try await sandbox.run(["verify", "--vault", other])
        #expect(verified.status == 0, "\(verified)")
        for run in [exported, dry, applied] {
            for (_, secret) in secrets { #expect(run.stderr.range(of: secret) == nil && run.stdout.range(of: secret) == nil, "\(run)") }
        }
    }

    @Test("the sealed export decrypts with PyNaCl (Argon2id + secretstream) to the documented JSON")
    func sealedExportDecryptsIndependently() async throws {
        let sandbox = try Sandbox()
        let secrets = try await Self.populate(sandbox, tag: "pynacl")
        let passphrase = try Self.exportPassphrase(sandbox)
        let path = sandbox.work + "/all.kse"
        let exported = try await Self.withExportPassphrase(sandbox, ["export", "--to", path, "--kdf", "insecure-testing", "--vault", sandbox.vault], file: passphrase)
        try #require(exported.status == 0, "\(exported)")
        // Debian's python3 with python3-nacl: libsodium's own bindings.
        let script = """
            import json, sys, nacl.bindings as b
            data = open(sys.argv[1], 'rb').read()
            lines = data.split(b'\\n', 3)
            assert lines[0] == b'keyseal-export/1', lines[0]
            words = dict(w.split(b'=') for w in lines[1].split()[2:])
            assert lines[2] == b''
            text = b'\\n'.join(lines[:3]) + b'\\n'
            rest = lines[3]
            key = b.crypto_pwhash_alg(32, open(sys.argv[2], 'rb').read().rstrip(b'\\n'), bytes.fromhex(words[b'salt'].decode()),
                                      int(words[b'ops']), int(words[b'mem']), b.crypto_pwhash_ALG_ARGON2ID13)
            state = b.crypto_secretstream_xchacha20poly1305_state()
            b.crypto_secretstream_xchacha20poly1305_init_pull(state, rest[:24], key)
            at = 24; messages = []; final = False
            while at < len(rest):
                n = int.from_bytes(rest[at:at+4], 'big'); at += 4
                message, tag = b.crypto_secretstream_xchacha20poly1305_pull(state, rest[at:at+n], text if not messages else None)
                at += n; messages.append(message)
                if tag == b.crypto_secretstream_xchacha20poly1305_TAG_FINAL: final = True; break
            assert final and at == len(rest) and messages[-1] == b''
            header = json.loads(messages[0])
            entries = [json.loads(m) for m in messages[1:-1]]
            json.dump({'header': header, 'entries': entries}, sys.stdout)
            """
        let decoded = try Self.runPython(script, [path, passphrase])
        let document = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: Any])
        let header = try #require(document["header"] as? [String: Any])
        #expect(header["format"] as? String == "keyseal-export")
        #expect(header["version"] as? Int == 1)
        #expect(header["sealed"] as? Bool == true)
        let entries = try #require(document["entries"] as? [[String: Any]])
        #expect(entries.map { $0["name"] as? String ?? "" } == ["binary", "pat", "plain", "rotated"])
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0["name"] as! String, $0) })
        #expect(byName["plain"]?["secret"] as? String == String(decoding: secrets["plain"]!, as: UTF8.self))
        #expect(byName["binary"]?["secret_base64"] as? String == secrets["binary"]!.base64EncodedString())
        #expect(byName["pat"]?["description"] as? String == "CI token \"quoted\"")
        #expect(byName["pat"]?["url"] as? String == "https://api.example.com/v1")
        #expect(byName["pat"]?["warn_within"] as? Int == 864_000)
        let previous = try #require(byName["rotated"]?["previous"] as? [[String: Any]])
        #expect(previous.count == 1 && previous.first?["secret"] as? String == String(decoding: secrets["rotated-old"]!, as: UTF8.self))
    }

    static func runPython(_ script: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "python3 failed: \(String(decoding: message, as: UTF8.self))")
        return data
    }

    @Test("a byte flipped anywhere in a sealed export, or a cut, or a wrong passphrase, is refused and nothing is written")
    func alteredExportsAreRefused() async throws {
        let sandbox = try Sandbox()
        _ = try await Self.populate(sandbox, tag: "flip")
        let passphrase = try Self.exportPassphrase(sandbox)
        let path = sandbox.work + "/all.kse"
        let exported = try await Self.withExportPassphrase(sandbox, ["export", "--to", path, "--kdf", "insecure-testing", "--vault", sandbox.vault], file: passphrase)
        try #require(exported.status == 0, "\(exported)")
        let original = try #require(sandbox.bytes(path))
        let other = sandbox.work + "/other.db"
        try await sandbox.initVault(other)
        let before = try #require(sandbox.bytes(other))

        var statuses: [Int32: Int] = [:]
        // Every 5th byte, header lines included, plus the last byte.
        for offset in Array(stride(from: 0, to: original.count, by: 5)) + [original.count - 1] {
            var altered = original
            altered[offset] ^= 0x01
            try sandbox.write(altered, to: sandbox.work + "/altered.kse")
            let run = try await Self.withExportPassphrase(sandbox, ["import", sandbox.work + "/altered.kse", "--apply", "--vault", other], file: passphrase)
            #expect(run.status != 0, "a flip at byte \(offset) was accepted: \(run)")
            statuses[run.status, default: 0] += 1
        }
        for cut in [10, 90, original.count / 2, original.count - 1] {
            try sandbox.write(original.prefix(cut), to: sandbox.work + "/cut.kse")
            let run = try await Self.withExportPassphrase(sandbox, ["import", sandbox.work + "/cut.kse", "--apply", "--vault", other], file: passphrase)
            #expect(run.status == 65, "a cut at \(cut): \(run)")
        }
        let wrong = try Self.exportPassphrase(sandbox, "not the export passphrase")
        let refused = try await Self.withExportPassphrase(sandbox, ["import", path, "--apply", "--vault", other], file: wrong)
        #expect(refused.status == 77, "\(refused)")
        #expect(refused.err.contains("the passphrase does not open"), "\(refused)")
        #expect(sandbox.bytes(other) == before, "a refused import changed the vault")
        // 77: the header lines or the first message changed (it authenticates
        // the header); 65: a later record; 64: the first byte, after which
        // the file no longer starts like an export and is refused as dotenv.
        #expect(Set(statuses.keys).isSubset(of: [64, 65, 77]), "\(statuses)")
        print("byte flips: exit statuses \(statuses)")
    }

    @Test("the JSON export round-trips, warns, and is read even when reformatted")
    func plaintextRoundTrip() async throws {
        let sandbox = try Sandbox()
        let secrets = try await Self.populate(sandbox, tag: "rt-json")
        let path = sandbox.work + "/all.json"
        let exported = try await sandbox.shell(FileModeTests.umask000, ["export", "--to", path, "--plaintext", "--vault", sandbox.vault])
        #expect(exported.status == 0, "\(exported)")
        #expect(exported.err.contains("warning: \(path) holds every secret in the clear"), "\(exported)")
        #expect(sandbox.mode(path) == 0o600)
        let written = try #require(sandbox.bytes(path))
        let document = try #require(try JSONSerialization.jsonObject(with: written) as? [String: Any])
        #expect(document["sealed"] as? Bool == false)
        // Pretty-printed by another tool, keys in another order, it still imports.
        try sandbox.python("import json; d=json.load(open('all.json')); json.dump(d, open('pretty.json','w'), indent=2, sort_keys=True)")
        for source in [path, sandbox.work + "/pretty.json"] {
            let other = sandbox.work + "/other-\(source.hasSuffix("pretty.json") ? "pretty" : "plain").db"
            try await sandbox.initVault(other)
            let applied = try await sandbox.run(["import", source, "--apply", "--vault", other])
            #expect(applied.status == 0, "\(applied)")
            #expect(try await Self.described(sandbox, other) == (try await Self.described(sandbox, sandbox.vault)))
            let got = try await sandbox.run(["get", "binary", "--no-newline", "--vault", other])
            #expect(got.stdout == secrets["binary"], "\(got)")
        }

        // --prefix applies to an export's names too: into the same vault, no conflict.
        let copied = try await sandbox.run(["import", path, "--apply", "--prefix", "copy/", "--vault", sandbox.vault])
        #expect(copied.status == 0, "\(copied)")
        #expect(try await Self.described(sandbox, sandbox.vault).keys.filter { $0.hasPrefix("copy/") }.count == 4)

        // A hand-edited export is held to what add accepts.
        let before = try #require(sandbox.bytes(sandbox.vault))
        for (edit, reason) in [
            ("e['header_template'] = 'Authorization: none'", "{secret}"),
            ("e['secret'] = 'two\\nlines'", "line feed"),
            ("e['url'] = 'ftp://example.com'", "http"),
        ] {
            try sandbox.python("""
                import json
                d = json.load(open('all.json'))
                e = d['entries'][2]
                \(edit)
                d['entries'][2]['name'] = 'edited'
                json.dump(d, open('edited.json', 'w'))
                """)
            let refused = try await sandbox.run(["import", "edited.json", "--apply", "--replace", "--vault", sandbox.vault])
            #expect(refused.status == 64 && refused.err.contains("entry \"edited\"") && refused.err.contains(reason), "\(edit): \(refused)")
        }
        #expect(sandbox.bytes(sandbox.vault) == before, "a refused import changed the vault")
    }

    @Test("import conflicts are listed, refused with exit 73 and write nothing; --replace replaces after a backup")
    func conflicts() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        try await sandbox.add("alpha", secret: "alpha-old")
        try sandbox.write("alpha=alpha-new\nbeta=beta-value\n", to: sandbox.work + "/keys.env")
        let before = try #require(sandbox.bytes(sandbox.vault))

        let dry = try await sandbox.run(["import", "keys.env", "--vault", sandbox.vault])
        #expect(dry.status == 73, "\(dry)")
        #expect(dry.out == "add beta\nconflict alpha\n", "\(dry)")
        let applied = try await sandbox.run(["import", "keys.env", "--apply", "--vault", sandbox.vault])
        #expect(applied.status == 73, "\(applied)")
        #expect(applied.err.contains("\"alpha\""), "\(applied)")
        try sandbox.write("gamma=1\ngamma=2\n", to: sandbox.work + "/twice.env")
        let twice = try await sandbox.run(["import", "twice.env", "--apply", "--vault", sandbox.vault])
        #expect(twice.status == 73, "\(twice)")
        #expect(sandbox.bytes(sandbox.vault) == before, "a refused import changed the vault")

        let replaced = try await sandbox.run(["import", "keys.env", "--apply", "--replace", "--vault", sandbox.vault])
        #expect(replaced.status == 0, "\(replaced)")
        let got = try await sandbox.run(["get", "alpha", "--vault", sandbox.vault])
        #expect(got.out == "alpha-new\n", "\(got)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: sandbox.vault + ".backups")
        #expect(kept.count == 1 && kept[0].hasSuffix("-before-import.db"), "\(kept)")
        let old = try await sandbox.run(["get", "alpha", "--vault", sandbox.vault + ".backups/" + (kept.first ?? "")])
        #expect(old.out == "alpha-old\n", "\(old)")
    }

    @Test("dotenv: quotes, escapes, comments and export are read exactly; a bad line is named by number and nothing is written")
    func dotenv() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let secret = Sentinel.make("dotenv")
        let quoted = secret.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        try sandbox.write("""
            # API keys
            GITHUB_TOKEN=ghp_plain123 # a comment
            export GITLAB_TOKEN='glpat-single "quoted" # not a comment'

            SENTINEL="\(quoted)"
            TABBED="a\\tb"\r
            """, to: sandbox.work + "/keys.env")
        let applied = try await sandbox.run(["import", "keys.env", "--apply", "--prefix", "ci/", "--kind", "pat", "--vault", sandbox.vault])
        #expect(applied.status == 0, "\(applied)")
        let expected = [
            "ci/GITHUB_TOKEN": "ghp_plain123", "ci/GITLAB_TOKEN": "glpat-single \"quoted\" # not a comment",
            "ci/SENTINEL": secret, "ci/TABBED": "a\tb",
        ]
        for (name, value) in expected {
            let got = try await sandbox.run(["get", name, "--no-newline", "--vault", sandbox.vault])
            #expect(got.out == value, "\(name): \(got)")
        }
        let shown = try await sandbox.run(["show", "ci/GITHUB_TOKEN", "--json", "--vault", sandbox.vault])
        #expect(shown.out.contains("\"kind\":\"pat\""), "\(shown)")
        #expect(!applied.err.contains(secret) && !applied.out.contains(secret))

        let before = try #require(sandbox.bytes(sandbox.vault))
        for (text, line, reason) in [
            ("OK=1\nNOT A LINE\n", 2, "is not followed by ="),
            ("OK=1\n\n\nBROKEN=\"open\n", 4, "no closing quote"),
            ("A=1\nEMPTY=\n", 2, "empty value"),
            ("1ABC=x\n", 1, "expected NAME=value"),
            // add refuses a secret of two lines; so does import.
            ("OK=1\nTWO=\"line1\\nline2\"\n", 2, "carriage return, line feed or NUL"),
        ] {
            try sandbox.write(text, to: sandbox.work + "/bad.env")
            let run = try await sandbox.run(["import", "bad.env", "--apply", "--vault", sandbox.vault])
            #expect(run.status == 64, "\(run)")
            #expect(run.err.contains("bad.env, line \(line): ") && run.err.contains(reason), "\(run)")
        }
        #expect(sandbox.bytes(sandbox.vault) == before)
    }

    @Test("a pass store is imported through the user's gpg, the first line of each file as the secret")
    func passStore() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        let gnupg = sandbox.root + "/gnupg"
        let store = sandbox.root + "/store"
        try FileManager.default.createDirectory(atPath: gnupg, withIntermediateDirectories: false)
        #expect(chmod(gnupg, 0o700) == 0)
        let env: [String: String?] = ["GNUPGHOME": gnupg, "PASSWORD_STORE_DIR": store]
        defer { _ = try? Self.runTool("/usr/bin/gpgconf", ["--kill", "gpg-agent"], env: ["GNUPGHOME": gnupg]) }
        let secret = Sentinel.make("pass-store")
        let setup = try await sandbox.spawn("/bin/sh", ["-c", """
            set -e
            gpg --batch --quiet --passphrase '' --quick-gen-key 'keyseal test <test@example.com>' default default never 2>/dev/null
            fpr=$(gpg --list-keys --with-colons | awk -F: '/^fpr/ {print $10; exit}')
            pass init "$fpr" >/dev/null
            printf '%s\\nlogin: alice\\nurl: https://example.com\\n' "$1" | pass insert -m work/github >/dev/null
            printf 'second-value\\n' | pass insert -m personal >/dev/null
            """, "sh", secret], stdin: Data(), env: env, label: ["pass setup"])
        try #require(setup.status == 0, "\(setup)")

        let dry = try await sandbox.run(["import", "--from", "pass", "--vault", sandbox.vault], env: env)
        #expect(dry.status == 0, "\(dry)")
        #expect(dry.out == "add personal\nadd work/github\n", "\(dry)")
        let applied = try await sandbox.run(["import", "--from", "pass", store, "--apply", "--prefix", "pass/", "--vault", sandbox.vault], env: env)
        #expect(applied.status == 0, "\(applied)")
        let got = try await sandbox.run(["get", "pass/work/github", "--no-newline", "--vault", sandbox.vault])
        #expect(got.out == secret, "\(got)")
        let second = try await sandbox.run(["get", "pass/personal", "--no-newline", "--vault", sandbox.vault])
        #expect(second.out == "second-value", "\(second)")
        #expect(!applied.err.contains(secret) && !applied.out.contains(secret), "\(applied)")
    }

    static func runTool(_ path: String, _ arguments: [String], env: [String: String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test("a 20,000-entry import stays in bounded memory and shows progress on a terminal")
    func largeImport() async throws {
        let sandbox = try Sandbox()
        try await sandbox.initVault()
        // 2,000 and 20,000 entries with 1 KiB secrets: the larger file is ~20 MiB bigger.
        try sandbox.python("""
            import json, time
            for n in (2000, 20000):
                with open(f'big-{n}.json', 'w') as f:
                    f.write('{"format":"keyseal-export","version":1,"sealed":false,"entries":[\\n')
                    for i in range(n):
                        e = {"name": f"bulk-{i:06d}", "kind": "api-key", "header_template": "Authorization: {secret}",
                             "description": "", "created_at": 1700000000, "updated_at": 1700000000, "secret": f"{i:06d}-" + "x" * 1017}
                        f.write(('' if i == 0 else ',\\n') + json.dumps(e))
                    f.write('\\n]}\\n')
            """)
        var peaks: [Int: Int] = [:]
        for count in [2000, 20000] {
            let vault = sandbox.work + "/bulk-\(count).db"
            try await sandbox.initVault(vault)
            // GNU time reports the peak resident set of keyseal itself.
            // Under AddressSanitizer (swift test --sanitize=address) freed
            // memory waits in a quarantine that would show as growth; without
            // one the peak is the program's own. Other builds ignore this.
            let run = try await sandbox.spawn("/usr/bin/time", ["-f", "peak-kb=%M", sandbox.keyseal, "import", "big-\(count).json", "--apply", "--vault", vault],
                                              stdin: Data(), env: ["ASAN_OPTIONS": "detect_leaks=0:quarantine_size_mb=0:thread_local_quarantine_size_kb=0"],
                                              label: ["time keyseal import"], timeout: 300)
            #expect(run.status == 0, "\(run)")
            let line = run.err.split(separator: "\n").first { $0.hasPrefix("peak-kb=") }
            peaks[count] = line.flatMap { Int($0.dropFirst(8)) } ?? 0
            let listed = try await sandbox.run(["list", "--json", "--vault", vault])
            #expect(listed.out.components(separatedBy: "\"name\":").count - 1 == count)
        }
        let small = try #require(peaks[2000]), large = try #require(peaks[20000])
        print("import peak memory: 2,000 entries \(small) KiB, 20,000 entries \(large) KiB")
        // The larger input is ~18 MiB more; holding it would show as much.
        #expect(large - small < 8 * 1024, "peak grew from \(small) KiB to \(large) KiB")

        // On a terminal (script(1) gives one), progress is drawn on stderr.
        let vault = sandbox.work + "/progress.db"
        try await sandbox.initVault(vault)
        let shown = try await sandbox.spawn("/usr/bin/script", ["-qec", "\(sandbox.keyseal) import big-20000.json --vault \(vault)", "/dev/null"],
                                            stdin: Data(), env: [:], label: ["script keyseal import"], timeout: 300)
        #expect(shown.status == 0, "\(shown)")
        #expect(shown.out.contains("entries read,") && shown.out.contains("/s, about"), "no progress was drawn: \(shown.out.suffix(300))")
    }
}
