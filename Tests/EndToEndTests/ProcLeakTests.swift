import Foundation
import Testing

/// What any local user can read while keyseal hands a secret on: every
/// /proc/PID/cmdline, and (as root here) every /proc/PID/environ.
@Suite("no process's argv or environment shows the secret while curl and run work")
struct ProcLeakTests {
    @Test("during keyseal curl, the secret is in no cmdline and no environ, curl's included")
    func curlLeavesNoTrace() async throws {
        let sandbox = try Sandbox()
        let server = try LoopbackServer(directory: sandbox.root + "/server")
        defer { server.stop() }
        let secret = Sentinel.make("proc-curl")
        var runs: [RunResult] = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret, options: ["--kind", "pat", "--url", server.origin]))

        // The server holds its answer 800 ms, so curl is there to be seen.
        let target = "/slow?delay=800&from=proc-curl"
        let url = server.origin + target
        let sampler = ProcSampler(secret: secret) { view in view.arguments.first == "curl" && view.arguments.last == url }
        let call = try await sandbox.run(["curl", "svc", target, "--vault", sandbox.vault, "--", "-sS"], env: curlEnvironment)
        let report = sampler.stop()
        runs.append(call)

        #expect(call.status == 0, "\(call)")
        #expect(call.out == LoopbackServer.responseBody, "\(call)")
        #expect(call.stderr.isEmpty, "\(call)")
        #expect(report.samples > 5, "too few samples: \(report.samples)")
        // The sampling saw curl itself, environment and all: it could have failed.
        #expect(!report.seen.isEmpty, "curl was never seen in \(report.samples) samples")
        #expect(report.seen.contains { $0.environ != nil }, "curl's environ was never readable")
        for view in report.seen {
            #expect(Array(view.arguments.prefix(3)) == ["curl", "-q", "-K"], "\(view)")
            #expect(view.arguments.count > 3 && view.arguments[3].hasPrefix("/dev/fd/"), "\(view)")
        }
        #expect(report.cmdlineLeaks.isEmpty, "the secret is in argv: \(report.cmdlineLeaks)")
        #expect(report.environLeaks.isEmpty, "the secret is in an environment: \(report.environLeaks)")

        // And the secret did travel, so it was there to leak.
        let requests = try server.requests()
        #expect(requests.count == 1, "\(requests)")
        #expect(requests.first?.headers(named: "Authorization").map(\.value) == [Data("Bearer \(secret)".utf8)], "\(requests)")
        try sandbox.expectSealed(secret, runs: runs)
    }

    @Test("during keyseal run, the secret is in no cmdline and only in the environment of the command it runs")
    func runPassesSecretOnlyToItsChild() async throws {
        let sandbox = try Sandbox()
        let secret = Sentinel.make("proc-run")
        var runs: [RunResult] = [try await sandbox.initVault()]
        runs.append(try await sandbox.add("svc", secret: secret))

        // An unusual duration makes the child's argv this test's own.
        let command = ["sleep", "1.17"]
        let sampler = ProcSampler(secret: secret) { view in view.arguments == command }
        let call = try await sandbox.run(["run", "--env", "KS_PROC_TOKEN=svc", "--vault", sandbox.vault, "--"] + command)
        let report = sampler.stop()
        runs.append(call)

        #expect(call.status == 0, "\(call)")
        #expect(call.stdout.isEmpty, "\(call)")
        #expect(call.stderr.isEmpty, "\(call)")
        #expect(report.samples > 5, "too few samples: \(report.samples)")
        #expect(report.cmdlineLeaks.isEmpty, "the secret is in argv: \(report.cmdlineLeaks)")
        // The child was seen, and has the secret in the variable asked for:
        // the search would have found it anywhere else.
        #expect(!report.seen.isEmpty, "the child was never seen in \(report.samples) samples")
        #expect(!report.environLeaks.isEmpty, "the secret was never seen in the child's environment")
        for view in report.environLeaks {
            #expect(view.arguments == command, "a process other than the child holds the secret: \(view)")
        }
        for view in report.seen {
            let variables = (view.environ ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            #expect(variables.filter { $0.hasPrefix("KS_PROC_TOKEN=") } == ["KS_PROC_TOKEN=\(secret)"], "\(view)")
            #expect(!variables.contains { $0.hasPrefix("KEYSEAL_PASSPHRASE_FILE=") }, "\(view)")
        }
        try sandbox.expectSealed(secret, runs: runs)
    }
}
