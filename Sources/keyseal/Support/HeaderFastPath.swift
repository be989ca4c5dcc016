/// `keyseal header NAME [options]` read without argument-parser.
///
/// argument-parser builds and reflects over the whole command tree on every
/// start; for `header`, the call that sits in front of every curl, that was
/// most of the process's own time (perf, docs/PERFORMANCE.md). This reader
/// accepts only the plain spellings of header's own options and answers nil
/// for anything else (help, `--`, an unknown or repeated option, a missing
/// value), which then goes through argument-parser as before, with its
/// messages. A test compares the two readers over a corpus of command lines.
enum HeaderFastPath {
    /// The request `arguments` (without the program name) make, or nil.
    static func parse(_ arguments: [String]) -> HeaderRequest? {
        guard arguments.first == "header" else { return nil }
        var vault: String?
        var passphraseFD: Int32?
        var format: HeaderFormat?
        var noAgent = false
        var refuseExpired = false
        var name: String?

        var index = 1
        // The value of an option: inline after "=", or the next argument,
        // which must not itself look like an option.
        func value(_ argument: Substring, _ option: String) -> String?? {
            if argument == option {
                guard index < arguments.count else { return .some(nil) }
                let next = arguments[index]
                index += 1
                return next.hasPrefix("-") || next.isEmpty ? .some(nil) : next
            }
            guard argument.hasPrefix(option + "=") else { return nil }
            let inline = String(argument.dropFirst(option.count + 1))
            return inline.isEmpty ? .some(nil) : inline
        }
        while index < arguments.count {
            let argument = arguments[index][...]
            index += 1
            if !argument.hasPrefix("-") {
                guard name == nil, !argument.isEmpty else { return nil }
                name = String(argument)
            } else if argument == "--no-agent" {
                guard !noAgent else { return nil }
                noAgent = true
            } else if argument == "--refuse-expired" {
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
