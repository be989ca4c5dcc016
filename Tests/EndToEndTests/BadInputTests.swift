import Foundation
import Testing

@Suite("bad input to the header commands: refused with the documented status, nothing changed")
struct BadInputTests {
    @Test("66 for header of an unknown entry, with a hint to run keyseal list", arguments: ["line", "curl", "http", "json"])
    func unknownEntry(_ format: String) async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("unknown-\(format)")
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("known", secret: secret))
        let before = try sandbox.snapshot(sandbox.work)
        let result = try await sandbox.run(["header", "unknwon", "--format", format, "--vault", sandbox.vault])
        runs.append(result)
        #expect(result.status == 66, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.err == "keyseal: error: no entry named \"unknwon\"\nkeyseal: hint: run \"keyseal list\" to see the entries\n",
                "\(result)")
        #expect(try sandbox.snapshot(sandbox.work) == before)
        try sandbox.expectSealed(secret, runs: runs)
    }

    @Test("64 for an invalid template, at add and at edit, the vault unchanged", arguments: [
        "X-API-Key {secret}",          // no colon
        "X API Key: {secret}",         // a space in the name
        "X-API-Key: secret",           // no {secret}
        "X-API-Key: {secret}{secret}", // two
        "X-API-Key: {secret}\r\nX-Other: 1",
        "X-API-Key: {secret}\nX-Other: 1",
        ": {secret}",
        "Authorization: Bearer {secret} é",
    ])
    func invalidTemplate(_ template: String) async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("template")
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("known", secret: secret))
        let before = try sandbox.snapshot(sandbox.work)
        let add = try await sandbox.run(["add", "new", "--header", template, "--vault", sandbox.vault], stdin: secret + "\n")
        let edit = try await sandbox.run(["edit", "known", "--header", template, "--vault", sandbox.vault])
        runs += [add, edit]
        for result in [add, edit] {
            #expect(result.status == 64, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.hasPrefix("keyseal: error: "), "\(result)")
            #expect(result.err.contains("keyseal: hint: for example --header 'X-API-Key: {secret}'"), "\(result)")
        }
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
        let header = try await sandbox.run(["header", "known", "--vault", sandbox.vault])
        #expect(header.status == 0 && header.out == "Authorization: Bearer \(secret)\n", "\(header)")
        try sandbox.expectSealed(secret, runs: runs + [header])
    }

    @Test("64 for a secret holding CR, LF or NUL, at add and at rotate, the vault unchanged", arguments: [
        "abc\rdef", "abc\ndef", "abc\u{0}def", "abc\r", "abc\n", "\nabc", "abc\r\ndef",
    ])
    func controlCharactersInSecret(_ bad: String) async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("crlf")
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("known", secret: secret))
        let before = try sandbox.snapshot(sandbox.work)
        // Exactly one final newline is removed, so each of these keeps its bad byte.
        let add = try await sandbox.run(["add", "new", "--vault", sandbox.vault], stdin: bad + "\n")
        let rotate = try await sandbox.run(["rotate", "known", "--vault", sandbox.vault], stdin: bad + "\n")
        runs += [add, rotate]
        for result in [add, rotate] {
            #expect(result.status == 64, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
            #expect(result.err.hasPrefix("keyseal: error: the secret holds a carriage return, line feed or NUL byte\n"), "\(result)")
            #expect(!result.stderr.contains("abc"), "\(result)")
        }
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
        let get = try await sandbox.run(["get", "known", "--vault", sandbox.vault])
        #expect(get.status == 0 && get.out == secret + "\n", "\(get)")
        try sandbox.expectSealed(secret, runs: runs)
    }

    /// util-linux script(1) gives the command a pseudo-terminal for stdin,
    /// stdout and stderr; keyseal runs inside it without setsid, so the
    /// terminal is its controlling one.
    @Test("get refuses a terminal with 64 and prints nothing secret; --force prints it")
    func getToTerminal() async throws {
        let script = try #require(["/usr/bin/script", "/bin/script"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                  "script(1) from util-linux is needed")
        let sandbox = try Sandbox()
        let secret = Sentinel.make("tty")
        var runs = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret))
        let env: [String: String?] = ["SHELL": "/bin/sh", "KS": sandbox.keyseal, "VAULT": sandbox.vault]

        // Without a terminal (a pipe), get prints: the refusal is about terminals only.
        let piped = try await sandbox.run(["get", "svc", "--vault", sandbox.vault])
        #expect(piped.status == 0 && piped.out == secret + "\n", "\(piped)")

        let refused = try await sandbox.spawn(script, ["-qec", #""$KS" get svc --vault "$VAULT""#, "/dev/null"],
                                              stdin: Data(), env: env, label: ["script", "keyseal get svc"])
        // The terminal turns each \n into \r\n, and carries stderr too.
        #expect(refused.status == 64, "\(refused)")
        #expect(refused.out == "keyseal: error: refusing to print a secret to a terminal\r\n"
            + "keyseal: hint: pipe it to the program that needs it, or add --force\r\n", "\(refused)")
        for form in Sentinel.forms(of: secret) + ["sentinel-tty"] {
            #expect(!refused.stdout.contains(form), "\(refused)")
        }

        let forced = try await sandbox.spawn(script, ["-qec", #""$KS" get svc --force --vault "$VAULT""#, "/dev/null"],
                                             stdin: Data(), env: env, label: ["script", "keyseal get svc --force"])
        #expect(forced.status == 0, "\(forced)")
        #expect(forced.out == secret + "\r\n", "\(forced)")
        runs += [piped, refused, forced]
        try sandbox.expectSealed(secret, runs: runs)
    }
}
