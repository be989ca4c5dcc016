// A real HTTP peer for the curl tests: python3's http.server on 127.0.0.1,
// a port the kernel picks, every request (method, path, each header line's
// exact bytes, body) appended to a JSON-lines log before it is answered.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One request as the server read it off the socket.
struct RecordedRequest: CustomStringConvertible {
    struct Header {
        let name: String
        /// The field value's exact bytes: after the colon and any leading
        /// spaces or tabs, up to (not including) the line's CR LF.
        let value: Data
        var text: String { String(decoding: value, as: UTF8.self) }
    }

    let method: String
    /// The request target as sent: path and query.
    let path: String
    let headers: [Header]
    let body: Data

    /// The headers named `name`, compared as HTTP does (case-insensitively).
    func headers(named name: String) -> [Header] {
        headers.filter { $0.name.lowercased() == name.lowercased() }
    }

    var description: String {
        "\(method) \(path) " + headers.map { "\($0.name): \($0.text)" }.joined(separator: " | ")
            + (body.isEmpty ? "" : " body=\(String(decoding: body, as: UTF8.self))")
    }
}

/// Started by `init`, killed by `stop()` or `deinit`, whichever comes first.
final class LoopbackServer {
    /// What every request gets back, with status 200.
    static let responseBody = "{\"ok\":true}\n"

    let port: Int
    private let directory: String
    private let process: Process
    private var logPath: String { directory + "/requests.jsonl" }

    /// True when it speaks TLS (see `tls`).
    let secure: Bool

    /// scheme://host:port of the server, as curl reaches it.
    var origin: String { "\(secure ? "https" : "http")://127.0.0.1:\(port)" }

    /// Starts the server with its files under `directory` (created), and
    /// waits at most `timeout` seconds for it to report its port. With
    /// `tls` (a certificate chain and its key, PEM files), it speaks https.
    init(directory: String, tls: (certificate: String, key: String)? = nil, timeout: TimeInterval = 10) throws {
        secure = tls != nil
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = directory + "/server.py"
        let portFile = directory + "/port"
        try Data(Self.script.utf8).write(to: URL(fileURLWithPath: script))
        _ = FileManager.default.createFile(atPath: directory + "/requests.jsonl", contents: nil)
        _ = FileManager.default.createFile(atPath: directory + "/server.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/server.log"))
        defer { try? log.close() }

        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, directory + "/requests.jsonl", portFile] + (tls.map { [$0.certificate, $0.key] } ?? [])
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()

        let deadline = Date().addingTimeInterval(timeout)
        var found: Int?
        while found == nil {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
               let number = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                found = number
            } else if !process.isRunning || Date() > deadline {
                break
            } else {
                usleep(10_000)
            }
        }
        guard let found else {
            let output = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            Self.stop(process)
            throw ServerFailure(message: "the loopback server did not report a port within \(timeout) s: \(output)")
        }
        port = found
    }

    deinit { stop() }

    /// Ends the server (idempotent).
    func stop() { Self.stop(process) }

    private static func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// How the bearer exchange endpoint answers from now on (see the script).
    func setExchange(key: String, mode: String = "ok", revoked: [String] = [], expireAfter: Int? = nil,
                     tokenPrefix: String? = nil, afterCreate: (vault: String, sql: String)? = nil) throws {
        var setup: [String: Any] = ["key": key, "mode": mode, "revoked": revoked]
        if let tokenPrefix { setup["token_prefix"] = tokenPrefix }
        if let expireAfter { setup["expire_after"] = expireAfter }
        if let afterCreate { setup["vault"] = afterCreate.vault; setup["on_create_sql"] = afterCreate.sql }
        let object = try JSONSerialization.data(withJSONObject: setup)
        try object.write(to: URL(fileURLWithPath: directory + "/exchange.json.tmp"))
        _ = rename(directory + "/exchange.json.tmp", directory + "/exchange.json")
    }

    /// The PATs the server's Request app holds (tokens.json), as JSON objects.
    func serverTokens() throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: directory + "/tokens.json") else { return [] }
        return try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    }

    /// Replaces the server's PATs, as an administrator's change would.
    func setServerTokens(_ tokens: [[String: Any]]) throws {
        let data = try JSONSerialization.data(withJSONObject: tokens)
        try data.write(to: URL(fileURLWithPath: directory + "/tokens.json.tmp"))
        _ = rename(directory + "/tokens.json.tmp", directory + "/tokens.json")
    }

    /// Every request received so far, oldest first.
    func requests() throws -> [RecordedRequest] {
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            let headers = try #require(object["headers"] as? [[String]], "\(line)").map { pair in
                RecordedRequest.Header(name: pair[0], value: Data(hex: pair[1]))
            }
            return RecordedRequest(
                method: try #require(object["method"] as? String), path: try #require(object["path"] as? String),
                headers: headers, body: Data(hex: try #require(object["body"] as? String)))
        }
    }

    struct ServerFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The server. Header lines are recorded as read from the socket (a
    /// wrapper around rfile sees each readline), not as http.server parsed
    /// them, so the test compares bytes. `?delay=MS` holds the answer back
    /// after the request is logged. It exits by itself when its parent
    /// (this test process) goes away, and after fifteen minutes at most: a
    /// test of a loaded full run (the crash and concurrency suites beside
    /// it, other builds on the machine) can outlast two minutes, and its
    /// server must not vanish under it.
    static let script = #"""
        import http.server, json, os, sys, threading, time, urllib.parse

        log_path, port_path = sys.argv[1], sys.argv[2]
        lock = threading.Lock()
        parent = os.getppid()

        def watch():
            started = time.monotonic()
            while os.getppid() == parent and time.monotonic() - started < 900:
                time.sleep(0.2)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

        def read_setup():
            """exchange.json beside the log, as the test last wrote it ({} if none)."""
            try:
                with open(os.path.join(os.path.dirname(log_path), "exchange.json")) as f:
                    return json.load(f)
            except OSError:
                return {}

        class Recording:
            def __init__(self, stream):
                self.stream, self.lines = stream, []
            def readline(self, *args):
                line = self.stream.readline(*args)
                self.lines.append(line)
                return line
            def read(self, *args):
                return self.stream.read(*args)
            def __getattr__(self, name):
                return getattr(self.stream, name)

        class Handler(http.server.BaseHTTPRequestHandler):
            def setup(self):
                super().setup()
                self.rfile = Recording(self.rfile)

            def handle_one_request(self):
                self.rfile.lines = []
                super().handle_one_request()

            def log_message(self, *args):
                pass

            def answer(self):
                headers = []
                for line in self.rfile.lines[1:]:
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.rstrip(b"\r\n").partition(b":")
                    headers.append([name.decode("latin-1"), value.lstrip(b" \t").hex()])
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": self.path, "headers": headers, "body": body.hex()}
                with lock, open(log_path, "a") as log:
                    log.write(json.dumps(record) + "\n")
                if self.command == "POST" and urllib.parse.urlsplit(self.path).path.endswith("/bim/apikey/authenticate"):
                    return self.exchange(body)
                route = urllib.parse.urlsplit(self.path).path
                if self.command == "POST" and route.endswith("/api/auth/tokens"):
                    return self.create_token(body)
                if self.command == "GET" and route.endswith("/api/auth/tokens"):
                    return self.list_tokens()
                if self.command == "DELETE" and "/api/auth/tokens/" in route:
                    return self.revoke_token(route.rsplit("/", 1)[1])
                # A bearer token listed as revoked in exchange.json gets a 401,
                # and so does one used more than its "expire_after" times.
                setup = read_setup()
                revoked = setup.get("revoked", [])
                authorization = self.headers.get("Authorization") or ""
                expired = False
                if authorization.startswith("Bearer tok-") and setup.get("expire_after"):
                    with lock:
                        uses[authorization] = uses.get(authorization, 0) + 1
                        expired = uses[authorization] > setup["expire_after"]
                if authorization.startswith("Bearer ") and (authorization[7:] in revoked or expired):
                    refusal = b'{"message":"token expired"}'
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(refusal)))
                    self.end_headers()
                    self.wfile.write(refusal)
                    return
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                delay = int(query.get("delay", ["0"])[0])
                if delay:
                    time.sleep(delay / 1000)
                payload = b'{"ok":true}\n'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            # Immuta's bearer exchange, as exchange.json beside the log says:
            # {"key": the API key it accepts, "mode": ok | false | 401 |
            # 401-region | 500 | garbage | hang}; tokens are tok-1, tok-2, ...
            def exchange(self, body):
                global issued
                setup = read_setup()
                mode = setup.get("mode", "ok")
                try:
                    sent = json.loads(body).get("apikey")
                except ValueError:
                    sent = None
                if mode == "hang":
                    time.sleep(30)
                    return
                if mode == "ok" and sent != setup.get("key", sent):
                    mode = "401"
                if mode == "ok":
                    with lock:
                        issued += 1
                        token = setup.get("token_prefix", "tok-") + str(issued)
                    status, payload = 200, json.dumps({"authenticated": True, "token": token}).encode()
                elif mode == "false":
                    status, payload = 200, b'{"authenticated": false}'
                elif mode == "401":
                    status, payload = 401, b'{"authenticated": false}'
                elif mode == "401-region":
                    status, payload = 401, b'{"message":"Not authenticated."}'
                elif mode == "500":
                    status, payload = 500, b"Internal Server Error"
                else:
                    status, payload = 200, b"<html>not json</html>"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            # The Request app's PAT creation: needs a bearer token this server
            # issued and did not revoke; answers {"tokenId", "token": pat-N}.
            # exchange.json's "on_create_sql" and "vault" make it write to
            # the vault after creating, as another keyseal would.
            def create_token(self, body):
                global created
                setup = read_setup()
                authorization = self.headers.get("Authorization") or ""
                token = authorization[7:] if authorization.startswith("Bearer ") else ""
                if not token.startswith("tok-") or token in setup.get("revoked", []):
                    status, payload = 401, b'{"message":"Not authenticated."}'
                else:
                    import uuid, sqlite3
                    request = json.loads(body or b"{}")
                    with lock:
                        created += 1
                        number = created
                        token_id = str(uuid.uuid4())
                        tokens = read_tokens()
                        tokens.append({"tokenId": token_id, "description": request.get("description"), "active": True,
                                       "creationDate": "2026-11-29T00:00:00.000Z",
                                       "expirationDate": request.get("expirationDate")})
                        write_tokens(tokens)
                    status = 200
                    payload = json.dumps({"tokenId": token_id, "token": "pat-%d" % number}).encode()
                    if setup.get("on_create_sql"):
                        c = sqlite3.connect(setup["vault"])
                        c.execute(setup["on_create_sql"])
                        c.commit()
                        c.close()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def authorized(self):
                authorization = self.headers.get("Authorization") or ""
                token = authorization[7:] if authorization.startswith("Bearer ") else ""
                return (token.startswith("tok-") or token.startswith("pat-")) and token not in read_setup().get("revoked", [])

            def reply(self, status, payload):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            # The Request app's list: every PAT made here (tokens.json, which
            # a test may edit to change one on the "server").
            def list_tokens(self):
                if not self.authorized():
                    return self.reply(401, b'{"message":"Not authenticated."}')
                self.reply(200, json.dumps(read_tokens()).encode())

            # Revoking: the PAT leaves the list.
            def revoke_token(self, token_id):
                if not self.authorized():
                    return self.reply(401, b'{"message":"Not authenticated."}')
                with lock:
                    tokens = read_tokens()
                    kept = [t for t in tokens if t["tokenId"] != token_id]
                    write_tokens(kept)
                if len(kept) == len(tokens):
                    return self.reply(404, b'{"message":"Not found."}')
                self.reply(200, b'{}')

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

        def read_tokens():
            try:
                with open(os.path.join(os.path.dirname(log_path), "tokens.json")) as f:
                    return json.load(f)
            except OSError:
                return []

        def write_tokens(tokens):
            path = os.path.join(os.path.dirname(log_path), "tokens.json")
            with open(path + ".tmp", "w") as f:
                json.dump(tokens, f)
            os.replace(path + ".tmp", path)

        issued = 0
        created = 0
        uses = {}

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if len(sys.argv) > 4:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[3], sys.argv[4])
            server.socket = context.wrap_socket(server.socket, server_side=True)
        with open(port_path + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(port_path + ".tmp", port_path)
        server.serve_forever()
        """#
}

extension Data {
    /// Bytes from lowercase or uppercase hex digits (pairs); invalid input gives what parsed.
    init(hex: String) {
        var bytes: [UInt8] = []
        var high: UInt8?
        for character in hex.utf8 {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = character - UInt8(ascii: "A") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        self.init(bytes)
    }
}

/// Overrides for every run that ends in curl: no proxy may take the request
/// elsewhere, and curl reads no config but ours (HOME is the sandbox's).
let curlEnvironment: [String: String?] = [
    "http_proxy": nil, "HTTP_PROXY": nil, "https_proxy": nil, "HTTPS_PROXY": nil,
    "all_proxy": nil, "ALL_PROXY": nil, "no_proxy": nil, "NO_PROXY": nil, "CURL_HOME": nil,
]
