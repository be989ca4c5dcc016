import ArgumentParser
import Policy
import Sealing
import Storage
#if canImport(Glibc)
import Glibc
#endif

struct Curl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curl",
        abstract: "Run curl with an entry's header, never on curl's command line.",
        discussion: """
            The header reaches curl as a config file on an inherited pipe \
            (curl -K /dev/fd/N), so it never appears in argv, the environment \
            or a file. A path (/data/connection/123) is joined to the entry's \
            base URL; a full URL must be on the entry's host unless --any-host. \
            Arguments after -- go to curl, checked first: another URL, -K, \
            --next, proxies, --resolve, --connect-to and the like, and -L for a \
            header other than Authorization are refused unless --any-host. curl \
            runs with -q (no ~/.curlrc). The exit status is curl's. Note that \
            curl -v prints the request headers, the credential included.
            """)

    @OptionGroup var vaultOptions: VaultOptions
    @OptionGroup var unlockOptions: UnlockOptions

    @Argument(help: "The entry's name.")
    var name: String

    @Argument(help: ArgumentHelp("A path joined to the entry's URL, or a full URL on its host (default: the entry's URL).",
                                 valueName: "path-or-url"))
    var target: String?

    @Flag(help: "Allow a full URL on a host other than the entry's.")
    var anyHost = false

    @OptionGroup var expiryOptions: ExpiryUseOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("Arguments for curl, after --.", valueName: "curl-args"))
    var curlArguments: [String] = []

    func run() throws {
        try Failure.report {
            guard case let .found(curl) = Launcher.find("curl") else {
                throw CLIError(.unavailable, "curl was not found on PATH", hint: "install it, for example: apt-get install curl")
            }
            let vault = try vaultOptions.open()
            // One read of the row: checked, then opened.
            let sealed = try vault.sealedEntry(named: name)
            let metadata = sealed.metadata
            let url = try requestURL(for: metadata)
            try checkCurlArguments(for: metadata)
            try ExpiryReport(vault: vault).checkBeforeUse(metadata, refuseExpired: expiryOptions.refuseExpired)
            let unlocked = try unlockOptions.unlock(vault)
            let entry = try unlocked.open(sealed)
            let template = try StoredTemplate.parse(entry.metadata)
            var keptSince: Int64?
            let config = try EntryValue.use(entry, read: sealed, in: unlocked) { secret, kept in
                keptSince = kept
                return try HeaderRenderer.render(template, secret: secret, as: .curl)
            }
            // -q first: no ~/.curlrc, which could add a proxy or a URL.
            // The entry's CA certificates first, so an explicit --cacert after -- wins.
            let trust = entry.metadata.fields.caCertificates.map { ["--cacert", $0] } ?? []
            func arguments(_ descriptor: Int32) -> [String] { ["curl", "-q", "-K", "/dev/fd/\(descriptor)"] + trust + curlArguments + [url] }
            let environment = Launcher.environment(droppingPrefix: "KEYSEAL_")
            var descriptor = try ConfigPipe.fill(with: config)
            // A kept token may have expired on the server: watch the answer,
            // and on a 401 exchange again and repeat the request once.
            if let keptSince, Self.canRepeat(curlArguments) {
                switch try WatchedCurl.run(curl, arguments: arguments(descriptor), environment: environment) {
                case let .finished(status):
                    throw ExitCode(status)
                case .refused:
                    close(descriptor)
                    try unlocked.tokenRefused(sealed, obtainedAt: keptSince)
                    Output.warning("\(url) refused the kept token of \(name.debugDescription) (401); exchanged the API key again and repeated the request")
                    let renewed = try EntryValue.use(entry, read: sealed, in: unlocked, refresh: true) { secret, _ in
                        try HeaderRenderer.render(template, secret: secret, as: .curl)
                    }
                    descriptor = try ConfigPipe.fill(with: renewed)
                }
            }
            let status = Launcher.exec(curl, arguments: arguments(descriptor), environment: environment,
                                       secretEnvironment: try SecretBytes(count: 0))
            throw CLIError(.cannotExecute, "cannot run \(curl): \(String(cString: strerror(status)))")
        }
    }

    /// Whether the request can be made twice: it reads nothing from stdin
    /// (`-d @-`, `-T -`, `-F name=<-`, …), which the first attempt would have
    /// used up, and writes no headers where the user asked (`-D`), which the
    /// watching needs for itself.
    static func canRepeat(_ arguments: [String]) -> Bool {
        !arguments.contains { argument in
            argument == "-" || argument.contains("@-") || argument.contains("<-")
                || argument.hasPrefix("--dump")
                || (argument.hasPrefix("-") && !argument.hasPrefix("--") && argument.contains("D"))
        }
    }

    /// curl sends the config's header with every URL on its command line, and
    /// custom headers on redirects: the pass-through arguments must not add a
    /// destination the entry does not allow.
    private func checkCurlArguments(for metadata: EntryMetadata) throws {
        do {
            let base = try? metadata.fields.url.map { (text) throws(ServiceURL.Invalid) in try ServiceURL(text) }
            let headerName = try StoredTemplate.parse(metadata).fieldName
            try CurlArguments.check(curlArguments, base: base ?? nil, headerName: headerName, anyHost: anyHost)
        } catch let refusal as CurlArguments.Refusal {
            let hint: String = switch refusal {
            case .otherURL, .notAURL: "give the one URL as keyseal curl's PATH-OR-URL argument, before --"
            case .option: "run curl yourself with keyseal header NAME --format curl | curl -K - …"
            case .redirects: "follow redirects only with --any-host, or use an Authorization header"
            }
            throw CLIError(.usage, "\(refusal)", hint: hint)
        }
    }

    private func requestURL(for metadata: EntryMetadata) throws -> String {
        do {
            let base = try metadata.fields.url.map { (text) throws(ServiceURL.Invalid) in try ServiceURL(text) }
            return try ServiceURL.resolve(target, base: base, anyHost: anyHost)
        } catch {
            let hint: String = switch error {
            case .noBase: "store the service's base URL: keyseal edit \(name) --url https://host, or give a full URL with --any-host"
            case .otherHost: "a token is only sent to the host it was stored for; pass --any-host if you mean it"
            default: "give a path such as /bim/user/current, or a full https:// URL"
            }
            throw CLIError(.usage, "\(error)", hint: hint)
        }
    }
}

/// F_SETPIPE_SZ from <linux/fcntl.h> (F_LINUX_SPECIFIC_BASE + 7), which the
/// Glibc module does not export.
private let linuxSetPipeSize: Int32 = 1031

/// A pipe holding curl's config: written whole before curl starts, so no
/// keyseal process needs to stay behind to feed it.
enum ConfigPipe {
    /// Returns the read end, left open across exec.
    static func fill(with config: borrowing SecretBytes) throws -> Int32 {
        var ends: [Int32] = [0, 0]
        // pipe2(2) is not exported by Swift's Glibc module; the process has
        // one thread, so setting close-on-exec right after pipe(2) is safe.
        guard pipe(&ends) == 0 else {
            throw CLIError(.failure, "cannot make a pipe for curl: \(String(cString: strerror(errno)))")
        }
        let (readEnd, writeEnd) = (ends[0], ends[1])
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        // A pipe holds 64 KiB by default; a config larger than that would
        // block this single-threaded write, so the pipe is grown first.
        if config.count >= 65_536 && fcntl(writeEnd, linuxSetPipeSize, Int32(config.count + 1)) < 0 {
            throw CLIError(.failure, "the header is too large to hand to curl")
        }
        try Output.secret(config, to: writeEnd)
        close(writeEnd)
        guard fcntl(readEnd, F_SETFD, 0) == 0 else {
            throw CLIError(.failure, "cannot pass the pipe to curl: \(String(cString: strerror(errno)))")
        }
        return readEnd
    }
}
