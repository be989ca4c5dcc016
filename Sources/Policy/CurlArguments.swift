/// The arguments a user passes through `keyseal curl NAME … -- ARGS`, checked
/// so that they cannot send the credential somewhere the entry does not
/// allow: curl applies a config's header to every URL of its command line,
/// and forwards custom headers on redirects to other hosts.
public enum CurlArguments {
    /// curl 7.88's options that take a value (from `curl --help all`; a test
    /// compares this table with the installed curl's).
    public static let shortOptionsWithValue: Set<Character> = Set("EKCbcdDFPHhmoxUQreXYytzTuAw")
    public static let longOptionsWithValue: Set<String> = [
        "abstract-unix-socket", "proxy1.0", "alt-svc", "aws-sigv4", "cacert", "capath", "cert", "cert-type", "ciphers",
        "config", "connect-timeout", "connect-to", "continue-at", "cookie", "cookie-jar", "create-file-mode",
        "crlfile", "curves", "data", "data-ascii", "data-binary", "data-raw", "data-urlencode", "delegation",
        "dns-interface", "dns-ipv4-addr", "dns-ipv6-addr", "dns-servers", "doh-url", "dump-header", "egd-file",
        "engine", "etag-compare", "etag-save", "expect100-timeout", "form", "form-string", "ftp-account",
        "ftp-alternative-to-user", "ftp-method", "ftp-port", "ftp-ssl-ccc-mode", "happy-eyeballs-timeout-ms",
        "header", "help", "hostpubmd5", "hostpubsha256", "hsts", "interface", "json", "keepalive-time", "key",
        "key-type", "krb", "libcurl", "limit-rate", "local-port", "login-options", "mail-auth", "mail-from",
        "mail-rcpt", "max-filesize", "max-redirs", "max-time", "netrc-file", "noproxy", "oauth2-bearer", "output",
        "output-dir", "parallel-max", "pass", "pinnedpubkey", "preproxy", "proto", "proto-default", "proto-redir",
        "proxy", "proxy-cacert", "proxy-capath", "proxy-cert", "proxy-cert-type", "proxy-ciphers", "proxy-crlfile",
        "proxy-header", "proxy-key", "proxy-key-type", "proxy-pass", "proxy-pinnedpubkey", "proxy-service-name",
        "proxy-tls13-ciphers", "proxy-tlsauthtype", "proxy-tlspassword", "proxy-tlsuser", "proxy-user", "pubkey",
        "quote", "random-file", "range", "rate", "referer", "request", "request-target", "resolve", "retry",
        "retry-delay", "retry-max-time", "sasl-authzid", "service-name", "socks4", "socks4a", "socks5",
        "socks5-gssapi-service", "socks5-hostname", "speed-limit", "speed-time", "stderr", "telnet-option",
        "tftp-blksize", "time-cond", "tls-max", "tls13-ciphers", "tlsauthtype", "tlspassword", "tlsuser", "trace",
        "trace-ascii", "unix-socket", "upload-file", "url", "url-query", "user", "user-agent", "write-out",
    ]

    /// Options that send the request, header included, to another host than
    /// the URL's: proxies, connection overrides, other resolvers, sockets.
    static let connectionRedirects: Set<String> = [
        "proxy", "preproxy", "proxy1.0", "socks4", "socks4a", "socks5", "socks5-hostname",
        "connect-to", "resolve", "unix-socket", "abstract-unix-socket", "doh-url", "dns-servers",
    ]

    /// Every long option this check treats specially, for catching
    /// abbreviations of them.
    static let guarded: Set<String> = connectionRedirects.union(["config", "next", "location", "location-trusted", "url"])

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case otherURL(String)
        case notAURL(String)
        case option(String)
        case redirects(String)

        public var description: String {
            switch self {
            case let .otherURL(url):
                "the curl arguments name another URL, \(url.debugDescription), which would receive the credential too"
            case let .notAURL(text):
                "curl would take \(text.debugDescription) as another URL, which would receive the credential too"
            case let .option(option):
                "curl's \(option) cannot be used here: it could send the credential to another request"
            case let .redirects(option):
                "curl's \(option) would forward this header on a redirect to another host"
            }
        }
    }

    /// Refuses arguments that would send the credential to a URL outside the
    /// entry's origin. `headerName` is the template's field name: curl drops
    /// `Authorization` on a redirect to another host, but not custom headers.
    public static func check(_ arguments: [String], base: ServiceURL?, headerName: String, anyHost: Bool) throws(Refusal) {
        if anyHost { return }
        var index = 0
        var positionalOnly = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if positionalOnly || argument == "-" || !argument.hasPrefix("-") {
                try checkURL(argument, base: base)
                continue
            }
            if argument == "--" {
                positionalOnly = true
                continue
            }
            if argument.hasPrefix("--") {
                let name = String(argument.dropFirst(2))
                switch name {
                case "config", "next": throw .option(argument)
                case _ where connectionRedirects.contains(name): throw .option(argument)
                case "location-trusted": throw .redirects(argument)
                case "location" where headerName.lowercased() != "authorization": throw .redirects(argument)
                case "location": break
                case "url":
                    guard index < arguments.count else { return }
                    try checkURL(arguments[index], base: base)
                    index += 1
                default:
                    if longOptionsWithValue.contains(name) {
                        index += 1
                    } else if !name.hasPrefix("no-"), guarded.contains(where: { $0 != name && $0.hasPrefix(name) }) {
                        // curl takes an unambiguous abbreviation (--location-t):
                        // one that could stand for a guarded option is refused.
                        throw .option("\(argument) (write curl's options in full)")
                    }
                }
                continue
            }
            // A cluster of short options, such as -sSL or -XPOST.
            var letters = argument.dropFirst()[...]
            while let letter = letters.first {
                letters = letters.dropFirst()
                switch letter {
                case "K": throw .option("-K")
                case ":": throw .option("-:")
                case "x": throw .option("-x")
                case "L" where headerName.lowercased() != "authorization": throw .redirects("-L")
                default: break
                }
                if shortOptionsWithValue.contains(letter) {
                    if letters.isEmpty { index += 1 }
                    break
                }
            }
        }
    }

    private static func checkURL(_ text: String, base: ServiceURL?) throws(Refusal) {
        let lowered = text.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { throw .notAURL(text) }
        do {
            _ = try ServiceURL.resolve(text, base: base, anyHost: false)
        } catch {
            throw .otherURL(text)
        }
    }
}
