import Foundation
import Testing

/// The real git (/usr/bin/git) cloning over https from a loopback server
/// that wants basic auth, with keyseal as its only credential helper. HOME
/// is the sandbox's, so no user or system git config takes part, and
/// GIT_TERMINAL_PROMPT=0 (with no terminal) means git can never prompt.
@Suite("git-credential with the real git: clone over https with the vault's PAT")
struct GitCloneTests {
    /// A server with one repository, project.git, whose README names `tag`.
    private func setUp(_ sandbox: Sandbox, tag: String, delay: Double = 0) async throws -> (server: GitHTTPServer, ca: String) {
        let certificates = try await sandbox.makeCertificates(in: sandbox.root + "/pki")
        let server = try GitHTTPServer(directory: sandbox.root + "/git-server", tls: (certificates.chain, certificates.key), delay: delay)
        let made = try await sandbox.shell("""
            set -e
            cd "$1"
            git init -q -b main src
            printf 'hello from %s\\n' "$3" > src/README
            git -C src add README
            git -C src -c user.name=test -c user.email=test@example.com commit -q -m first
            git clone -q --bare src "$2/project.git"
            """, [sandbox.root, server.projectRoot, tag], env: Self.gitEnvironment)
        try #require(made.status == 0, "making the repository failed: \(made)")
        return (server, certificates.ca)
    }

    /// `git clone` of project.git into `destination`, with only the helpers
    /// given (the empty value first clears any list git had).
    private func clone(_ sandbox: Sandbox, _ server: GitHTTPServer, ca: String, into destination: String,
                       helpers: [String], trace: Bool = false) async throws -> RunResult {
        var arguments = ["-c", "credential.helper="]
        for helper in helpers { arguments += ["-c", "credential.helper=\(helper)"] }
        arguments += ["-c", "http.sslCAInfo=\(ca)", "clone", "-q", server.origin + "/project.git", sandbox.root + "/" + destination]
        var env = Self.gitEnvironment
        env["GIT_TERMINAL_PROMPT"] = "0"
        if trace { env["GIT_TRACE"] = "1"; env["GIT_TRACE_CURL"] = "1" }
        return try await sandbox.spawn("/usr/bin/git", arguments, stdin: Data(), env: env, label: ["git"] + arguments)
    }

    /// The runner's GIT_* variables (GIT_SSL_CAINFO would override
    /// http.sslCAInfo), proxies and askpass programs removed; no system config.
    static let gitEnvironment: [String: String?] = {
        var env: [String: String?] = ["GIT_CONFIG_NOSYSTEM": "1", "SSH_ASKPASS": nil]
        for name in ProcessInfo.processInfo.environment.keys
        where name.hasPrefix("GIT_") || name.lowercased().hasSuffix("_proxy") {
            env[name] = .some(nil)
        }
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        return env
    }()

    /// keyseal as git runs it: through the shell, the operation appended.
    private func keysealHelper(_ sandbox: Sandbox, _ options: String = "") -> String {
        "!'\(sandbox.keyseal)' git-credential --vault '\(sandbox.vault)'" + (options.isEmpty ? "" : " " + options)
    }

    private func readme(_ sandbox: Sandbox, _ destination: String) -> String? {
        try? String(contentsOfFile: sandbox.root + "/" + destination + "/README", encoding: .utf8)
    }

    @Test("clone succeeds with the vault's PAT; the token is in no process's argv or environ, nor in git's trace; store changes nothing")
    func cloneWithTheVaultsPAT() async throws {
        let sandbox = try Sandbox()
        // Each authorized request waits 600 ms, so git's processes are there to be seen.
        let (server, ca) = try await setUp(sandbox, tag: "clone-ok", delay: 0.6)
        defer { server.stop() }
        let token = Sentinel.make("git-clone-ok")
        try server.setPassword(token)
        var runs = [try await sandbox.initVault(),
                    try await sandbox.add("forge", secret: token, options: ["--kind", "pat", "--url", server.origin])]
        let before = try sandbox.snapshot(sandbox.work)

        let url = server.origin + "/project.git"
        let sampler = ProcSampler(secret: token) { view in view.arguments.contains(url) }
        let cloned = try await clone(sandbox, server, ca: ca, into: "copy", helpers: [keysealHelper(sandbox)], trace: true)
        let report = sampler.stop()
        runs.append(cloned)

        #expect(cloned.status == 0, "\(cloned)\n\(server.log)")
        #expect(readme(sandbox, "copy") == "hello from clone-ok\n")
        let requests = try server.requests()
        #expect(requests.first?.authorized == false, "git asks without credentials first: \(requests)")
        #expect(requests.contains { $0.authorized && $0.user == "keyseal" && $0.method == "POST" }, "\(requests)")
        // git called store after the success; without --allow-store, not a byte changed.
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")

        // The trace covered the request that carried the token, and redacted it.
        #expect(cloned.err.contains("Authorization: Basic <redacted>"), "\(cloned)")
        let basic = Data("keyseal:\(token)".utf8).base64EncodedString()
        for form in Sentinel.forms(of: token) + [basic] {
            #expect(!cloned.stderr.contains(form) && !cloned.stdout.contains(form), "git's output or trace holds the token")
        }

        #expect(report.samples > 5, "too few samples: \(report.samples)")
        #expect(!report.seen.isEmpty, "git was never seen in \(report.samples) samples")
        #expect(report.seen.contains { $0.environ != nil }, "git's environ was never readable")
        #expect(report.seen.contains { $0.arguments.contains { $0.hasSuffix("remote-https") } }, "\(report.seen)")
        #expect(report.cmdlineLeaks.isEmpty, "the token is in argv: \(report.cmdlineLeaks)")
        #expect(report.environLeaks.isEmpty, "the token is in an environment: \(report.environLeaks)")
        try sandbox.expectSealed(token, runs: runs)
    }

    @Test("a wrong PAT in the vault: clone fails (nonzero), nothing is prompted, and git's erase leaves the vault as it was")
    func wrongPATFailsAndChangesNothing() async throws {
        let sandbox = try Sandbox()
        let (server, ca) = try await setUp(sandbox, tag: "clone-wrong")
        defer { server.stop() }
        let right = Sentinel.make("git-right")
        let wrong = Sentinel.make("git-wrong")
        try server.setPassword(right)
        var runs = [try await sandbox.initVault(),
                    try await sandbox.add("forge", secret: wrong, options: ["--kind", "pat", "--url", server.origin])]
        let before = try sandbox.snapshot(sandbox.work)
        let failed = try await clone(sandbox, server, ca: ca, into: "copy", helpers: [keysealHelper(sandbox)])
        runs.append(failed)
        #expect(failed.status != 0, "\(failed)")
        #expect(failed.err.contains("Authentication failed"), "\(failed)")
        #expect(readme(sandbox, "copy") == nil)
        let requests = try server.requests()
        // Exactly one try with the vault's PAT: git neither prompted nor asked again.
        #expect(requests.filter { $0.user != nil }.count == 1 && requests.allSatisfy { !$0.authorized }, "\(requests)")
        #expect(requests.contains { $0.user == "keyseal" }, "\(requests)")
        #expect(try sandbox.snapshot(sandbox.work) == before, "the vault changed")
        try sandbox.expectSealed(wrong, runs: runs)
    }

    @Test("with --allow-store: git's erase drops the refused PAT; a PAT another helper supplied is stored, and the next clone takes it from the vault")
    func allowStoreErasesAndStores() async throws {
        let sandbox = try Sandbox()
        let (server, ca) = try await setUp(sandbox, tag: "clone-store")
        defer { server.stop() }
        let right = Sentinel.make("git-store-right")
        let wrong = Sentinel.make("git-store-wrong")
        try server.setPassword(right)
        var runs = [try await sandbox.initVault(),
                    try await sandbox.add("forge", secret: wrong, options: ["--kind", "pat", "--url", server.origin])]
        let allowing = keysealHelper(sandbox, "--allow-store")

        let refused = try await clone(sandbox, server, ca: ca, into: "first", helpers: [allowing])
        let afterErase = try await sandbox.run(["list", "--vault", sandbox.vault])
        runs += [refused, afterErase]
        #expect(refused.status != 0 && refused.err.contains("keyseal: removed \"forge\": git erased its password"), "\(refused)")
        #expect(!afterErase.out.contains("forge"), "\(afterErase)")

        // A second helper knows the right PAT (from a file outside HOME and the work directory).
        let other = sandbox.root + "/other-helper"
        try sandbox.write("#!/bin/sh\ntest \"$1\" = get || exit 0\nprintf 'username=alice\\n'\ncat \"$0.password\"\n", to: other, mode: 0o700)
        try sandbox.write("password=\(right)\n", to: other + ".password")
        let supplied = try await clone(sandbox, server, ca: ca, into: "second", helpers: [allowing, other])
        runs.append(supplied)
        #expect(supplied.status == 0, "\(supplied)\n\(server.log)")
        let name = "git/127.0.0.1:\(server.port)"
        #expect(supplied.err.contains("keyseal: stored \"\(name)\" for \(server.origin) (pat, "), "\(supplied)")
        let stored = try await sandbox.run(["get", name, "-n", "--vault", sandbox.vault])
        #expect(stored.status == 0 && stored.out == right, "\(stored)")

        // keyseal alone now, without --allow-store: the stored PAT does the clone.
        let again = try await clone(sandbox, server, ca: ca, into: "third", helpers: [keysealHelper(sandbox)])
        runs.append(again)
        #expect(again.status == 0 && readme(sandbox, "third") == "hello from clone-store\n", "\(again)")
        let users = try server.requests().filter(\.authorized).map(\.user)
        #expect(users.contains("alice") && users.last == "keyseal", "\(users)")
        try sandbox.expectSealed(right, runs: runs)
    }
}
