#if canImport(Glibc)
import Glibc
#endif

/// `keyseal header NAME [options]` read without argument-parser.
///
/// argument-parser builds and reflects over the whole command tree on every
/// start; for `header`, the call that sits in front of every curl, that was
/// most of the process's own time (perf, docs/PERFORMANCE.md). This reader
/// works on argv itself (even a Swift array of the arguments costs a
/// measurable share of a run: its generic metadata is made on first use),
/// accepts only the plain spellings of header's own options, and answers nil
/// for anything else (help, `--`, an unknown or repeated option, a missing
/// value), which then goes through argument-parser as before, with its
/// messages. A test compares the two readers over a corpus of command lines.
enum HeaderFastPath {
    /// The request `argv[1..<argc]` make, or nil.
    static func parse(argc: Int, argv: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> HeaderRequest? {
        guard argc >= 2, let command = argv[1], strcmp(command, "header") == 0 else { return nil }
        var vault: String?
        var passphraseFD: Int32?
        var format: HeaderFormat?
        var noAgent = false
        var refuseExpired = false
        var name: String?

        var index = 2
        // The value of an option: inline after "=", or the next argument,
        // which must not itself look like an option. nil: not this option;
        // .some(nil): this option, without a usable value.
        func value(_ argument: UnsafeMutablePointer<CChar>, _ option: StaticString) -> String?? {
            let length = option.utf8CodeUnitCount
            guard strncmp(argument, option.utf8Start, length) == 0 else { return nil }
            switch argument[length] {
            case 0:
                guard index < argc, let next = argv[index] else { return .some(nil) }
                index += 1
                return next[0] == 0x2D || next[0] == 0 ? .some(nil) : String(cString: next) // "-"
            case 0x3D: // "="
                return argument[length + 1] == 0 ? .some(nil) : String(cString: argument + length + 1)
            default:
                return nil
            }
        }
        while index < argc {
            guard let argument = argv[index] else { return nil }
            index += 1
            if argument[0] != 0x2D { // "-"
                guard name == nil, argument[0] != 0 else { return nil }
                name = String(cString: argument)
            } else if strcmp(argument, "--no-agent") == 0 {
                guard !noAgent else { return nil }
                noAgent = true
            } else if strcmp(argument, "--refuse-expired") == 0 {
                guard !refuseExpired else { return nil }
                refuseExpired = true
            } else if let given = value(argument, "--vault") {
                guard vault == nil, let given else { return nil }
                vault = given
            } else if let given = value(argument, "--format") {
                guard format == nil, let given, let chosen = HeaderFormat(rawValue: given) else { return nil }
                format = chosen
            } else if let given = value(argument, "--passphrase-fd") {
                guard passphraseFD == nil, let given, let fd = Int32(given) else { return nil }
                passphraseFD = fd
            } else {
                return nil
            }
        }
        guard let name else { return nil }
        return HeaderRequest(location: VaultLocation(vault: vault),
                             unlock: UnlockMethod(passphraseFD: passphraseFD, noAgent: noAgent),
                             name: name, format: format ?? .line, refuseExpired: refuseExpired)
    }
}
